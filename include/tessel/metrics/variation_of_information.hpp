// tessel/metrics/variation_of_information.hpp: Meila's variation of information (METRICS.md §3).
//
// VI(S, G) = H(S) + H(G) - 2 I(S, G) = H(S|G) + H(G|S), in bits by default because the BSDS
// benchmark uses log2. The per-image BSDS score is the mean over ground truths. Lower is better,
// range [0, log2 N]. Other conventions, for comparisons: scikit-image returns the pair
// (H(G|S), H(S|G)) for (image0 = S, image1 = G); GraPL reports the mean of that pair, i.e. VI/2;
// some papers use nats. The base is a parameter so no caller has to guess.
#pragma once
#include <cmath>
#include <span>

#include "tessel/metrics/contingency.hpp"

namespace tessel::metrics {

/// Entropies of a segmentation pair, in the base they were computed in.
struct entropy_terms {
    double h_seg = 0;             ///< H(S)
    double h_gt = 0;              ///< H(G)
    double mutual_information = 0;  ///< I(S, G), not clipped
    double h_seg_given_gt = 0;    ///< H(S|G) = H(S) - I
    double h_gt_given_seg = 0;    ///< H(G|S) = H(G) - I
};

/// H(S), H(G) and I(S, G) from the table, with 0 log 0 := 0.
/// @pre base > 1
[[nodiscard]] inline entropy_terms entropies(const contingency_table& t, double base = 2.0) {
    constexpr std::string_view where = "tessel::metrics::entropies";
    expects(t.total > 0, where, "empty contingency table");
    expects(base > 1.0, where, "log base must exceed 1, got ", base);
    const double n = static_cast<double>(t.total), inv_log = 1.0 / std::log(base);
    entropy_terms e;
    for (count_t a : t.row_sums) {
        const double p = static_cast<double>(a) / n;
        e.h_seg -= p * std::log(p);
    }
    for (count_t b : t.col_sums) {
        const double q = static_cast<double>(b) / n;
        e.h_gt -= q * std::log(q);
    }
    for (const auto& c : t.cells) {
        const double pij = static_cast<double>(c.count) / n;
        const double pi = static_cast<double>(t.row_sums[static_cast<std::size_t>(c.row)]) / n;
        const double qj = static_cast<double>(t.col_sums[static_cast<std::size_t>(c.col)]) / n;
        e.mutual_information += pij * std::log(pij / (pi * qj));
    }
    e.h_seg *= inv_log;
    e.h_gt *= inv_log;
    e.mutual_information *= inv_log;
    e.h_seg_given_gt = e.h_seg - e.mutual_information;
    e.h_gt_given_seg = e.h_gt - e.mutual_information;
    return e;
}

/// VI and its two conditional entropies.
struct voi_result {
    double vi = 0;              ///< H(S) + H(G) - 2 I(S, G)
    double h_seg_given_gt = 0;  ///< H(S|G): how much S splits G's regions
    double h_gt_given_seg = 0;  ///< H(G|S): how much S merges G's regions
};

/// Variation of information of (seg, gt) from their table; base 2 (bits) by default.
/// @code auto v = tessel::metrics::variation_of_information(t); // v.vi in bits @endcode
[[nodiscard]] inline voi_result variation_of_information(const contingency_table& t, double base = 2.0) {
    const entropy_terms e = entropies(t, base);
    // Computed as BSR does (H1 + H2 - 2 MI) so rounding matches the reference to the last digits.
    return {e.h_seg + e.h_gt - 2.0 * e.mutual_information, e.h_seg_given_gt, e.h_gt_given_seg};
}

template <HostBackend B = cpu_serial>
[[nodiscard]] voi_result variation_of_information(const label_map& seg, const label_map& gt, double base = 2.0,
                                                  B backend = {}) {
    return variation_of_information(contingency(seg, gt, backend), base);
}

/// The BSDS per-image VoI: mean over ground truths of VI(S, G_k); bits by default.
template <HostBackend B = cpu_serial>
[[nodiscard]] double mean_variation_of_information(const label_map& seg, std::span<const label_map> gts,
                                                   double base = 2.0, B backend = {}) {
    double s = 0;
    for (const auto& t : contingencies(seg, gts, backend)) s += variation_of_information(t, base).vi;
    return s / static_cast<double>(gts.size());
}

}  // namespace tessel::metrics
