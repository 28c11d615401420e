// Test support: a simple score of a segmentation against a known truth, for method tests.
#pragma once
#include <algorithm>
#include <map>
#include <utility>

#include "tessel/core/image.hpp"

namespace tessel::testing {

/// Mean over true regions of the best IoU any predicted segment reaches with that region (the
/// DFC protocol's per-segment score, on one annotation). 1 for a perfect segmentation.
inline double best_iou_per_region(const label_map& truth, const label_map& pred) {
    std::map<std::pair<label_t, label_t>, double> inter;
    std::map<label_t, double> at, ap;
    for (index_t i = 0; i < truth.size(); ++i) {
        const auto t = truth.data()[i], p = pred.data()[i];
        inter[{t, p}] += 1;
        at[t] += 1;
        ap[p] += 1;
    }
    double sum = 0;
    for (const auto& [t, nt] : at) {
        double best = 0;
        for (const auto& [key, n] : inter)
            if (key.first == t) best = std::max(best, n / (nt + ap[key.second] - n));
        sum += best;
    }
    return sum / static_cast<double>(at.size());
}

}  // namespace tessel::testing
