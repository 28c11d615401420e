// tessel/metrics/clustering_scores.hpp: label-free clustering scores with scikit-learn's
// definitions (METRICS.md §9): NMI, homogeneity, completeness, V-measure, Rand and adjusted Rand.
//
// scikit-learn's argument order is (labels_true, labels_pred) = (GT, segmentation); homogeneity is
// MI / H(GT) and completeness MI / H(seg). Natural log (the ratios do not depend on the base). The
// special cases (single clusters, empty input, zero MI) follow scikit-learn 1.2.1. Homogeneity is 1
// for any over-segmentation nested in the GT, so report it with completeness or NMI.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <string_view>

#include "tessel/metrics/contingency.hpp"
#include "tessel/metrics/variation_of_information.hpp"

namespace tessel::metrics {

/// How NMI normalises the mutual information (scikit-learn's average_method).
enum class nmi_average { arithmetic, geometric, min, max };

/// NMI(gt, seg) = MI / mean(H(gt), H(seg)); 1 when both are single clusters, 0 when MI == 0.
[[nodiscard]] inline double normalized_mutual_information(const contingency_table& t,
                                                          nmi_average average = nmi_average::arithmetic) {
    if (t.rows() == 1 && t.cols() == 1) return 1.0;
    const entropy_terms e = entropies(t, std::exp(1.0));
    const double mi = std::max(0.0, e.mutual_information);
    if (mi == 0.0) return 0.0;
    double norm = 0;
    switch (average) {
        case nmi_average::arithmetic: norm = 0.5 * (e.h_gt + e.h_seg); break;
        case nmi_average::geometric: norm = std::sqrt(e.h_gt * e.h_seg); break;
        case nmi_average::min: norm = std::min(e.h_gt, e.h_seg); break;
        case nmi_average::max: norm = std::max(e.h_gt, e.h_seg); break;
    }
    return mi / std::max(norm, std::numeric_limits<double>::epsilon());
}

/// Homogeneity, completeness and V-measure (scikit-learn homogeneity_completeness_v_measure).
struct homogeneity_completeness {
    double homogeneity = 1;   ///< MI / H(gt): each segment holds one GT class
    double completeness = 1;  ///< MI / H(seg): each GT class lies in one segment
    double v_measure = 1;     ///< (1 + beta) h c / (beta h + c)
};

/// @pre beta >= 0
[[nodiscard]] inline homogeneity_completeness homogeneity_completeness_v_measure(const contingency_table& t,
                                                                                 double beta = 1.0) {
    expects(beta >= 0, "tessel::metrics::homogeneity_completeness_v_measure", "beta must be >= 0, got ", beta);
    homogeneity_completeness r;
    if (t.total == 0) return r;
    const entropy_terms e = entropies(t, std::exp(1.0));
    const double mi = std::max(0.0, e.mutual_information);
    r.homogeneity = e.h_gt != 0.0 ? mi / e.h_gt : 1.0;
    r.completeness = e.h_seg != 0.0 ? mi / e.h_seg : 1.0;
    r.v_measure = r.homogeneity + r.completeness == 0.0
                      ? 0.0
                      : (1 + beta) * r.homogeneity * r.completeness / (beta * r.homogeneity + r.completeness);
    return r;
}

/// Pair counts over ordered pairs of distinct pixels (scikit-learn pair_confusion_matrix).
struct pair_confusion {
    long double same_both = 0;      ///< tp: joined in both
    long double same_gt_only = 0;   ///< joined in the GT, split by the segmentation
    long double same_seg_only = 0;  ///< joined by the segmentation, split in the GT
    long double split_both = 0;     ///< tn
};

[[nodiscard]] inline pair_confusion pair_confusion_matrix(const contingency_table& t) {
    // 64-bit integer sums are exact; the pair counts reach N^2 and go to long double.
    count_t sn = 0, sa = 0, sb = 0;
    for (const auto& c : t.cells) sn += c.count * c.count;
    for (count_t a : t.row_sums) sa += a * a;
    for (count_t b : t.col_sums) sb += b * b;
    const long double n = static_cast<long double>(t.total);
    pair_confusion p;
    p.same_both = static_cast<long double>(sn) - n;
    p.same_seg_only = static_cast<long double>(sa - sn);
    p.same_gt_only = static_cast<long double>(sb - sn);
    p.split_both = n * n - p.same_seg_only - p.same_gt_only - static_cast<long double>(sn);
    return p;
}

/// scikit-learn rand_score; equals rand_index() and returns 1 when there are no pairs.
[[nodiscard]] inline double rand_score(const contingency_table& t) {
    const pair_confusion p = pair_confusion_matrix(t);
    const long double num = p.same_both + p.split_both;
    const long double den = num + p.same_gt_only + p.same_seg_only;
    if (num == den || den == 0) return 1.0;
    return static_cast<double>(num / den);
}

/// Hubert-Arabie adjusted Rand index (scikit-learn adjusted_rand_score); symmetric, 1 for equal
/// partitions, about 0 for independent ones, can be negative.
[[nodiscard]] inline double adjusted_rand_index(const contingency_table& t) {
    const pair_confusion p = pair_confusion_matrix(t);
    const long double tp = p.same_both, tn = p.split_both, fp = p.same_seg_only, fn = p.same_gt_only;
    if (fn == 0 && fp == 0) return 1.0;
    return static_cast<double>(2.0L * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)));
}

}  // namespace tessel::metrics
