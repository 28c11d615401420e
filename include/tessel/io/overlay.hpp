// tessel/io/overlay.hpp: pictures of a segmentation that a person can look at.
//
// colorize        - each label drawn in its own colour (a fixed, seeded palette)
// boundary_overlay- the photo with segment boundaries drawn in a colour
// blend_overlay   - the photo blended with the label colours
// All take an RGB image and a label map of the same size and return an RGB image.
#pragma once
#include <cstdint>
#include <vector>

#include "tessel/core/image.hpp"
#include "tessel/core/random.hpp"

namespace tessel::io {

namespace detail {
inline void check_overlay_inputs(const image<std::uint8_t>& img, const label_map& labels, std::string_view where) {
    expects(!labels.empty(), where, "empty label map");
    expects(img.width() == labels.width() && img.height() == labels.height(), where, "image is ", img.width(), "x",
            img.height(), " but labels are ", labels.width(), "x", labels.height());
    expects(img.channels() == 3, where, "expects an RGB image, got ", img.channels(), " channels");
}
/// A bright, well-separated colour for label l (golden-ratio hue walk, seeded mixing).
inline std::array<std::uint8_t, 3> label_colour(label_t l) {
    rng g(static_cast<std::uint64_t>(static_cast<std::uint32_t>(l)) * 0x9E3779B97F4A7C15ull + 12345);
    const double h = g.uniform01() * 6.0, s = 0.55 + 0.4 * g.uniform01(), v = 0.7 + 0.3 * g.uniform01();
    const int i = static_cast<int>(h);
    const double f = h - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    double r = v, gg = t, b = p;
    switch (i % 6) {
        case 1: r = q; gg = v; b = p; break;
        case 2: r = p; gg = v; b = t; break;
        case 3: r = p; gg = q; b = v; break;
        case 4: r = t; gg = p; b = v; break;
        case 5: r = v; gg = p; b = q; break;
        default: break;
    }
    return {static_cast<std::uint8_t>(r * 255), static_cast<std::uint8_t>(gg * 255), static_cast<std::uint8_t>(b * 255)};
}
}  // namespace detail

/// Each label in its own colour.
inline image<std::uint8_t> colorize(const label_map& labels) {
    expects(!labels.empty(), "tessel::io::colorize", "empty label map");
    image<std::uint8_t> out(labels.width(), labels.height(), 3);
    for (index_t i = 0; i < labels.size(); ++i) {
        const auto c = detail::label_colour(labels.data()[i]);
        for (int k = 0; k < 3; ++k) out.data()[i * 3 + k] = c[static_cast<std::size_t>(k)];
    }
    return out;
}

/// The photo with every pixel whose right or lower neighbour has another label painted `colour`.
inline image<std::uint8_t> boundary_overlay(const image<std::uint8_t>& img, const label_map& labels,
                                            std::array<std::uint8_t, 3> colour = {255, 32, 32}) {
    detail::check_overlay_inputs(img, labels, "tessel::io::boundary_overlay");
    image<std::uint8_t> out = img;
    const index_t W = labels.width(), H = labels.height();
    for (index_t y = 0; y < H; ++y)
        for (index_t x = 0; x < W; ++x) {
            const label_t l = labels(x, y);
            const bool edge = (x + 1 < W && labels(x + 1, y) != l) || (y + 1 < H && labels(x, y + 1) != l);
            if (edge)
                for (int k = 0; k < 3; ++k) out(x, y, k) = colour[static_cast<std::size_t>(k)];
        }
    return out;
}

/// (1 - alpha) * photo + alpha * label colour, with boundaries drawn on top.
inline image<std::uint8_t> blend_overlay(const image<std::uint8_t>& img, const label_map& labels, double alpha = 0.5) {
    detail::check_overlay_inputs(img, labels, "tessel::io::blend_overlay");
    expects(alpha >= 0.0 && alpha <= 1.0, "tessel::io::blend_overlay", "alpha must lie in [0, 1], got ", alpha);
    const image<std::uint8_t> col = colorize(labels);
    image<std::uint8_t> out(img.width(), img.height(), 3);
    for (std::size_t i = 0; i < out.values().size(); ++i)
        out.values()[i] = static_cast<std::uint8_t>((1 - alpha) * img.values()[i] + alpha * col.values()[i] + 0.5);
    return boundary_overlay(out, labels, {255, 255, 255});
}

}  // namespace tessel::io
