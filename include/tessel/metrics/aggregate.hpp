// tessel/metrics/aggregate.hpp: dataset-level aggregation, the BSR region benchmark (METRICS.md §6).
//
// Each image is scored with a family of T segmentations (parameter settings or UCM thresholds,
// index t meaning the same setting on every image). ODS picks one t for the whole dataset, OIS the
// best t per image, Best lets each GT region pick its own t. bsr_image_stats holds the per-image,
// per-setting sufficient statistics of evaluation_reg_image.m; bsr_aggregate reproduces
// collect_eval_reg.m, including its re-reading of 6-significant-digit (%g) intermediates (§6.4),
// first/last-maximiser rules and 0/0 guards. ods_ois does the same for any per-image score.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tessel/metrics/contingency.hpp"
#include "tessel/metrics/covering.hpp"
#include "tessel/metrics/rand_index.hpp"
#include "tessel/metrics/variation_of_information.hpp"

namespace tessel::metrics {

// ---- generic ODS / OIS over a [image][setting] score matrix -----------------------------------

/// ODS/OIS of a score given per image and per setting.
///   ods         = best over t of the mean over images (first best t, as MATLAB's max/min);
///   ois         = mean over images of each image's best score;
///   per_setting = the mean over images for every t.
struct ods_ois_result {
    std::vector<double> per_setting;
    index_t ods_setting = 0;  ///< 0-based index of the ODS setting
    double ods = 0;
    double ois = 0;
    std::vector<index_t> per_image_best;  ///< 0-based best setting of each image (first best)
};

/// @pre scores is non-empty and every row has the same non-zero length.
[[nodiscard]] inline ods_ois_result ods_ois(std::span<const std::vector<double>> scores, bool higher_is_better) {
    constexpr std::string_view where = "tessel::metrics::ods_ois";
    expects(!scores.empty(), where, "no images");
    const std::size_t T = scores[0].size();
    expects(T > 0, where, "image 0 has no settings");
    auto better = [&](double a, double b) { return higher_is_better ? a > b : a < b; };
    ods_ois_result r;
    r.per_setting.assign(T, 0.0);
    for (std::size_t i = 0; i < scores.size(); ++i) {
        expects(scores[i].size() == T, where, "image ", i, " has ", scores[i].size(), " settings, image 0 has ", T,
                "; every image needs the same family");
        std::size_t best = 0;
        for (std::size_t t = 0; t < T; ++t) {
            r.per_setting[t] += scores[i][t];
            if (better(scores[i][t], scores[i][best])) best = t;
        }
        r.per_image_best.push_back(static_cast<index_t>(best));
        r.ois += scores[i][best];
    }
    for (auto& v : r.per_setting) v /= static_cast<double>(scores.size());
    r.ois /= static_cast<double>(scores.size());
    for (std::size_t t = 1; t < T; ++t)
        if (better(r.per_setting[t], r.per_setting[static_cast<std::size_t>(r.ods_setting)]))
            r.ods_setting = static_cast<index_t>(t);
    r.ods = r.per_setting[static_cast<std::size_t>(r.ods_setting)];
    return r;
}

// ---- BSR region benchmark ---------------------------------------------------------------------

/// evaluation_reg_image.m's statistics of one segmentation of one image.
struct bsr_setting_stats {
    double ri = 0;  ///< mean over GTs of the Rand index
    double vi = 0;  ///< mean over GTs of VI in bits
    covering_counts cover;
};

/// One image: the statistics of every setting t, plus cnt_r_best = sum over GT regions r of
/// |r| * max_t IoU_t(r).
struct bsr_image_stats {
    std::vector<bsr_setting_stats> settings;
    double cnt_r_best = 0;
};

/// The RI, VI and covering counts of one segmentation from its tables against the image's GTs.
/// `best_gt_iou` as in bsr_covering_counts.
[[nodiscard]] inline bsr_setting_stats bsr_setting(std::span<const contingency_table> tables,
                                                   std::vector<double>* best_gt_iou = nullptr) {
    expects(!tables.empty(), "tessel::metrics::bsr_setting", "no ground truth given");
    bsr_setting_stats st;
    for (const auto& t : tables) {
        st.ri += rand_index(t);
        st.vi += variation_of_information(t).vi;
    }
    st.ri /= static_cast<double>(tables.size());
    st.vi /= static_cast<double>(tables.size());
    st.cover = bsr_covering_counts(tables, best_gt_iou);
    return st;
}

/// Scores a family of segmentations of one image against its ground truths.
/// @pre segs and gts are non-empty; every map has the same size.
template <HostBackend B = cpu_serial>
[[nodiscard]] bsr_image_stats bsr_evaluate_image(std::span<const label_map> segs, std::span<const label_map> gts,
                                                 B backend = {}) {
    constexpr std::string_view where = "tessel::metrics::bsr_evaluate_image";
    expects(!segs.empty(), where, "no segmentation given");
    expects(!gts.empty(), where, "no ground truth given");
    std::vector<compact_labels> gt_compact;
    for (std::size_t k = 0; k < gts.size(); ++k) {
        expects(gts[k].width() == gts[0].width() && gts[k].height() == gts[0].height(), where, "ground truth ", k,
                " is ", gts[k].width(), "x", gts[k].height(), ", ground truth 0 is ", gts[0].width(), "x",
                gts[0].height());
        gt_compact.push_back(compact(gts[k], backend));
    }
    bsr_image_stats out;
    std::vector<double> best_over_t, areas;
    for (std::size_t t = 0; t < segs.size(); ++t) {
        check_ground_truths(segs[t], gts, where);
        const compact_labels s = compact(segs[t], backend);
        std::vector<contingency_table> tables;
        for (const auto& g : gt_compact) tables.push_back(contingency(s, g, backend));
        std::vector<double> best;
        const bsr_setting_stats st = bsr_setting(tables, &best);
        if (t == 0) {
            best_over_t = best;
            for (const auto& tb : tables)
                for (std::size_t j = 0; j < tb.col_sums.size(); ++j)
                    if (tb.col_labels[j] != 0) areas.push_back(static_cast<double>(tb.col_sums[j]));
        } else {
            for (std::size_t r = 0; r < best.size(); ++r) best_over_t[r] = std::max(best_over_t[r], best[r]);
        }
        out.settings.push_back(st);
    }
    for (std::size_t r = 0; r < areas.size(); ++r) out.cnt_r_best += areas[r] * best_over_t[r];
    return out;
}

/// Rounds like printf("%g") then strtod: 6 significant digits, as BSR's %10g temporary files.
[[nodiscard]] inline double round_g6(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", v);
    return std::strtod(buf, nullptr);
}

struct bsr_options {
    /// Round every per-image intermediate to 6 significant digits before aggregating, as the
    /// reference does by re-reading its %10g files; off gives the exact (unrounded) values.
    bool round_like_reference = true;
    /// The value printed for setting t (UCM thresholds); empty means 1..T (the segs convention).
    std::vector<double> thresholds;
};

/// One row of eval_cover_img.txt.
struct bsr_image_row {
    index_t best_setting = 0;  ///< 0-based, the first maximiser of R_i,t
    double covering = 0;       ///< R_i = cnt_r / sum_r at that t
    double reverse_covering = 0;  ///< P_i = cnt_p / sum_p at that t
};

/// The outputs of collect_eval_reg.m (§6.3). Setting indices are 0-based here; the files print
/// thresholds[t] (1-based t for segs input).
struct bsr_result {
    std::vector<double> thresholds;
    ods_ois_result pri;  ///< higher is better
    ods_ois_result voi;  ///< lower is better, bits
    std::vector<double> covering_per_setting;  ///< pooled over images
    index_t covering_ods_setting = 0;
    double covering_ods = 0, covering_ois = 0, covering_best = 0;
    std::vector<bsr_image_row> images;
};

/// Aggregates per-image statistics into the BSR outputs.
/// @pre images non-empty, every image with the same number T > 0 of settings, thresholds empty or of size T.
[[nodiscard]] inline bsr_result bsr_aggregate(std::span<const bsr_image_stats> images, const bsr_options& options = {}) {
    constexpr std::string_view where = "tessel::metrics::bsr_aggregate";
    expects(!images.empty(), where, "no images");
    const std::size_t T = images[0].settings.size();
    expects(T > 0, where, "image 0 has no settings");
    expects(options.thresholds.empty() || options.thresholds.size() == T, where, options.thresholds.size(),
            " thresholds given for ", T, " settings");
    auto q = [&](double v) { return options.round_like_reference ? round_g6(v) : v; };
    auto ratio = [](double c, double s) { return c / (s + (s == 0 ? 1.0 : 0.0)); };
    bsr_result r;
    r.thresholds = options.thresholds;
    if (r.thresholds.empty())
        for (std::size_t t = 0; t < T; ++t) r.thresholds.push_back(static_cast<double>(t + 1));
    std::vector<std::vector<double>> ri(images.size()), vi(images.size());
    std::vector<double> cnt_t(T, 0.0), sum_t(T, 0.0);
    double ois_cnt = 0, ois_sum = 0, best_cnt = 0, best_sum = 0;
    for (std::size_t i = 0; i < images.size(); ++i) {
        const auto& im = images[i];
        expects(im.settings.size() == T, where, "image ", i, " has ", im.settings.size(), " settings, image 0 has ", T,
                "; every image needs the same family of settings");
        std::size_t first_best = 0, last_best = 0;
        double first_val = -1, last_val = -1;
        for (std::size_t t = 0; t < T; ++t) {
            const auto& s = im.settings[t];
            ri[i].push_back(q(s.ri));
            vi[i].push_back(q(s.vi));
            const double cnt = q(s.cover.cnt_r), sum = q(s.cover.sum_r);
            cnt_t[t] += cnt;
            sum_t[t] += sum;
            const double R = ratio(cnt, sum);
            if (R > first_val) first_val = R, first_best = t;   // collect_eval_reg's max(): first
            if (R >= last_val) last_val = R, last_best = t;     // its OIS loop keeps the last
        }
        ois_cnt += q(im.settings[last_best].cover.cnt_r);
        ois_sum += q(im.settings[last_best].cover.sum_r);
        best_cnt += q(im.cnt_r_best);
        best_sum += q(im.settings[0].cover.sum_r);
        const auto& fb = im.settings[first_best].cover;
        r.images.push_back({static_cast<index_t>(first_best), ratio(q(fb.cnt_r), q(fb.sum_r)),
                            ratio(q(fb.cnt_p), q(fb.sum_p))});
    }
    r.pri = ods_ois(ri, true);
    r.voi = ods_ois(vi, false);
    for (std::size_t t = 0; t < T; ++t) {
        r.covering_per_setting.push_back(ratio(cnt_t[t], sum_t[t]));
        if (r.covering_per_setting[t] > r.covering_per_setting[static_cast<std::size_t>(r.covering_ods_setting)])
            r.covering_ods_setting = static_cast<index_t>(t);
    }
    r.covering_ods = r.covering_per_setting[static_cast<std::size_t>(r.covering_ods_setting)];
    r.covering_ois = ratio(ois_cnt, ois_sum);
    r.covering_best = ratio(best_cnt, best_sum);
    return r;
}

/// The five BSR output files (eval_RI_VOI.txt, eval_RI_VOI_thr.txt, eval_cover.txt,
/// eval_cover_th.txt, eval_cover_img.txt) as text, each number "%10g" separated by a space, so they
/// can be diffed against the reference outputs. significant_digits > 6 prints "%10.<n>g" instead,
/// for comparing unrounded values.
[[nodiscard]] inline std::map<std::string, std::string> bsr_files(const bsr_result& r, int significant_digits = 6) {
    expects(significant_digits >= 1 && significant_digits <= 17, "tessel::metrics::bsr_files",
            "significant_digits must be 1..17, got ", significant_digits);
    auto row = [significant_digits](std::initializer_list<double> vals) {
        std::string s;
        char buf[64];
        bool first = true;
        for (double v : vals) {
            std::snprintf(buf, sizeof buf, first ? "%10.*g" : " %10.*g", significant_digits, v);
            s += buf;
            first = false;
        }
        return s + "\n";
    };
    auto th = [&](index_t t) { return r.thresholds[static_cast<std::size_t>(t)]; };
    std::map<std::string, std::string> f;
    f["eval_RI_VOI.txt"] = row({th(r.pri.ods_setting), r.pri.ods, r.pri.ois, th(r.voi.ods_setting), r.voi.ods, r.voi.ois});
    f["eval_cover.txt"] = row({th(r.covering_ods_setting), r.covering_ods, r.covering_ois, r.covering_best});
    std::string thr, cov_th, img;
    for (std::size_t t = 0; t < r.thresholds.size(); ++t) {
        thr += row({r.thresholds[t], r.pri.per_setting[t], r.voi.per_setting[t]});
        cov_th += row({r.thresholds[t], r.covering_per_setting[t]});
    }
    for (std::size_t i = 0; i < r.images.size(); ++i)
        img += row({static_cast<double>(i + 1), th(r.images[i].best_setting), r.images[i].covering,
                    r.images[i].reverse_covering});
    f["eval_RI_VOI_thr.txt"] = thr;
    f["eval_cover_th.txt"] = cov_th;
    f["eval_cover_img.txt"] = img;
    return f;
}

}  // namespace tessel::metrics
