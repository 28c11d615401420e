// tessel/ops/bicubic.hpp: bicubic resampling of a channels-last grid with PyTorch's semantics.
//
// F.interpolate(mode='bicubic', align_corners=False) with an explicit scale factor: the cubic
// convolution kernel of Keys with A = -0.75, source coordinate src = (dst + 0.5) / scale - 0.5
// (no clamping of src, as PyTorch's cubic path does), taps at floor(src) - 1 .. floor(src) + 2
// clamped to the border, output size floor(in * scale). Vision transformers use it to resize
// their learned positional embedding to a new token grid (DINO's interpolate_pos_encoding and the
// feature extractor's stride change, METHODS.md §6.2: 28 x 28 -> 55 x 55 with scale 55.1 / 28).
#pragma once
#include <array>
#include <cmath>

#include "tessel/backend/parallel.hpp"
#include "tessel/core/tensor.hpp"

namespace tessel::ops {

/// The four cubic-convolution weights of fractional offset t in [0, 1) (PyTorch's
/// get_cubic_upsample_coefficients, A = -0.75 by default).
inline std::array<double, 4> cubic_weights(double t, double A = -0.75) {
    auto near = [A](double x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };         // |x| <= 1
    auto far = [A](double x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };    // 1 < |x| < 2
    return {far(t + 1), near(t), near(1 - t), far(2 - t)};
}

/// Output extent of a resize by `scale`: floor(in * scale), as PyTorch computes it.
inline index_t scaled_extent(index_t in, double scale) {
    return static_cast<index_t>(std::floor(static_cast<double>(in) * scale));
}

/// Resizes x [H, W, C] (channels last) to [floor(H * scale_h), floor(W * scale_w), C].
template <class T>
tensor<T> resize_bicubic_hwc(const tensor<T>& x, double scale_h, double scale_w, double A = -0.75) {
    constexpr auto where = "tessel::ops::resize_bicubic_hwc";
    expects(x.rank() == 3 && x.numel() > 0, where, "expects a non-empty [H, W, C] tensor, got ", x.shape().str());
    expects(std::isfinite(scale_h) && std::isfinite(scale_w) && scale_h > 0 && scale_w > 0, where,
            "scale factors must be positive and finite, got ", scale_h, " and ", scale_w);
    const index_t H = x.dim(0), W = x.dim(1), C = x.dim(2);
    const index_t OH = scaled_extent(H, scale_h), OW = scaled_extent(W, scale_w);
    expects(OH >= 1 && OW >= 1, where, "a scale of ", scale_h, " x ", scale_w, " turns ", H, "x", W, " into nothing");
    tensor<T> y(shape{OH, OW, C});
    auto clampi = [](index_t v, index_t n) { return v < 0 ? index_t(0) : (v >= n ? n - 1 : v); };
    for (index_t oy = 0; oy < OH; ++oy) {
        const double sy = (static_cast<double>(oy) + 0.5) / scale_h - 0.5;
        const double fy = std::floor(sy);
        const auto wy = cubic_weights(sy - fy, A);
        for (index_t ox = 0; ox < OW; ++ox) {
            const double sx = (static_cast<double>(ox) + 0.5) / scale_w - 0.5;
            const double fx = std::floor(sx);
            const auto wx = cubic_weights(sx - fx, A);
            for (index_t c = 0; c < C; ++c) {
                double acc = 0;
                for (int i = 0; i < 4; ++i) {
                    const index_t yy = clampi(static_cast<index_t>(fy) - 1 + i, H);
                    double row = 0;
                    for (int j = 0; j < 4; ++j) {
                        const index_t xx = clampi(static_cast<index_t>(fx) - 1 + j, W);
                        row += wx[static_cast<std::size_t>(j)] * static_cast<double>(x(yy, xx, c));
                    }
                    acc += wy[static_cast<std::size_t>(i)] * row;
                }
                y(oy, ox, c) = static_cast<T>(acc);
            }
        }
    }
    return y;
}

}  // namespace tessel::ops
