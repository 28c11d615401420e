// A deterministic synthetic RGB scene for the superpixel tests: a colour gradient background, a
// red disc and a green rectangle, plus hash noise in [-10, 10]. It uses integer arithmetic only,
// so the same bytes can be regenerated elsewhere (the scikit-image reference counts in
// test_slic.cpp and test_felzenszwalb.cpp were computed on exactly these bytes).
#pragma once
#include <algorithm>
#include <cstdint>

#include "tessel/core/image.hpp"

namespace tessel::testing {

inline image<std::uint8_t> gradient_scene(index_t W, index_t H) {
    image<std::uint8_t> img(W, H, 3);
    const index_t m = std::min(W, H);
    for (index_t y = 0; y < H; ++y)
        for (index_t x = 0; x < W; ++x) {
            int rgb[3] = {static_cast<int>(x * 255 / (W - 1)), static_cast<int>(y * 255 / (H - 1)), 128};
            const index_t dx = 10 * x - 3 * W, dy = 10 * y - 4 * H;
            if (dx * dx + dy * dy < 4 * m * m) {
                rgb[0] = 220, rgb[1] = 50, rgb[2] = 40;
            }
            if (10 * x >= 6 * W && 10 * x < 9 * W && 10 * y >= 5 * H && 10 * y < 9 * H) {
                rgb[0] = 60, rgb[1] = 200, rgb[2] = 80;
            }
            for (int c = 0; c < 3; ++c) {
                const std::uint32_t h = (static_cast<std::uint32_t>(x) * 73856093u) ^
                                        (static_cast<std::uint32_t>(y) * 19349663u) ^
                                        (static_cast<std::uint32_t>(c) * 83492791u);
                const int v = rgb[c] + static_cast<int>(h % 21u) - 10;
                img(x, y, c) = static_cast<std::uint8_t>(std::clamp(v, 0, 255));
            }
        }
    return img;
}

}  // namespace tessel::testing
