// tessel/metrics/matched_iou.hpp: matched pixel accuracy and the mIoU family (METRICS.md §7, §8, §10).
//
// Three protocols, all computed from the contingency table except the binary one:
//   * GraPL / Hungarian (§7): segments are matched one-to-one to GT labels by maximum overlap;
//     surplus segments stay unmatched ("dummy" labels, all their pixels are errors). Reported as
//     pixel accuracy and four IoU reductions: (a) macro over GT classes, (b) macro over GT classes
//     plus dummies, (c) GraPL's torchmetrics weighted Jaccard with an ignore label (its code since
//     2024-02), (d) GraPL's first scikit-learn weighted Jaccard (prediction-size weights).
//   * DFC / Kanezaki (§8): every GT segment takes its best IoU over all segments (many-to-one).
//   * Binary foreground IoU (§10): |A and B| / |A or B|, optionally with UnSegGNet's GT polarity
//     oracle (the better of the mask and its complement).
#pragma once
#include <algorithm>
#include <span>
#include <string_view>
#include <vector>

#include "tessel/metrics/contingency.hpp"
#include "tessel/metrics/covering.hpp"
#include "tessel/metrics/hungarian.hpp"

namespace tessel::metrics {

// ---- Hungarian (GraPL) ------------------------------------------------------------------------

/// A one-to-one matching of segments (rows) to GT labels (columns).
///   ensures: seg_to_gt[i] is a column or -1 (unmatched, a dummy label); matched columns are
///            distinct; matched_pixels = sum of n(i, seg_to_gt[i]) is the maximum possible.
struct hungarian_matching {
    std::vector<index_t> seg_to_gt;
    std::vector<index_t> gt_to_seg;
    count_t matched_pixels = 0;
};

/// The largest matching match_one_to_one solves: the solver takes up to min(R, C)^2 max(R, C)
/// steps on an R x C table (2048 x 2048 random labels: 9 s on one core) and holds the table dense.
/// A larger one (a label map of 65536 single-pixel regions against itself would need a 34 GB
/// table and days) is refused rather than started.
inline constexpr double max_matching_work = 8.6e9;    ///< min(R, C)^2 max(R, C), about 2048^3
inline constexpr double max_matching_cells = 6.7e7;   ///< R x C, about 2^26 (1.6 GB of tables)

/// Maximum-overlap one-to-one matching on the table. Zero-overlap pairs are left unmatched (they
/// add nothing and would only hide dummies). Ties between optimal matchings are broken by the
/// solver's fixed order, so the result is deterministic.
/// @pre the table is within max_matching_work and max_matching_cells (else tessel::error).
[[nodiscard]] inline hungarian_matching match_one_to_one(const contingency_table& t) {
    constexpr std::string_view where = "tessel::metrics::match_one_to_one";
    expects(t.total > 0, where, "empty contingency table");
    const double r = static_cast<double>(t.rows()), c = static_cast<double>(t.cols());
    const double lo = std::min(r, c), hi = std::max(r, c);
    expects(lo * lo * hi <= max_matching_work && r * c <= max_matching_cells, where, "one-to-one matching of ",
            t.rows(), " segments to ", t.cols(), " ground-truth labels is too large (at most about 2048 x 2048 "
            "labels, or a ", static_cast<index_t>(max_matching_cells), "-cell table); scores without a matching "
            "(BSR, DFC best IoU, clustering) take any label count");
    const auto dense = t.dense();
    std::vector<double> cost(dense.begin(), dense.end());
    const assignment a = solve_assignment(cost, t.rows(), t.cols(), true);
    hungarian_matching m;
    m.seg_to_gt.assign(static_cast<std::size_t>(t.rows()), -1);
    m.gt_to_seg.assign(static_cast<std::size_t>(t.cols()), -1);
    for (index_t i = 0; i < t.rows(); ++i) {
        const index_t j = a.row_to_col[static_cast<std::size_t>(i)];
        if (j < 0 || dense[static_cast<std::size_t>(i * t.cols() + j)] == 0) continue;
        m.seg_to_gt[static_cast<std::size_t>(i)] = j;
        m.gt_to_seg[static_cast<std::size_t>(j)] = i;
        m.matched_pixels += dense[static_cast<std::size_t>(i * t.cols() + j)];
    }
    return m;
}

/// Scores of one segmentation against one GT after Hungarian matching.
struct matched_scores {
    double accuracy = 0;             ///< matched pixels / N (tie-independent)
    double miou_gt_classes = 0;      ///< (a) mean over GT labels of IoU_g, unmatched g counts 0
    double miou_union = 0;           ///< (b) as (a) but also averaging a 0 for every dummy segment
    double weighted_jaccard = 0;     ///< (c) GraPL/torchmetrics: GT pixels with the ignore label removed,
                                     ///<     IoU weighted by GT class size
    double weighted_jaccard_pred = 0;  ///< (d) GraPL first version: weighted by matched-prediction size
    std::vector<double> iou_per_gt;  ///< IoU_g for each GT column, 0 if unmatched
};

/// Hungarian-matched accuracy and IoU reductions. `ignore_label` is the GT label torchmetrics'
/// ignore_index removes in (c) (GraPL uses 0); if the GT has no such label nothing is removed.
/// @code auto s = tessel::metrics::hungarian_scores(tessel::metrics::contingency(seg, gt)); @endcode
[[nodiscard]] inline matched_scores hungarian_scores(const contingency_table& t, label_t ignore_label = 0) {
    const hungarian_matching m = match_one_to_one(t);
    const auto dense = t.dense();
    const index_t R = t.rows(), C = t.cols();
    auto n = [&](index_t i, index_t j) { return dense[static_cast<std::size_t>(i * C + j)]; };
    matched_scores s;
    s.accuracy = static_cast<double>(m.matched_pixels) / static_cast<double>(t.total);
    s.iou_per_gt.assign(static_cast<std::size_t>(C), 0.0);
    index_t ignore_col = -1;
    for (index_t j = 0; j < C; ++j)
        if (t.col_labels[static_cast<std::size_t>(j)] == ignore_label) ignore_col = j;
    double sum_iou = 0, wsum_c = 0, w_c = 0, wsum_d = 0;
    for (index_t j = 0; j < C; ++j) {
        const index_t i = m.gt_to_seg[static_cast<std::size_t>(j)];
        const count_t b = t.col_sums[static_cast<std::size_t>(j)];
        if (i >= 0) {
            const count_t a = t.row_sums[static_cast<std::size_t>(i)], nij = n(i, j);
            const double iou = static_cast<double>(nij) / static_cast<double>(a + b - nij);
            s.iou_per_gt[static_cast<std::size_t>(j)] = iou;
            wsum_d += static_cast<double>(a) * iou;
            if (j != ignore_col) {
                const count_t a_kept = a - (ignore_col >= 0 ? n(i, ignore_col) : 0);
                wsum_c += static_cast<double>(b) * static_cast<double>(nij) / static_cast<double>(b + a_kept - nij);
            }
        }
        sum_iou += s.iou_per_gt[static_cast<std::size_t>(j)];
        if (j != ignore_col) w_c += static_cast<double>(b);
    }
    index_t dummies = 0;
    for (index_t i = 0; i < R; ++i) dummies += m.seg_to_gt[static_cast<std::size_t>(i)] < 0 ? 1 : 0;
    s.miou_gt_classes = sum_iou / static_cast<double>(C);
    s.miou_union = sum_iou / static_cast<double>(C + dummies);
    s.weighted_jaccard = w_c > 0 ? wsum_c / w_c : 0.0;  // every GT pixel ignored: nothing to score
    s.weighted_jaccard_pred = wsum_d / static_cast<double>(t.total);
    return s;
}

template <HostBackend B = cpu_serial>
[[nodiscard]] matched_scores hungarian_scores(const label_map& seg, const label_map& gt, label_t ignore_label = 0,
                                              B backend = {}) {
    return hungarian_scores(contingency(seg, gt, backend), ignore_label);
}

// ---- DFC / Kanezaki best IoU per GT segment ---------------------------------------------------

/// Which annotations of an image the DFC score uses (miou_calculation.py --mode 1/2/3).
enum class dfc_gt_mode {
    all,    ///< every annotation
    fine,   ///< the annotation with the most labels (first on ties)
    coarse  ///< the annotation with the fewest labels (first on ties)
};

/// DFC per-image result: the best IoU of every GT segment of the used annotations (pooled later
/// over the dataset) and the best per-annotation mean.
struct dfc_image_scores {
    std::vector<double> segment_best_iou;
    double max_miou = 0;
};

/// best(l) = max over segments u of IoU(u, l) for every GT label l (0 included), per annotation.
/// @pre tables is non-empty; all tables share the segmentation.
[[nodiscard]] inline dfc_image_scores dfc_scores(std::span<const contingency_table> tables,
                                                 dfc_gt_mode mode = dfc_gt_mode::all) {
    expects(!tables.empty(), "tessel::metrics::dfc_scores", "no ground truth given");
    std::size_t pick = 0;
    for (std::size_t k = 1; k < tables.size(); ++k) {
        if (mode == dfc_gt_mode::fine && tables[k].cols() > tables[pick].cols()) pick = k;
        if (mode == dfc_gt_mode::coarse && tables[k].cols() < tables[pick].cols()) pick = k;
    }
    dfc_image_scores r;
    r.max_miou = -1;
    for (std::size_t k = 0; k < tables.size(); ++k) {
        if (mode != dfc_gt_mode::all && k != pick) continue;
        const auto best = best_iou_per_gt_region(tables[k]);
        double s = 0;
        for (double b : best) s += b;
        r.segment_best_iou.insert(r.segment_best_iou.end(), best.begin(), best.end());
        r.max_miou = std::max(r.max_miou, s / static_cast<double>(best.size()));
    }
    return r;
}

/// Dataset DFC scores: average_miou pools GT segments of all images (as the reference's miou_list),
/// max_miou is the mean over images of the per-image best annotation mean.
struct dfc_summary {
    double average_miou = 0;
    double max_miou = 0;
};
[[nodiscard]] inline dfc_summary dfc_aggregate(std::span<const dfc_image_scores> images) {
    expects(!images.empty(), "tessel::metrics::dfc_aggregate", "no images");
    dfc_summary s;
    double pooled = 0;
    std::size_t segments = 0;
    for (const auto& im : images) {
        for (double b : im.segment_best_iou) pooled += b;
        segments += im.segment_best_iou.size();
        s.max_miou += im.max_miou;
    }
    s.average_miou = pooled / static_cast<double>(segments);
    s.max_miou /= static_cast<double>(images.size());
    return s;
}

// ---- binary foreground IoU (UnSegGNet) --------------------------------------------------------

/// How the predicted mask's polarity is chosen.
enum class mask_polarity {
    as_given,  ///< non-zero prediction = foreground
    oracle     ///< UnSegGNet/DeepCut: the better of the mask and its complement, chosen with the GT
};

struct foreground_iou_result {
    double iou = 0;
    bool flipped = false;  ///< the oracle used the complement of the prediction
};

namespace detail {
struct binary_counts {
    count_t tp = 0, fp = 0, fn = 0, tn = 0;
    TESSEL_HD binary_counts operator+(const binary_counts& o) const {
        return {tp + o.tp, fp + o.fp, fn + o.fn, tn + o.tn};
    }
};
struct binary_counts_fn {
    const label_t* pred;
    const label_t* gt;
    TESSEL_HD binary_counts operator()(index_t i) const {
        const bool p = pred[i] != 0, g = gt[i] != 0;
        return {p && g ? 1 : 0, p && !g ? 1 : 0, !p && g ? 1 : 0, !p && !g ? 1 : 0};
    }
};
inline double iou_or_one(count_t inter, count_t uni) {
    // Both masks empty: they agree perfectly (the reference code would divide by zero).
    return uni == 0 ? 1.0 : static_cast<double>(inter) / static_cast<double>(uni);
}
}  // namespace detail

/// Foreground IoU |P and G| / |P or G| of binary masks (non-zero = foreground).
/// @pre pred and gt are non-empty and of equal size.
/// @code auto r = foreground_iou(pred, mask, mask_polarity::oracle); // report r.flipped too @endcode
template <HostBackend B = cpu_serial>
[[nodiscard]] foreground_iou_result foreground_iou(const label_map& pred, const label_map& gt,
                                                   mask_polarity polarity = mask_polarity::as_given, B backend = {}) {
    constexpr std::string_view where = "tessel::metrics::foreground_iou";
    expects(!pred.empty() && !gt.empty(), where, "empty mask (prediction ", pred.width(), "x", pred.height(),
            ", ground truth ", gt.width(), "x", gt.height(), ")");
    expects(pred.width() == gt.width() && pred.height() == gt.height(), where, "size mismatch: prediction is ",
            pred.width(), "x", pred.height(), ", ground truth is ", gt.width(), "x", gt.height());
    const auto c = parallel_sum(backend, pred.size(), detail::binary_counts{},
                                detail::binary_counts_fn{pred.data(), gt.data()});
    foreground_iou_result r{detail::iou_or_one(c.tp, c.tp + c.fp + c.fn), false};
    if (polarity == mask_polarity::oracle) {
        // The complement's foreground is the prediction's background: tp' = fn, fp' = tn, fn' = tp.
        const double flipped = detail::iou_or_one(c.fn, c.fn + c.tn + c.tp);
        if (flipped > r.iou) r = {flipped, true};
    }
    return r;
}

}  // namespace tessel::metrics
