// Felzenszwalb-Huttenlocher segmentation: properties, hand-checkable cases, and segment counts
// of scikit-image 0.21.0's felzenszwalb on tessel::testing::gradient_scene (computed as side
// tooling on the same bytes and copied here).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "support/backend_test.hpp"
#include "tessel/superpixel/felzenszwalb.hpp"
#include "unit/superpixel/test_slic.inl"

namespace ts = tessel;

namespace {

template <class B>
void felzenszwalb_counts_and_properties() {
    const auto img = ts::testing::gradient_scene(160, 120);
    struct ref {
        double scale;
        ts::index_t count;
    };
    ts::index_t previous = std::numeric_limits<ts::index_t>::max();
    for (const ref r : {ref{1, 327}, ref{10, 143}, ref{100, 15}, ref{300, 8}}) {  // skimage, sigma 0.8, min_size 20
        CAPTURE(r.scale);
        const auto l = ts::felzenszwalb{{.scale = r.scale, .sigma = 0.8, .min_size = 20}}(B{}, img);
        const ts::index_t k = l.count_labels();
        CHECK(std::abs(k - r.count) <= std::max<ts::index_t>(1, r.count / 20));
        CHECK(k <= previous);  // larger scale, fewer segments
        previous = k;
        CHECK(slic_tests::smallest_segment(l) >= 20);
        // Labels are 0..K-1 numbered by first appearance; segments are connected (merges only
        // follow grid edges, which include diagonals, so check 8-connectivity via the count of
        // 4-components being at least K).
        CHECK(*std::min_element(l.values().begin(), l.values().end()) == 0);
        CHECK(*std::max_element(l.values().begin(), l.values().end()) == k - 1);
        CHECK(l.data()[0] == 0);
        CHECK(slic_tests::count_components(l) >= k);
    }
    const auto small = ts::felzenszwalb{{.scale = 100, .sigma = 0.5, .min_size = 10}}(B{}, ts::testing::gradient_scene(97, 61));
    CHECK(std::abs(small.count_labels() - 15) <= 1);  // skimage
    // Deterministic and equal across backends.
    const auto a = ts::felzenszwalb{{.scale = 50}}(B{}, img);
    CHECK(a.values() == ts::felzenszwalb{{.scale = 50}}(B{}, img).values());
    CHECK(a.values() == ts::felzenszwalb{{.scale = 50}}(ts::cpu_serial{}, img).values());
}

}  // namespace

TESSEL_BACKEND_TEST("felzenszwalb: skimage's counts, min_size, monotone in scale, deterministic",
                    felzenszwalb_counts_and_properties)

TEST_CASE("felzenszwalb: two flat regions separate, and min_size absorbs a small blob") {
    // Left half black, right half white, no smoothing: the edge between halves weighs sqrt(3),
    // far above k / |C|, so exactly two segments.
    ts::image<std::uint8_t> img(20, 10, 3, 0);
    for (ts::index_t y = 0; y < 10; ++y)
        for (ts::index_t x = 10; x < 20; ++x)
            for (int c = 0; c < 3; ++c) img(x, y, c) = 255;
    auto l = ts::felzenszwalb{{.scale = 1, .sigma = 0, .min_size = 0}}(ts::cpu_serial{}, img);
    CHECK(l.count_labels() == 2);
    CHECK(l(0, 0) == 0);
    CHECK(l(19, 9) == 1);
    // A 2 x 2 grey blob inside the black half is its own segment unless min_size exceeds 4.
    for (ts::index_t y = 4; y < 6; ++y)
        for (ts::index_t x = 3; x < 5; ++x)
            for (int c = 0; c < 3; ++c) img(x, y, c) = 128;
    l = ts::felzenszwalb{{.scale = 1, .sigma = 0, .min_size = 0}}(ts::cpu_serial{}, img);
    CHECK(l.count_labels() == 3);
    l = ts::felzenszwalb{{.scale = 1, .sigma = 0, .min_size = 5}}(ts::cpu_serial{}, img);
    CHECK(l.count_labels() == 2);
    // A single-channel float image and a one-row image work too.
    ts::image<float> row(7, 1, 1, 0.0f);
    row(6, 0) = 1.0f;
    CHECK(ts::felzenszwalb{{.scale = 1, .sigma = 0, .min_size = 0}}(ts::cpu_omp{}, row).count_labels() == 2);
}

TEST_CASE("felzenszwalb: invalid parameters and inputs throw tessel::error") {
    const auto img = ts::testing::gradient_scene(16, 12);
    CHECK_THROWS_AS((void)ts::felzenszwalb{{.scale = 0}}(ts::cpu_serial{}, img), ts::error);
    CHECK_THROWS_AS((void)ts::felzenszwalb{{.scale = std::nan("")}}(ts::cpu_serial{}, img), ts::error);
    CHECK_THROWS_AS((void)ts::felzenszwalb{{.sigma = std::nan("")}}(ts::cpu_serial{}, img), ts::error);
    CHECK_THROWS_AS((void)ts::felzenszwalb{{.sigma = -1}}(ts::cpu_serial{}, img), ts::error);
    CHECK_THROWS_AS((void)ts::felzenszwalb{{.min_size = -1}}(ts::cpu_serial{}, img), ts::error);
    CHECK_THROWS_AS((void)ts::felzenszwalb{}(ts::cpu_serial{}, ts::image<std::uint8_t>{}), ts::error);
    ts::image<float> bad(4, 4, 3, 0.5f);
    bad(1, 1, 0) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS((void)ts::felzenszwalb{}(ts::cpu_serial{}, bad), ts::error);
}
