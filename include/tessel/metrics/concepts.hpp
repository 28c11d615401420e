// tessel/metrics/concepts.hpp: what the metrics module accepts as a "segmentation score".
//
// Every region score in this module is a function of a contingency_table; a PairScore is anything
// callable on one. The evaluate tool and user code can then reduce any such score over several
// ground truths (mean_over_ground_truths) without knowing which metric it is.
#pragma once
#include <concepts>
#include <span>

#include "tessel/metrics/contingency.hpp"

namespace tessel::metrics {

/// PairScore: a score of one segmentation against one ground truth, from their table.
///   requires: f(table) is valid for any non-empty table and returns something convertible to double.
///   ensures:  the value depends only on the table (label identities enter only through it).
template <class F>
concept PairScore = requires(const F& f, const contingency_table& t) {
    { f(t) } -> std::convertible_to<double>;
};

/// The mean over ground truths of a PairScore (the usual multi-GT reduction, METRICS.md §1).
/// @pre gts non-empty, every map of seg's size.
template <PairScore F, HostBackend B = cpu_serial>
[[nodiscard]] double mean_over_ground_truths(const F& score, const label_map& seg, std::span<const label_map> gts,
                                             B backend = {}) {
    double s = 0;
    for (const auto& t : contingencies(seg, gts, backend)) s += static_cast<double>(score(t));
    return s / static_cast<double>(gts.size());
}

}  // namespace tessel::metrics
