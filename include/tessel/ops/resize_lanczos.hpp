// tessel/ops/resize_lanczos.hpp: Pillow's Image.resize(size, Image.LANCZOS) on 8-bit images.
//
// UnSegGNet (and DINO feature pipelines generally) load images with PIL and resize them with
// LANCZOS before the ViT (METHODS.md §6.1). This follows Pillow's ImagingResample bit for bit in
// its 8-bit path: Lanczos a = 3 (sinc(x) sinc(x / 3) on |x| < 3), the support widened by the scale
// factor when downscaling (antialiasing), window bounds int(center -+ support + 0.5) clipped to the
// image, weights normalised to sum 1 and stored as 22-bit fixed point rounded away from zero,
// accumulation from 2^21 (rounding), results clipped to 0..255; a horizontal pass over every row,
// then a vertical pass, each rounding to 8 bits.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "tessel/core/image.hpp"

namespace tessel::ops {

namespace detail {
inline double lanczos3(double x) {
    auto sinc = [](double v) {
        if (v == 0.0) return 1.0;
        const double p = v * 3.14159265358979323846;
        return std::sin(p) / p;
    };
    return (x >= -3.0 && x < 3.0) ? sinc(x) * sinc(x / 3.0) : 0.0;
}

struct resample_coeffs {
    std::vector<index_t> start, count;
    std::vector<std::int32_t> k;  // count.max() entries per output
    index_t ksize = 0;
};

/// Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis.
inline resample_coeffs lanczos_coeffs(index_t in, index_t out) {
    constexpr int precision_bits = 32 - 8 - 2;
    const double scale = static_cast<double>(in) / static_cast<double>(out);
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = 3.0 * filterscale;
    resample_coeffs c;
    c.ksize = static_cast<index_t>(std::ceil(support)) * 2 + 1;
    c.start.resize(static_cast<std::size_t>(out));
    c.count.resize(static_cast<std::size_t>(out));
    c.k.assign(static_cast<std::size_t>(out * c.ksize), 0);
    std::vector<double> w(static_cast<std::size_t>(c.ksize));
    for (index_t o = 0; o < out; ++o) {
        const double center = (static_cast<double>(o) + 0.5) * scale;
        const double ww_inv = 1.0 / filterscale;
        auto xmin = static_cast<index_t>(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        auto xmax = static_cast<index_t>(center + support + 0.5);
        if (xmax > in) xmax = in;
        xmax -= xmin;
        double total = 0;
        for (index_t x = 0; x < xmax; ++x) {
            const double v = lanczos3((static_cast<double>(x + xmin) - center + 0.5) * ww_inv);
            w[static_cast<std::size_t>(x)] = v;
            total += v;
        }
        for (index_t x = 0; x < xmax; ++x) {
            const double v = total != 0.0 ? w[static_cast<std::size_t>(x)] / total : 0.0;
            const double f = v * static_cast<double>(1 << precision_bits);
            c.k[static_cast<std::size_t>(o * c.ksize + x)] = static_cast<std::int32_t>(v < 0 ? -0.5 + f : 0.5 + f);
        }
        c.start[static_cast<std::size_t>(o)] = xmin;
        c.count[static_cast<std::size_t>(o)] = xmax;
    }
    return c;
}

inline std::uint8_t clip8(std::int64_t acc) {
    constexpr int precision_bits = 32 - 8 - 2;
    const std::int64_t v = acc >> precision_bits;
    return static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}
}  // namespace detail

/// Resizes an 8-bit image to out_w x out_h with Pillow's LANCZOS filter (aspect ratio ignored).
inline image<std::uint8_t> resize_lanczos(const image<std::uint8_t>& img, index_t out_w, index_t out_h) {
    constexpr auto where = "tessel::ops::resize_lanczos";
    constexpr int precision_bits = 32 - 8 - 2;
    expects(!img.empty(), where, "empty image");
    expects(out_w > 0 && out_h > 0, where, "target size must be positive, got ", out_w, "x", out_h);
    const index_t W = img.width(), H = img.height(), C = img.channels();
    image<std::uint8_t> mid = img;
    if (out_w != W) {
        const auto cx = detail::lanczos_coeffs(W, out_w);
        mid = image<std::uint8_t>(out_w, H, C);
        for (index_t y = 0; y < H; ++y)
            for (index_t x = 0; x < out_w; ++x) {
                const index_t s = cx.start[static_cast<std::size_t>(x)], n = cx.count[static_cast<std::size_t>(x)];
                const std::int32_t* k = &cx.k[static_cast<std::size_t>(x * cx.ksize)];
                for (index_t c = 0; c < C; ++c) {
                    std::int64_t acc = std::int64_t(1) << (precision_bits - 1);
                    for (index_t i = 0; i < n; ++i) acc += static_cast<std::int64_t>(img(s + i, y, c)) * k[i];
                    mid(x, y, c) = detail::clip8(acc);
                }
            }
    }
    if (out_h == H) return mid;
    const auto cy = detail::lanczos_coeffs(H, out_h);
    image<std::uint8_t> out(out_w, out_h, C);
    for (index_t y = 0; y < out_h; ++y) {
        const index_t s = cy.start[static_cast<std::size_t>(y)], n = cy.count[static_cast<std::size_t>(y)];
        const std::int32_t* k = &cy.k[static_cast<std::size_t>(y * cy.ksize)];
        for (index_t x = 0; x < out_w; ++x)
            for (index_t c = 0; c < C; ++c) {
                std::int64_t acc = std::int64_t(1) << (precision_bits - 1);
                for (index_t i = 0; i < n; ++i) acc += static_cast<std::int64_t>(mid(x, s + i, c)) * k[i];
                out(x, y, c) = detail::clip8(acc);
            }
    }
    return out;
}

}  // namespace tessel::ops
