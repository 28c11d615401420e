// tessel/metrics/covering.hpp: segmentation covering in both directions (METRICS.md §4).
//
// C(S' -> S) = (1/N) sum over regions R of S of |R| * max over R' in S' of IoU(R, R'): the covering
// *of S by S'*. The BSDS "GT covering" is C(seg -> gt), the covering of the ground truth by the
// segmentation (sum over GT regions); GraPL's `segmentation_covering` is the reverse C(gt -> seg)
// (sum over predicted regions). The direction is therefore always an explicit argument. The BSR
// pooling over several ground truths (sum of counts over sum of areas, and the reverse direction
// that takes each segment's best match in any annotation) is in bsr_covering_counts below.
#pragma once
#include <algorithm>
#include <span>
#include <vector>

#include "tessel/metrics/contingency.hpp"

namespace tessel::metrics {

/// Which partition is covered: gt_by_seg = BSDS "covering of the GT by the segmentation";
/// seg_by_gt = the reverse (GraPL's segmentation_covering).
enum class covering_direction { gt_by_seg, seg_by_gt };

/// IoU of row i and column j given their overlap.
[[nodiscard]] inline double cell_iou(const contingency_table& t, const contingency_cell& c) noexcept {
    const count_t u = t.row_sums[static_cast<std::size_t>(c.row)] + t.col_sums[static_cast<std::size_t>(c.col)] - c.count;
    return static_cast<double>(c.count) / static_cast<double>(u);
}

/// For every GT region (column) j, max over segments i of IoU(i, j). Rows whose label is 0 are
/// skipped when skip_zero_segment (the BSR code drops seg label 0 as a region but keeps its pixels).
[[nodiscard]] inline std::vector<double> best_iou_per_gt_region(const contingency_table& t,
                                                                bool skip_zero_segment = false) {
    std::vector<double> best(static_cast<std::size_t>(t.cols()), 0.0);
    for (const auto& c : t.cells) {
        if (skip_zero_segment && t.row_labels[static_cast<std::size_t>(c.row)] == 0) continue;
        auto& b = best[static_cast<std::size_t>(c.col)];
        b = std::max(b, cell_iou(t, c));
    }
    return best;
}

/// For every segment (row) i, max over GT regions j of IoU(i, j); GT label 0 skipped when asked.
[[nodiscard]] inline std::vector<double> best_iou_per_segment(const contingency_table& t, bool skip_zero_gt = false) {
    std::vector<double> best(static_cast<std::size_t>(t.rows()), 0.0);
    for (const auto& c : t.cells) {
        if (skip_zero_gt && t.col_labels[static_cast<std::size_t>(c.col)] == 0) continue;
        auto& b = best[static_cast<std::size_t>(c.row)];
        b = std::max(b, cell_iou(t, c));
    }
    return best;
}

/// Covering in the given direction, every label a region; range [0, 1], higher is better.
/// @code double sc = tessel::metrics::covering(t, covering_direction::gt_by_seg); @endcode
[[nodiscard]] inline double covering(const contingency_table& t,
                                     covering_direction direction = covering_direction::gt_by_seg) {
    expects(t.total > 0, "tessel::metrics::covering", "empty contingency table");
    double s = 0;
    if (direction == covering_direction::gt_by_seg) {
        const auto best = best_iou_per_gt_region(t);
        for (std::size_t j = 0; j < best.size(); ++j) s += static_cast<double>(t.col_sums[j]) * best[j];
    } else {
        const auto best = best_iou_per_segment(t);
        for (std::size_t i = 0; i < best.size(); ++i) s += static_cast<double>(t.row_sums[i]) * best[i];
    }
    return s / static_cast<double>(t.total);
}

template <HostBackend B = cpu_serial>
[[nodiscard]] double covering(const label_map& seg, const label_map& gt,
                              covering_direction direction = covering_direction::gt_by_seg, B backend = {}) {
    return covering(contingency(seg, gt, backend), direction);
}

/// The sufficient statistics of BSR's covering for one image and one segmentation
/// (evaluation_reg_image.m). Label 0 is "no region" on either side, as in the reference: its pixels
/// still count towards the other side's region areas.
///   cnt_r = sum over GT regions r of all K ground truths of |r| * max_s IoU(r, s); sum_r = sum |r|
///   cnt_p = sum over segments s of |s| * max over the regions of ALL ground truths of IoU(s, .);
///   sum_p = sum |s|.
/// cnt_r / sum_r is the BSDS covering (= the mean over k of C(seg -> G_k) when no GT has label 0);
/// cnt_p / sum_p is the pooled reverse direction, which is not a mean of per-GT coverings.
struct covering_counts {
    double cnt_r = 0, sum_r = 0, cnt_p = 0, sum_p = 0;
};

/// BSR covering counts from the tables of one segmentation against each of its ground truths.
/// `best_gt_iou`, when not null, receives max_s IoU(r, s) for every GT region r (all GTs
/// concatenated, label-0 columns left out): the input of the Best-covering statistic.
[[nodiscard]] inline covering_counts bsr_covering_counts(std::span<const contingency_table> tables,
                                                         std::vector<double>* best_gt_iou = nullptr) {
    constexpr std::string_view where = "tessel::metrics::bsr_covering_counts";
    expects(!tables.empty(), where, "no ground truth given");
    covering_counts c;
    std::vector<double> seg_best(static_cast<std::size_t>(tables[0].rows()), 0.0);
    if (best_gt_iou) best_gt_iou->clear();
    for (const auto& t : tables) {
        expects(t.row_labels == tables[0].row_labels && t.total == tables[0].total, where,
                "the tables must share one segmentation");
        const auto gt_best = best_iou_per_gt_region(t, true);
        for (std::size_t j = 0; j < gt_best.size(); ++j) {
            if (t.col_labels[j] == 0) continue;
            c.cnt_r += static_cast<double>(t.col_sums[j]) * gt_best[j];
            c.sum_r += static_cast<double>(t.col_sums[j]);
            if (best_gt_iou) best_gt_iou->push_back(gt_best[j]);
        }
        const auto s_best = best_iou_per_segment(t, true);
        for (std::size_t i = 0; i < s_best.size(); ++i) seg_best[i] = std::max(seg_best[i], s_best[i]);
    }
    const auto& t0 = tables[0];
    for (std::size_t i = 0; i < seg_best.size(); ++i) {
        if (t0.row_labels[i] == 0) continue;
        c.cnt_p += static_cast<double>(t0.row_sums[i]) * seg_best[i];
        c.sum_p += static_cast<double>(t0.row_sums[i]);
    }
    return c;
}

/// The BSDS per-image covering of the ground truths by seg: cnt_r / sum_r pooled over the GTs.
template <HostBackend B = cpu_serial>
[[nodiscard]] double bsr_covering(const label_map& seg, std::span<const label_map> gts, B backend = {}) {
    const auto tables = contingencies(seg, gts, backend);
    const covering_counts c = bsr_covering_counts(tables);
    return c.sum_r > 0 ? c.cnt_r / c.sum_r : 0.0;
}

}  // namespace tessel::metrics
