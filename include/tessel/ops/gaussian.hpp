// tessel/ops/gaussian.hpp: separable Gaussian smoothing with the semantics of
// scipy.ndimage.gaussian_filter (mode "reflect", truncate 4.0), which skimage's slic and
// felzenszwalb call before clustering.
//
// Semantics: the 1-D kernel is w_j = exp(-j^2 / (2 sigma^2)) for |j| <= r, r = int(truncate *
// sigma + 0.5), normalised to sum 1; the border mode "reflect" repeats the edge sample
// (d c b a | a b c d | d c b a). Axes with sigma 0 are left untouched; channels are never mixed.
// The loops are TESSEL_HD functors over output pixels, run on any backend (cuda from nvcc).
#pragma once
#include <cmath>
#include <vector>

#include "tessel/backend/parallel.hpp"
#include "tessel/core/error.hpp"
#include "tessel/core/image.hpp"

namespace tessel::ops {

/// Index into [0, n) of position i under scipy's "reflect" border mode (period 2n).
TESSEL_HD inline index_t reflect_index(index_t i, index_t n) {
    if (i >= 0 && i < n) return i;
    const index_t period = 2 * n;
    index_t m = i % period;
    if (m < 0) m += period;
    return m < n ? m : period - 1 - m;
}

/// scipy's Gaussian weights: 2r+1 values, r = int(truncate * sigma + 0.5), summing to 1.
/// @pre sigma > 0 and finite; truncate > 0.
inline std::vector<float> gaussian_kernel1d(double sigma, double truncate = 4.0) {
    expects(std::isfinite(sigma) && sigma > 0, "tessel::ops::gaussian_kernel1d", "sigma must be positive and finite, got ",
            sigma);
    expects(std::isfinite(truncate) && truncate > 0, "tessel::ops::gaussian_kernel1d",
            "truncate must be positive, got ", truncate);
    const auto r = static_cast<index_t>(truncate * sigma + 0.5);
    std::vector<double> w(static_cast<std::size_t>(2 * r + 1));
    double sum = 0;
    for (index_t j = -r; j <= r; ++j) {
        const double v = std::exp(-0.5 * static_cast<double>(j * j) / (sigma * sigma));
        w[static_cast<std::size_t>(j + r)] = v;
        sum += v;
    }
    std::vector<float> out(w.size());
    for (std::size_t i = 0; i < w.size(); ++i) out[i] = static_cast<float>(w[i] / sum);
    return out;
}

namespace detail {
/// Where the planes of an image live: element (p, y, x) is at
/// p * plane_stride + y * row_stride + x * col_stride (interleaved: 1, W*C, C; planar: H*W, W, 1).
struct plane_layout {
    index_t planes, height, width;
    index_t plane_stride, row_stride, col_stride;
    TESSEL_HD index_t offset(index_t p, index_t y, index_t x) const {
        return p * plane_stride + y * row_stride + x * col_stride;
    }
};

/// One output value of the 1-D correlation along y (along_rows) or x; i enumerates (p, y, x).
struct gaussian_axis_functor {
    const float* in;
    float* out;
    const float* weights;  // 2 * radius + 1 taps
    index_t radius;
    plane_layout layout;
    bool along_rows;
    TESSEL_HD void operator()(index_t i) const {
        const index_t x = i % layout.width;
        const index_t y = (i / layout.width) % layout.height;
        const index_t p = i / (layout.width * layout.height);
        float acc = 0.0f;
        if (along_rows) {
            for (index_t j = -radius; j <= radius; ++j)
                acc += weights[j + radius] * in[layout.offset(p, reflect_index(y + j, layout.height), x)];
        } else {
            for (index_t j = -radius; j <= radius; ++j)
                acc += weights[j + radius] * in[layout.offset(p, y, reflect_index(x + j, layout.width))];
        }
        out[layout.offset(p, y, x)] = acc;
    }
};

struct copy_functor {
    const float* in;
    float* out;
    TESSEL_HD void operator()(index_t i) const { out[i] = in[i]; }
};
}  // namespace detail

/// Smooths, in place on backend B, the planes of `data` (described by `layout`, stored densely in
/// planes * height * width floats) along y with `weights_y` then along x with `weights_x`, as
/// scipy.ndimage.gaussian_filter with sigma (sigma_y, sigma_x) and no mixing of planes. A null
/// weight pointer skips that axis. Weights are gaussian_kernel1d() tables in B's memory and
/// `scratch` holds as many floats as `data`: raw pointers, so the caller owns device storage.
template <class B>
void gaussian_filter_raw(B backend, float* data, float* scratch, detail::plane_layout layout, const float* weights_y,
                         index_t radius_y, const float* weights_x, index_t radius_x) {
    const index_t n = layout.planes * layout.height * layout.width;
    if (weights_y) parallel_for(backend, n, detail::gaussian_axis_functor{data, scratch, weights_y, radius_y, layout, true});
    if (weights_x) {
        const float* src = weights_y ? scratch : data;
        float* dst = weights_y ? data : scratch;
        parallel_for(backend, n, detail::gaussian_axis_functor{src, dst, weights_x, radius_x, layout, false});
        if (!weights_y) parallel_for(backend, n, detail::copy_functor{scratch, data});
    } else if (weights_y) {
        parallel_for(backend, n, detail::copy_functor{scratch, data});
    }
}

/// A Gaussian-smoothed copy of a host image: every channel separately, sigma pixels along both
/// spatial axes, reflect borders, truncate 4 (scipy.ndimage.gaussian_filter semantics).
/// sigma == 0 returns a copy.
/// @pre !img.empty(); sigma >= 0 and finite.
/// @code auto smooth = tessel::ops::gaussian_filter(tessel::cpu_omp{}, img, 0.8); @endcode
template <HostBackend B = cpu_serial>
image<float> gaussian_filter(B backend, const image<float>& img, double sigma, double truncate = 4.0) {
    expects(!img.empty(), "tessel::ops::gaussian_filter", "empty image");
    expects(std::isfinite(sigma) && sigma >= 0, "tessel::ops::gaussian_filter",
            "sigma must be finite and >= 0, got ", sigma);
    image<float> out = img;
    if (sigma == 0) return out;
    const std::vector<float> w = gaussian_kernel1d(sigma, truncate);
    const auto r = static_cast<index_t>(w.size() / 2);
    std::vector<float> scratch(out.values().size());
    const detail::plane_layout layout{img.channels(), img.height(), img.width(), 1, img.width() * img.channels(),
                                      img.channels()};
    gaussian_filter_raw(backend, out.data(), scratch.data(), layout, w.data(), r, w.data(), r);
    return out;
}

}  // namespace tessel::ops
