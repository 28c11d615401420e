// tessel/metrics/rand_index.hpp: the Rand index and the Probabilistic Rand Index (METRICS.md §2).
//
// RI(S, G) is the fraction of unordered pixel pairs on which S and G agree (both joined or both
// separated). The PRI of Arbelaez et al. (TPAMI 2011, eq. 6) is linear in the per-pair GT
// frequencies, so it equals the mean over ground truths of the plain RI; that is how the BSR code
// computes it and how it is computed here. Range [0, 1], higher is better. scikit-learn's
// rand_score gives the same number.
#pragma once
#include <span>

#include "tessel/metrics/contingency.hpp"

namespace tessel::metrics {

/// RI = 1 - (sum a_i^2/2 + sum b_j^2/2 - sum n_ij^2) / (N(N-1)/2), the BSR formula.
/// A one-pixel image has no pairs; it scores 1 (scikit-learn's convention; BSR divides by zero).
[[nodiscard]] inline double rand_index(const contingency_table& t) {
    expects(t.total > 0, "tessel::metrics::rand_index", "empty contingency table");
    if (t.total < 2) return 1.0;
    // Integer sums are exact (N^2 < 2^63 for any image io accepts); the final division is double.
    count_t sa = 0, sb = 0, sn = 0;
    for (count_t a : t.row_sums) sa += a * a;
    for (count_t b : t.col_sums) sb += b * b;
    for (const auto& c : t.cells) sn += c.count * c.count;
    const double disagreeing = 0.5 * static_cast<double>(sa) + 0.5 * static_cast<double>(sb) - static_cast<double>(sn);
    const double pairs = static_cast<double>(t.total) * static_cast<double>(t.total - 1) / 2.0;
    return 1.0 - disagreeing / pairs;
}

/// The Rand index of two label maps of equal size.
template <HostBackend B = cpu_serial>
[[nodiscard]] double rand_index(const label_map& seg, const label_map& gt, B backend = {}) {
    return rand_index(contingency(seg, gt, backend));
}

/// PRI(S, {G_k}) = mean over k of RI(S, G_k).
/// @pre gts is non-empty and every ground truth has seg's size.
template <HostBackend B = cpu_serial>
[[nodiscard]] double probabilistic_rand_index(const label_map& seg, std::span<const label_map> gts, B backend = {}) {
    double s = 0;
    for (const auto& t : contingencies(seg, gts, backend)) s += rand_index(t);
    return s / static_cast<double>(gts.size());
}

}  // namespace tessel::metrics
