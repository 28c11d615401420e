// Test support: small synthetic images made in code (tests never read files they did not write).
#pragma once
#include <cstdint>

#include "tessel/core/image.hpp"
#include "tessel/core/random.hpp"

namespace tessel::testing {

/// A W x H RGB image of flat-coloured shapes (background, a disc, a rectangle) plus uniform noise
/// of the given amplitude, and its true label map (0 background, 1 disc, 2 rectangle).
struct shapes_scene {
    image<std::uint8_t> img;
    label_map truth;
};

inline shapes_scene make_shapes(index_t W = 64, index_t H = 64, int noise = 10, std::uint64_t seed_value = 1) {
    shapes_scene s{image<std::uint8_t>(W, H, 3), label_map(W, H)};
    const int colours[3][3] = {{40, 60, 200}, {220, 50, 40}, {60, 200, 80}};
    rng gen(seed_value);
    for (index_t y = 0; y < H; ++y)
        for (index_t x = 0; x < W; ++x) {
            const double dx = static_cast<double>(x) - 0.3 * static_cast<double>(W);
            const double dy = static_cast<double>(y) - 0.35 * static_cast<double>(H);
            label_t l = 0;
            if (dx * dx + dy * dy < 0.04 * static_cast<double>(W * H)) l = 1;
            if (x > W * 6 / 10 && x < W * 9 / 10 && y > H / 2 && y < H * 9 / 10) l = 2;
            s.truth(x, y) = l;
            for (int c = 0; c < 3; ++c) {
                const int v = colours[l][c] + static_cast<int>(gen.below(static_cast<std::uint64_t>(2 * noise + 1))) - noise;
                s.img(x, y, c) = static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
            }
        }
    return s;
}

}  // namespace tessel::testing
