// tessel-evaluate: scores a folder of segmentations against a folder of human annotations.
//
// Ground truth: <id>_gt<k>.png (BSDS layout, optional index.txt). Predictions: <id>.png, or
// <id>_seg<t>.png (t = 0..T-1, the same setting t on every image) for a family of settings, which
// gives ODS / OIS / Best. Protocols (METRICS.md): bsr (PRI, VoI in bits, GT covering; the BSR
// region benchmark), grapl (Hungarian-matched accuracy and mIoU variants), dfc (best IoU per GT
// segment), foreground (binary masks, UnSegGNet), bde (boundary displacement), clustering (NMI,
// homogeneity, completeness, V-measure, ARI). Every number printed names its protocol.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "tessel/data/bsds.hpp"
#include "tessel/data/masks.hpp"
#include "tessel/io/image.hpp"
#include "tessel/metrics/aggregate.hpp"
#include "tessel/metrics/boundary_displacement.hpp"
#include "tessel/metrics/clustering_scores.hpp"
#include "tessel/metrics/matched_iou.hpp"

namespace fs = std::filesystem;
namespace mt = tessel::metrics;
using json = nlohmann::json;
using tessel::label_map;

namespace {

struct options {
    fs::path gt_dir, pred_dir, json_path, bsr_out;
    bool force = false, binary = false, exact = false, quiet = false, force_protocol = false;
    std::string ids;  // comma list or a file of ids (one per line, or index.txt lines)
    std::vector<std::string> protocols;
    std::string polarity = "as-given", dfc_mode = "all";
    int ignore_label = 0;
};

/// The ids to evaluate: every image of the set, or those named by --ids (a file of ids, one per
/// line with anything after the first word ignored, as in index.txt; or a comma-separated list).
std::vector<std::size_t> selected_images(const tessel::data::bsds_dataset& set, const std::string& ids) {
    std::vector<std::size_t> all(set.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    if (ids.empty()) return all;
    std::vector<std::string> wanted;
    if (fs::is_regular_file(ids)) {
        std::ifstream f(ids);
        std::string line;
        while (std::getline(f, line)) {
            std::istringstream ls(line);
            std::string id;
            if (ls >> id) wanted.push_back(id);
        }
    } else {
        std::istringstream ls(ids);
        std::string id;
        while (std::getline(ls, id, ','))
            if (!id.empty()) wanted.push_back(id);
    }
    tessel::expects(!wanted.empty(), "tessel-evaluate", "--ids '", ids, "' names no image");
    std::vector<std::size_t> out;
    for (const auto& w : wanted) {
        std::size_t k = 0;
        while (k < set.size() && set[k].id != w) ++k;
        tessel::expects(k < set.size(), "tessel-evaluate", "--ids: image ", w, " is not in the ground truth");
        out.push_back(k);
    }
    return out;
}

/// Number of distinct labels of a map.
std::size_t distinct_labels(const label_map& m) {
    std::set<tessel::label_t> seen(m.values().begin(), m.values().end());
    return seen.size();
}

// One named per-image score family: [image][setting] values, plus its direction.
struct score_table {
    std::string protocol, name;
    bool higher_is_better = true;
    std::vector<std::vector<double>> values;
};

std::string fmt(double v, int digits = 6) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    return buf;
}

void check_same_size(const label_map& pred, const fs::path& pred_path, const label_map& gt, const fs::path& gt_path) {
    tessel::expects(pred.width() == gt.width() && pred.height() == gt.height(), "tessel-evaluate", "size mismatch: '",
                    pred_path.string(), "' is ", pred.width(), "x", pred.height(), " but '", gt_path.string(), "' is ",
                    gt.width(), "x", gt.height());
}

class progress {
public:
    progress(std::size_t total, bool quiet) : m_total(total), m_on(!quiet && total >= 10), m_tty(isatty(2) != 0) {}
    void step(std::size_t done, const std::string& id) {
        if (!m_on) return;
        if (m_tty)
            std::cerr << "\r[" << done << "/" << m_total << "] " << id << "            " << std::flush;
        else if (done * 10 / m_total != (done - 1) * 10 / m_total || done == m_total)
            std::cerr << "[" << done << "/" << m_total << "] images evaluated\n";
        if (m_tty && done == m_total) std::cerr << "\n";
    }

private:
    std::size_t m_total;
    bool m_on, m_tty;
};

/// The score of each protocol that a one-number summary quotes (README, docs/results.md, JSON).
std::string headline_score(const std::string& protocol) {
    if (protocol == "bsr") return "covering (GT by seg)";
    if (protocol == "grapl") return "weighted_jaccard_sklearn";
    if (protocol == "dfc") return "average_mIOU (segment-pooled)";
    if (protocol == "foreground") return "iou";
    if (protocol == "bde") return "bde_pixels (lower is better)";
    if (protocol == "clustering") return "nmi";
    return {};
}

int run(const options& o) {
    constexpr std::string_view where = "tessel-evaluate";
    std::error_code ec;
    if (!o.json_path.empty())
        tessel::expects(o.force || !fs::exists(o.json_path, ec), where, "'", o.json_path.string(),
                        "' exists; pass --force to overwrite it");
    tessel::expects(fs::is_directory(o.pred_dir, ec), where, "prediction folder '", o.pred_dir.string(),
                    "' is not a directory");
    std::set<std::string> proto(o.protocols.begin(), o.protocols.end());
    if (proto.empty()) proto.insert(o.binary ? "foreground" : "bsr");
    if (proto.count("all")) {  // foreground IoU only means something on binary masks
        proto = {"bsr", "grapl", "dfc", "bde", "clustering"};
        if (o.binary) proto.insert("foreground");
    }
    const mt::mask_polarity polarity = o.polarity == "oracle" ? mt::mask_polarity::oracle : mt::mask_polarity::as_given;
    const mt::dfc_gt_mode dfc_mode = o.dfc_mode == "fine"     ? mt::dfc_gt_mode::fine
                                     : o.dfc_mode == "coarse" ? mt::dfc_gt_mode::coarse
                                                              : mt::dfc_gt_mode::all;

    const tessel::data::bsds_dataset set(o.gt_dir);
    const std::vector<std::size_t> sel = selected_images(set, o.ids);
    std::size_t T = 0;
    std::vector<mt::bsr_image_stats> bsr_stats;
    std::vector<std::vector<mt::dfc_image_scores>> dfc;  // [setting][image]
    std::map<std::string, score_table> tables;
    std::vector<std::string> order;
    auto put = [&](const std::string& protocol, const std::string& name, bool higher, std::size_t image,
                   std::size_t t, double v) {
        const std::string key = protocol + "/" + name;
        auto [it, inserted] = tables.try_emplace(key, score_table{protocol, name, higher, {}});
        if (inserted) order.push_back(key);
        auto& rows = it->second.values;
        if (rows.size() <= image) rows.resize(image + 1, std::vector<double>(T, 0.0));
        rows[image][t] = v;
    };
    json images = json::array();
    int flipped_masks = 0;
    progress bar(sel.size(), o.quiet);

    for (std::size_t i = 0; i < sel.size(); ++i) {
        const auto& item = set[sel[i]];
        const auto pred_paths = tessel::data::find_predictions(o.pred_dir, item.id);
        tessel::expects(!pred_paths.empty(), where, "missing prediction for image ", item.id, ": expected '",
                        (o.pred_dir / (item.id + ".png")).string(), "' or '",
                        (o.pred_dir / (item.id + "_seg0.png")).string(), "'");
        if (i == 0) {
            T = pred_paths.size();
            dfc.resize(T);
        }
        tessel::expects(pred_paths.size() == T, where, "image ", item.id, " has ", pred_paths.size(),
                        " prediction settings but image ", set[sel[0]].id, " has ", T,
                        "; every image needs the same family <id>_seg0..", T - 1, ".png");
        std::vector<label_map> gts = set.load_ground_truths(sel[i]);
        std::vector<label_map> segs;
        for (const auto& p : pred_paths) {
            segs.push_back(tessel::io::read_label_png(p));
            check_same_size(segs.back(), p, gts.front(), item.ground_truths.front());
        }
        // A protocol that does not fit the data gives a number that means nothing: refuse it.
        if (!o.force_protocol) {
            if (proto.count("foreground") && !o.binary)
                for (std::size_t k = 0; k < gts.size(); ++k)
                    tessel::expects(distinct_labels(gts[k]) <= 2, where, "the foreground protocol needs binary masks, but '",
                                    item.ground_truths[k].string(), "' has ", distinct_labels(gts[k]),
                                    " labels; pass --binary to treat every non-zero label as foreground, or "
                                    "--force-protocol");
            if (o.binary)
                for (std::size_t t = 0; t < segs.size(); ++t)
                    tessel::expects(distinct_labels(segs[t]) <= 2, where, "--binary treats every non-zero segment as "
                                    "foreground, but '", pred_paths[t].string(), "' has ", distinct_labels(segs[t]),
                                    " segments; predict a mask, or pass --force-protocol");
        }
        if (o.binary) {
            for (auto& g : gts) tessel::data::binarize(g);
            for (auto& s : segs) tessel::data::binarize(s);
        }
        json im = {{"id", item.id}, {"width", gts.front().width()}, {"height", gts.front().height()},
                   {"ground_truths", gts.size()}};
        if (proto.count("bsr")) {
            bsr_stats.push_back(mt::bsr_evaluate_image<tessel::cpu_serial>(segs, gts));
            json per_t = json::array();
            for (const auto& s : bsr_stats.back().settings)
                per_t.push_back({{"pri", s.ri}, {"voi_bits", s.vi},
                                 {"covering_gt_by_seg", s.cover.sum_r > 0 ? s.cover.cnt_r / s.cover.sum_r : 0.0},
                                 {"covering_seg_by_pooled_gt", s.cover.sum_p > 0 ? s.cover.cnt_p / s.cover.sum_p : 0.0},
                                 {"cnt_r", s.cover.cnt_r}, {"sum_r", s.cover.sum_r}, {"cnt_p", s.cover.cnt_p},
                                 {"sum_p", s.cover.sum_p}});
            im["bsr"] = {{"settings", per_t}, {"cnt_r_best", bsr_stats.back().cnt_r_best}};
        }
        for (std::size_t t = 0; t < T; ++t) {
            const bool need_tables = proto.count("grapl") || proto.count("dfc") || proto.count("clustering");
            std::vector<mt::contingency_table> tabs;
            if (need_tables) tabs = mt::contingencies(segs[t], std::span<const label_map>(gts));
            const double K = static_cast<double>(gts.size());
            if (proto.count("grapl")) {
                double acc = 0, a = 0, b = 0, c = 0, d = 0;
                for (const auto& tb : tabs) {
                    const auto s = mt::hungarian_scores(tb, o.ignore_label);
                    acc += s.accuracy, a += s.miou_gt_classes, b += s.miou_union, c += s.weighted_jaccard,
                        d += s.weighted_jaccard_pred;
                }
                put("grapl", "accuracy", true, i, t, acc / K);
                put("grapl", "miou_gt_classes", true, i, t, a / K);
                put("grapl", "miou_union", true, i, t, b / K);
                put("grapl", "weighted_jaccard_torchmetrics", true, i, t, c / K);
                put("grapl", "weighted_jaccard_sklearn", true, i, t, d / K);
            }
            if (proto.count("dfc")) {
                dfc[t].push_back(mt::dfc_scores(tabs, dfc_mode));
                put("dfc", "image_max_miou", true, i, t, dfc[t].back().max_miou);
            }
            if (proto.count("clustering")) {
                double nmi = 0, h = 0, c = 0, v = 0, ari = 0;
                for (const auto& tb : tabs) {
                    const auto hc = mt::homogeneity_completeness_v_measure(tb);
                    nmi += mt::normalized_mutual_information(tb), h += hc.homogeneity, c += hc.completeness,
                        v += hc.v_measure, ari += mt::adjusted_rand_index(tb);
                }
                put("clustering", "nmi", true, i, t, nmi / K);
                put("clustering", "homogeneity", true, i, t, h / K);
                put("clustering", "completeness", true, i, t, c / K);
                put("clustering", "v_measure", true, i, t, v / K);
                put("clustering", "ari", true, i, t, ari / K);
            }
            if (proto.count("bde"))
                put("bde", "bde_pixels", false, i, t,
                    mt::mean_boundary_displacement_error(segs[t], std::span<const label_map>(gts)));
            if (proto.count("foreground")) {
                double iou = 0;
                for (const auto& g : gts) {
                    const auto r = mt::foreground_iou(segs[t], g, polarity);
                    iou += r.iou;
                    flipped_masks += r.flipped ? 1 : 0;
                }
                put("foreground", "iou", true, i, t, iou / static_cast<double>(gts.size()));
            }
        }
        json scores;
        for (const auto& key : order) {
            const auto& tab = tables.at(key);
            if (tab.values.size() > i) scores[tab.protocol][tab.name] = tab.values[i];
        }
        im["scores_per_setting"] = scores;
        images.push_back(std::move(im));
        bar.step(i + 1, item.id);
    }

    // ---- aggregate and print -------------------------------------------------------------------
    json agg;
    std::ostringstream out;
    out << "tessel-evaluate: " << sel.size() << " images, " << T << (T == 1 ? " setting" : " settings")
        << " per image (ground truth " << o.gt_dir.string() << ", predictions " << o.pred_dir.string() << ")\n";
    out << "conventions: VoI in bits; BSR covering = covering of the GT by the segmentation, pooled over GTs and images;"
           " other scores: mean over an image's GTs, then over images\n\n";
    char line[256];
    // One setting per image: ODS, OIS and Best are all the one value, so the table has one column.
    if (T > 1)
        std::snprintf(line, sizeof line, "  %-12s %-36s %12s %6s %12s %12s\n", "protocol", "score", "ODS", "t", "OIS",
                      "Best");
    else
        std::snprintf(line, sizeof line, "  %-12s %-36s %12s\n", "protocol", "score", "value");
    out << line;
    auto row = [&](const std::string& p, const std::string& n, double ods, std::size_t t, double ois, double best) {
        const bool headline = n == headline_score(p);
        if (T > 1)
            std::snprintf(line, sizeof line, "%c %-12s %-36s %12s %6zu %12s %12s\n", headline ? '*' : ' ', p.c_str(),
                          n.c_str(), fmt(ods).c_str(), t + 1, !std::isnan(ois) ? fmt(ois).c_str() : "-",
                          std::isnan(best) ? "-" : fmt(best).c_str());
        else
            std::snprintf(line, sizeof line, "%c %-12s %-36s %12s\n", headline ? '*' : ' ', p.c_str(), n.c_str(),
                          fmt(ods).c_str());
        out << line;
    };
    const double none = std::nan("");
    if (!bsr_stats.empty()) {
        const auto r = mt::bsr_aggregate(bsr_stats, {!o.exact, {}});
        row("bsr", "covering (GT by seg)", r.covering_ods, static_cast<std::size_t>(r.covering_ods_setting),
            r.covering_ois, r.covering_best);
        row("bsr", "PRI", r.pri.ods, static_cast<std::size_t>(r.pri.ods_setting), r.pri.ois, none);
        row("bsr", "VoI (bits, lower is better)", r.voi.ods, static_cast<std::size_t>(r.voi.ods_setting), r.voi.ois,
            none);
        json per_image = json::array();
        for (std::size_t i = 0; i < r.images.size(); ++i)
            per_image.push_back({{"id", set[sel[i]].id}, {"best_setting", r.images[i].best_setting + 1},
                                 {"covering", r.images[i].covering},
                                 {"reverse_covering_pooled", r.images[i].reverse_covering}});
        agg["bsr"] = {{"rounded_like_reference", !o.exact},
                      {"covering", {{"ods", r.covering_ods}, {"ods_setting", r.covering_ods_setting + 1},
                                    {"ois", r.covering_ois}, {"best", r.covering_best},
                                    {"per_setting", r.covering_per_setting}}},
                      {"pri", {{"ods", r.pri.ods}, {"ods_setting", r.pri.ods_setting + 1}, {"ois", r.pri.ois},
                               {"per_setting", r.pri.per_setting}}},
                      {"voi_bits", {{"ods", r.voi.ods}, {"ods_setting", r.voi.ods_setting + 1}, {"ois", r.voi.ois},
                                    {"per_setting", r.voi.per_setting}}},
                      {"images", per_image}};
        if (!o.bsr_out.empty()) {
            fs::create_directories(o.bsr_out, ec);
            tessel::expects(fs::is_directory(o.bsr_out, ec), where, "cannot create folder '", o.bsr_out.string(), "'");
            for (const auto& [name, text] : mt::bsr_files(r)) {
                std::ofstream f(o.bsr_out / name);
                f << text;
                tessel::expects(static_cast<bool>(f), where, "cannot write '", (o.bsr_out / name).string(), "'");
            }
        }
    }
    for (const auto& key : order) {
        const auto& tab = tables.at(key);
        const auto r = mt::ods_ois(tab.values, tab.higher_is_better);
        row(tab.protocol, tab.higher_is_better ? tab.name : tab.name + " (lower is better)", r.ods,
            static_cast<std::size_t>(r.ods_setting), r.ois, none);
        agg[tab.protocol][tab.name] = {{"ods", r.ods}, {"ods_setting", r.ods_setting + 1}, {"ois", r.ois},
                                       {"per_setting", r.per_setting}};
    }
    if (proto.count("dfc")) {
        std::vector<double> avg, mx;
        for (std::size_t t = 0; t < T; ++t) {
            const auto s = mt::dfc_aggregate(dfc[t]);
            avg.push_back(s.average_miou);
            mx.push_back(s.max_miou);
        }
        const std::vector<std::vector<double>> one_row{avg};
        const auto r = mt::ods_ois(one_row, true);
        row("dfc", "average_mIOU (segment-pooled)", r.ods, static_cast<std::size_t>(r.ods_setting), none, none);
        agg["dfc"]["average_miou"] = {{"ods", r.ods}, {"ods_setting", r.ods_setting + 1}, {"per_setting", avg}};
        agg["dfc"]["gt_mode"] = o.dfc_mode;
    }
    if (proto.count("foreground")) {
        agg["foreground"]["polarity"] = o.polarity;
        agg["foreground"]["flipped_masks"] = flipped_masks;
    }
    if (proto.count("grapl")) agg["grapl"]["ignore_label"] = o.ignore_label;
    for (const auto& p : proto)
        if (agg.contains(p)) agg[p]["headline"] = headline_score(p);
    out << "\nnotes: * marks each protocol's headline score (the one docs/results.md and the README quote).";
    if (T > 1) out << " t is the 1-based setting of the ODS; OIS picks each image's best setting independently per score.";
    out << "\n";
    if (proto.count("grapl"))
        out << "grapl: Hungarian one-to-one matching per GT; weighted_jaccard_sklearn is the score the GraPL paper "
               "reports as mIoU (docs/results.md); weighted_jaccard_torchmetrics (GraPL's code since 2024-02) ignores "
               "GT label "
            << o.ignore_label << "; miou_gt_classes is the textbook mIoU\n";
    if (proto.count("dfc"))
        out << "dfc: many-to-one best IoU per GT segment, GT mode '" << o.dfc_mode
            << "'; image_max_miou = best annotation per image, average_mIOU pools all GT segments\n";
    if (proto.count("foreground"))
        out << "foreground: IoU of non-zero pixels; polarity " << o.polarity
            << (polarity == mt::mask_polarity::oracle
                    ? " (GT-chosen polarity, UnSegGNet protocol; " + std::to_string(flipped_masks) + " masks flipped)"
                    : "")
            << "\n";
    std::cout << out.str();

    if (!o.json_path.empty()) {
        json doc = {{"tool", "tessel-evaluate"},
                    {"ground_truth", o.gt_dir.string()},
                    {"predictions", o.pred_dir.string()},
                    {"ids", o.ids},
                    {"settings", T},
                    {"conventions",
                     {{"voi_base", 2},
                      {"bsr_covering", "covering of the GT by the segmentation, pooled over GTs and images"},
                      {"multi_gt_reduction", "mean over an image's GTs (BSR covering: pooled)"},
                      {"setting_index", "1-based"}}},
                    {"aggregate", agg},
                    {"images", images}};
        std::ofstream f(o.json_path);
        tessel::expects(static_cast<bool>(f), where, "cannot open '", o.json_path.string(), "' for writing");
        f << doc.dump(2) << "\n";
        tessel::expects(static_cast<bool>(f), where, "cannot write '", o.json_path.string(), "'");
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "tessel-evaluate: score segmentations against human annotations.\n"
        "Ground truth: DIR/<id>_gt<k>.png (BSDS layout). Predictions: DIR/<id>.png, or DIR/<id>_seg<t>.png "
        "(t = 0..T-1) for T settings per image, which gives ODS/OIS/Best.\n"
        "Example: tessel-evaluate --gt my_dataset/gt --pred my_results --protocol bsr,grapl --json scores.json"};
    options o;
    app.add_option("--gt", o.gt_dir, "folder of <id>_gt<k>.png ground truths (index.txt optional)")->required();
    app.add_option("--pred", o.pred_dir, "folder of <id>.png or <id>_seg<t>.png predictions")->required();
    app.add_option("--json", o.json_path, "write per-image and aggregate scores to this JSON file");
    app.add_flag("--force", o.force, "overwrite an existing --json file");
    app.add_option("--protocol,-p", o.protocols,
                   "one or more of: bsr (PRI, VoI, covering; default), grapl (Hungarian accuracy/mIoU), dfc "
                   "(best IoU per GT segment), foreground (binary masks), bde, clustering (NMI, homogeneity, "
                   "completeness, V-measure, ARI), all")
        ->check(CLI::IsMember({"bsr", "grapl", "dfc", "foreground", "bde", "clustering", "all"}))
        ->delimiter(',');
    app.add_flag("--binary", o.binary,
                 "binary-mask set (Kvasir-SEG, ECSSD): binarise GT and predictions (non-zero = foreground); "
                 "default protocol becomes foreground");
    app.add_option("--polarity", o.polarity,
                   "foreground polarity: as-given, or oracle (UnSegGNet: the better of the mask and its "
                   "complement, chosen with the GT; reported)")
        ->check(CLI::IsMember({"as-given", "oracle"}));
    app.add_option("--dfc-mode", o.dfc_mode, "DFC annotations used: all, fine (most labels), coarse (fewest)")
        ->check(CLI::IsMember({"all", "fine", "coarse"}));
    app.add_option("--ignore-label", o.ignore_label, "GT label ignored by GraPL's weighted Jaccard (default 0)");
    app.add_flag("--exact", o.exact,
                 "BSR: aggregate unrounded values (default rounds intermediates to 6 digits like the reference)");
    app.add_option("--bsr-out", o.bsr_out,
                   "BSR: also write eval_RI_VOI.txt, eval_RI_VOI_thr.txt, eval_cover.txt, eval_cover_th.txt, "
                   "eval_cover_img.txt (%10g columns, diffable with the reference) into this folder");
    app.add_flag("--quiet,-q", o.quiet, "no progress on stderr");
    app.add_option("--ids", o.ids, "evaluate only these images: a comma-separated list of ids, or a file with one id "
                                   "per line (index.txt lines work)");
    app.add_flag("--force-protocol", o.force_protocol,
                 "score even where the protocol does not fit the data (foreground IoU on multi-label ground "
                 "truth, --binary on many-segment predictions)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help
        std::cerr << "tessel-evaluate: error: " << e.what() << " (see --help)\n";
        return e.get_exit_code();
    }
    try {
        return run(o);
    } catch (const tessel::error& e) {
        // The tool's own checks name no deeper function; library errors keep theirs.
        std::string msg = e.what();
        if (e.where() == "tessel-evaluate") msg = msg.substr(e.where().size() + 2);
        std::cerr << "tessel-evaluate: error: " << msg << "\n";
    } catch (const std::exception& e) {
        std::cerr << "tessel-evaluate: error: " << e.what() << "\n";
    }
    return 1;
}
