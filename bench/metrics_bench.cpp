// metrics_bench: cost of the evaluation module on BSDS500 data, one JSON object per line.
//
//   metrics_one_image    one 481x321 val image against all its human segmentations: PRI, VoI,
//                        BSR covering counts, BDE, Hungarian accuracy and mIoU (cpu_serial, one
//                        core), the mean over `repeats` runs; PNG decoding not included.
//   metrics_bsds500_val  the 100 val images with the same metrics plus the BSR aggregation;
//                        `seconds` includes reading the PNGs, `seconds_scoring` excludes it.
// The prediction is a fixed grid of 40x40-pixel blocks (no segmentation method is involved), so
// the numbers measure the metrics alone. Lines say "skipped" when the data folder is missing.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "tessel/data/bsds.hpp"
#include "tessel/metrics/aggregate.hpp"
#include "tessel/metrics/boundary_displacement.hpp"
#include "tessel/metrics/matched_iou.hpp"

namespace fs = std::filesystem;
namespace mt = tessel::metrics;
using tessel::label_map;

namespace {
constexpr int block = 40;

label_map grid_blocks(tessel::index_t w, tessel::index_t h) {
    label_map m(w, h);
    const tessel::index_t cols = (w + block - 1) / block;
    for (tessel::index_t y = 0; y < h; ++y)
        for (tessel::index_t x = 0; x < w; ++x) m(x, y) = static_cast<tessel::label_t>((y / block) * cols + x / block);
    return m;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Every metric the bench covers, for one prediction against the image's GTs; returns a checksum
// so the work cannot be optimised away.
double score_all(const label_map& seg, const std::vector<label_map>& gts, mt::bsr_image_stats* stats) {
    // One table per GT, shared by PRI, VoI, covering and the Hungarian scores.
    const auto tables = mt::contingencies(seg, std::span<const label_map>(gts), tessel::cpu_serial{});
    std::vector<double> best;
    stats->settings = {mt::bsr_setting(tables, &best)};
    stats->cnt_r_best = stats->settings[0].cover.cnt_r;  // one setting: Best = the setting itself
    double sum = stats->settings[0].ri + stats->settings[0].vi + stats->settings[0].cover.cnt_r;
    for (const auto& t : tables) {
        const auto h = mt::hungarian_scores(t);
        sum += h.accuracy + h.miou_gt_classes + h.weighted_jaccard;
    }
    sum += mt::mean_boundary_displacement_error(seg, std::span<const label_map>(gts), tessel::cpu_serial{});
    return sum;
}
}  // namespace

int main() {
    const fs::path val = fs::path(TESSEL_BENCH_DATA_DIR) / "bsds500" / "val";
    if (!fs::exists(val / "index.txt")) {
        std::printf("{\"bench\": \"metrics_one_image\", \"seconds\": null, \"skipped\": \"no data at %s\"}\n",
                    val.string().c_str());
        std::printf("{\"bench\": \"metrics_bsds500_val\", \"seconds\": null, \"skipped\": \"no data at %s\"}\n",
                    val.string().c_str());
        return 0;
    }
    const tessel::data::bsds_dataset set(val);
    // ---- one image: the first landscape image of the split -----------------------------------
    std::size_t pick = 0;
    while (pick + 1 < set.size() && set[pick].width != 481) ++pick;
    {
        const auto gts = set.load_ground_truths(pick);
        const label_map seg = grid_blocks(gts[0].width(), gts[0].height());
        mt::bsr_image_stats stats;
        double check = score_all(seg, gts, &stats);  // warm-up
        const int repeats = 20;
        const auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < repeats; ++r) check += score_all(seg, gts, &stats);
        const double s = seconds_since(t0) / repeats;
        std::printf("{\"bench\": \"metrics_one_image\", \"seconds\": %.6f, \"image\": \"%s\", \"width\": %lld, "
                    "\"height\": %lld, \"ground_truths\": %zu, \"prediction\": \"grid of %dx%d blocks\", "
                    "\"segments\": %lld, \"metrics\": \"PRI VoI covering BDE hungarian_accuracy hungarian_miou\", "
                    "\"backend\": \"cpu_serial\", \"repeats\": %d, \"checksum\": %.6g}\n",
                    s, set[pick].id.c_str(), static_cast<long long>(seg.width()), static_cast<long long>(seg.height()),
                    gts.size(), block, block, static_cast<long long>(seg.count_labels()), repeats, check);
    }
    // ---- the whole val split --------------------------------------------------------------------
    {
        const auto t0 = std::chrono::steady_clock::now();
        double scoring = 0, check = 0;
        std::size_t n_gt = 0;
        std::vector<mt::bsr_image_stats> all(set.size());
        for (std::size_t i = 0; i < set.size(); ++i) {
            const auto gts = set.load_ground_truths(i);
            n_gt += gts.size();
            const label_map seg = grid_blocks(gts[0].width(), gts[0].height());
            const auto t1 = std::chrono::steady_clock::now();
            check += score_all(seg, gts, &all[i]);
            scoring += seconds_since(t1);
        }
        const auto t2 = std::chrono::steady_clock::now();
        const auto r = mt::bsr_aggregate(all);
        scoring += seconds_since(t2);
        std::printf("{\"bench\": \"metrics_bsds500_val\", \"seconds\": %.4f, \"seconds_scoring\": %.4f, "
                    "\"images\": %zu, \"ground_truths\": %zu, \"prediction\": \"grid of %dx%d blocks\", "
                    "\"backend\": \"cpu_serial\", \"covering_ods\": %.6f, \"pri_ods\": %.6f, \"voi_ods\": %.6f, "
                    "\"checksum\": %.6g}\n",
                    seconds_since(t0), scoring, set.size(), n_gt, block, block, r.covering_ods, r.pri.ods, r.voi.ods,
                    check);
    }
    return 0;
}
