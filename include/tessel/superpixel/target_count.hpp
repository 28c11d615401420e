// tessel/superpixel/target_count.hpp: Felzenszwalb segmentation with a target segment count.
//
// Felzenszwalb's scale sets the segment size only indirectly; methods that ask for "about M
// superpixels" (Deep Superpixel Cut's M in {10, 20, 50, 100}, METHODS.md §7.2) search the scale.
// The count falls (almost always monotonically) as the scale grows, so a bisection on log(scale)
// over [scale_low, scale_high] brackets the target; the result is the segmentation of every scale
// tried whose count is closest to the target (ties: the smaller scale, i.e. the finer map).
#pragma once
#include <cmath>
#include <cstdlib>

#include "tessel/superpixel/felzenszwalb.hpp"

namespace tessel {

struct felzenszwalb_count_options {
    double scale_low = 1.0;
    double scale_high = 1.0e6;
    int iterations = 18;  ///< bisection steps (each runs Felzenszwalb once)
};

/// Felzenszwalb on img (sigma and min_size from base; its scale is searched) with a segment count
/// as close to target as the search finds; the chosen scale goes to *chosen when given.
template <Backend B, class T>
label_map felzenszwalb_with_count(B backend, const image<T>& img, index_t target, felzenszwalb::config base = {},
                                  const felzenszwalb_count_options& opt = {}, double* chosen = nullptr) {
    constexpr auto where = "tessel::felzenszwalb_with_count";
    expects(target >= 1, where, "target segment count must be >= 1, got ", target);
    expects(opt.scale_low > 0 && opt.scale_high > opt.scale_low && std::isfinite(opt.scale_high) && opt.iterations >= 1,
            where, "invalid search range [", opt.scale_low, ", ", opt.scale_high, "] or iterations ", opt.iterations);
    double lo = std::log(opt.scale_low), hi = std::log(opt.scale_high);
    label_map best;
    index_t best_err = -1;
    double best_scale = 0;
    auto run = [&](double log_scale) {
        felzenszwalb f{base};
        f.cfg.scale = std::exp(log_scale);
        label_map m = f(backend, img);
        const index_t n = m.count_labels();
        const index_t err = std::abs(n - target);
        if (best_err < 0 || err < best_err || (err == best_err && f.cfg.scale < best_scale)) {
            best = std::move(m);
            best_err = err;
            best_scale = f.cfg.scale;
        }
        return n;
    };
    if (run(lo) <= target) {  // even the finest map has too few segments
        if (chosen) *chosen = best_scale;
        return best;
    }
    for (int it = 0; it < opt.iterations && best_err > 0; ++it) {
        const double mid = 0.5 * (lo + hi);
        if (run(mid) > target)
            lo = mid;
        else
            hi = mid;
    }
    if (chosen) *chosen = best_scale;
    return best;
}

}  // namespace tessel
