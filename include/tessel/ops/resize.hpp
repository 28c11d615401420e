// tessel/ops/resize.hpp: resizing host images, for methods that train at a fixed size.
//
// resize_bilinear follows OpenCV's INTER_LINEAR geometry (half-pixel centres, edge clamping),
// which Kim 2020's reference mode uses to bring training images to 224x224 (METHODS.md §2.7).
// resize_nearest_labels follows PyTorch's F.interpolate(mode='nearest') rule,
// src = min(floor(dst * in / out), in - 1), used to bring predictions to a ground truth's size.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "tessel/core/image.hpp"

namespace tessel::ops {

inline image<std::uint8_t> resize_bilinear(const image<std::uint8_t>& img, index_t out_w, index_t out_h) {
    constexpr auto where = "tessel::ops::resize_bilinear";
    expects(!img.empty(), where, "empty image");
    expects(out_w > 0 && out_h > 0, where, "target size must be positive, got ", out_w, "x", out_h);
    const index_t W = img.width(), H = img.height(), C = img.channels();
    image<std::uint8_t> out(out_w, out_h, C);
    const double sx = static_cast<double>(W) / static_cast<double>(out_w);
    const double sy = static_cast<double>(H) / static_cast<double>(out_h);
    for (index_t y = 0; y < out_h; ++y) {
        double fy = (static_cast<double>(y) + 0.5) * sy - 0.5;
        fy = std::clamp(fy, 0.0, static_cast<double>(H - 1));
        const auto y0 = static_cast<index_t>(fy);
        const index_t y1 = std::min(y0 + 1, H - 1);
        const double wy = fy - static_cast<double>(y0);
        for (index_t x = 0; x < out_w; ++x) {
            double fx = (static_cast<double>(x) + 0.5) * sx - 0.5;
            fx = std::clamp(fx, 0.0, static_cast<double>(W - 1));
            const auto x0 = static_cast<index_t>(fx);
            const index_t x1 = std::min(x0 + 1, W - 1);
            const double wx = fx - static_cast<double>(x0);
            for (index_t c = 0; c < C; ++c) {
                const double v = (1 - wy) * ((1 - wx) * img(x0, y0, c) + wx * img(x1, y0, c)) +
                                 wy * ((1 - wx) * img(x0, y1, c) + wx * img(x1, y1, c));
                out(x, y, c) = static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L));
            }
        }
    }
    return out;
}

/// Nearest-neighbour resize of an image, PyTorch's F.interpolate(mode='nearest') and OpenCV's
/// INTER_NEAREST rule: src = min(floor(dst * in / out), in - 1) on each axis (METHODS.md 1.2).
template <class T>
image<T> resize_nearest(const image<T>& img, index_t out_w, index_t out_h) {
    constexpr auto where = "tessel::ops::resize_nearest";
    expects(!img.empty(), where, "empty image");
    expects(out_w > 0 && out_h > 0, where, "target size must be positive, got ", out_w, "x", out_h);
    const index_t W = img.width(), H = img.height(), C = img.channels();
    image<T> out(out_w, out_h, C);
    for (index_t y = 0; y < out_h; ++y) {
        const index_t sy = std::min(y * H / out_h, H - 1);
        for (index_t x = 0; x < out_w; ++x) {
            const index_t sx = std::min(x * W / out_w, W - 1);
            for (index_t c = 0; c < C; ++c) out(x, y, c) = img(sx, sy, c);
        }
    }
    return out;
}

inline label_map resize_nearest_labels(const label_map& labels, index_t out_w, index_t out_h) {
    constexpr auto where = "tessel::ops::resize_nearest_labels";
    expects(!labels.empty(), where, "empty label map");
    expects(out_w > 0 && out_h > 0, where, "target size must be positive, got ", out_w, "x", out_h);
    label_map out(out_w, out_h);
    const index_t W = labels.width(), H = labels.height();
    for (index_t y = 0; y < out_h; ++y) {
        const index_t sy = std::min(y * H / out_h, H - 1);
        for (index_t x = 0; x < out_w; ++x) out(x, y) = labels(std::min(x * W / out_w, W - 1), sy);
    }
    return out;
}

}  // namespace tessel::ops
