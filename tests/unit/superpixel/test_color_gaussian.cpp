// Lab conversion and Gaussian smoothing against values computed by hand or with scikit-image /
// scipy (skimage 0.21.0, scipy 1.17.1, run as side tooling; the values are copied here).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>

#include "tessel/ops/color.hpp"
#include "tessel/ops/gaussian.hpp"

namespace ts = tessel;

TEST_CASE("rgb_to_lab matches skimage.color.rgb2lab") {
    // skimage.color.rgb2lab(np.array([[[255,0,0], ...]], np.uint8))
    const std::uint8_t rgb[8][3] = {{255, 0, 0},     {0, 255, 0},     {0, 0, 255},   {255, 255, 255},
                                    {0, 0, 0},       {128, 128, 128}, {10, 200, 30}, {3, 3, 3}};
    const double lab[8][3] = {{53.240588, 80.092308, 67.202751},  {87.735099, -86.18303, 83.179703},
                              {32.295673, 79.185591, -107.8573},  {100.0, -0.002455, 0.004653},
                              {0.0, 0.0, 0.0},                    {53.585013, -0.001473, 0.002791},
                              {70.500132, -70.513831, 64.94084},  {0.82252, -0.000052, 0.000099}};
    ts::image<std::uint8_t> img(8, 1, 3);
    for (int i = 0; i < 8; ++i)
        for (int c = 0; c < 3; ++c) img(i, 0, c) = rgb[i][c];
    const auto out8 = ts::ops::rgb_to_lab(ts::cpu_omp{}, img);
    ts::image<float> f(8, 1, 3);
    for (int i = 0; i < 24; ++i) f.data()[i] = static_cast<float>(img.data()[i] / 255.0);
    const auto outf = ts::ops::rgb_to_lab(ts::cpu_serial{}, f);
    for (int i = 0; i < 8; ++i)
        for (int c = 0; c < 3; ++c) {
            CAPTURE(i);
            CAPTURE(c);
            CHECK(out8(i, 0, c) == doctest::Approx(lab[i][c]).epsilon(1e-4).scale(1.0));
            CHECK(outf(i, 0, c) == doctest::Approx(lab[i][c]).epsilon(1e-4).scale(1.0));
        }
}

TEST_CASE("Lab pieces by hand: companding and f(t) branch points") {
    CHECK(ts::ops::srgb_to_linear(0.04) == doctest::Approx(0.04 / 12.92));
    CHECK(ts::ops::srgb_to_linear(0.5) == doctest::Approx(std::pow(0.555 / 1.055, 2.4)));
    CHECK(ts::ops::srgb_to_linear(1.0) == doctest::Approx(1.0));
    CHECK(ts::ops::lab_f(0.008f) == doctest::Approx(7.787 * 0.008 + 16.0 / 116.0));
    CHECK(ts::ops::lab_f(0.125f) == doctest::Approx(0.5));
    const auto t = ts::ops::srgb8_linear_table();
    CHECK(t[0] == 0.0f);
    CHECK(t[255] == doctest::Approx(1.0));
    CHECK(t[10] == doctest::Approx(10.0 / 255.0 / 12.92));
    CHECK_THROWS_AS((void)ts::ops::rgb_to_lab(ts::cpu_serial{}, ts::image<float>(4, 4, 1)), ts::error);
}

TEST_CASE("reflect_index follows scipy's 'reflect' mode (d c b a | a b c d | d c b a)") {
    const ts::index_t n = 4;
    const ts::index_t want[12] = {3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0};  // i = -4 .. 7
    for (ts::index_t i = -4; i < 8; ++i) CHECK(ts::ops::reflect_index(i, n) == want[i + 4]);
    CHECK(ts::ops::reflect_index(-9, 4) == 0);  // period 2n: -9 ~ 7 -> 0
    CHECK(ts::ops::reflect_index(5, 1) == 0);
}

TEST_CASE("gaussian_kernel1d: scipy's radius and normalisation") {
    auto w = ts::ops::gaussian_kernel1d(1.0);
    CHECK(w.size() == 9);  // r = int(4 * 1 + 0.5) = 4
    w = ts::ops::gaussian_kernel1d(0.8);
    CHECK(w.size() == 7);  // r = int(3.7) = 3
    double s = 0;
    for (float v : w) s += v;
    CHECK(s == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(w[3] > w[2]);
    CHECK(w[2] == doctest::Approx(w[4]));
    CHECK_THROWS_AS((void)ts::ops::gaussian_kernel1d(0.0), ts::error);
    CHECK_THROWS_AS((void)ts::ops::gaussian_kernel1d(std::nan("")), ts::error);
}

TEST_CASE("gaussian_filter matches scipy.ndimage.gaussian_filter (reflect, truncate 4)") {
    // skimage.filters.gaussian(x, sigma=1, mode='reflect') of a 5 x 7 impulse at (row 2, col 3).
    ts::image<float> impulse(7, 5, 1, 0.0f);
    impulse(3, 2) = 1.0f;
    const auto g = ts::ops::gaussian_filter(ts::cpu_omp{}, impulse, 1.0);
    const double row2[7] = {0.001821, 0.021539, 0.096533, 0.159156, 0.096533, 0.021539, 0.001821};
    const double col0[5] = {0.000267, 0.001105, 0.001821, 0.001105, 0.000267};
    for (int x = 0; x < 7; ++x) CHECK(g(x, 2) == doctest::Approx(row2[x]).epsilon(1e-6).scale(1.0));
    for (int y = 0; y < 5; ++y) CHECK(g(0, y) == doctest::Approx(col0[y]).epsilon(1e-6).scale(1.0));
    // gaussian_filter(arange(6).reshape(1, 6), sigma=[0, 2], mode='reflect'): the radius (8)
    // exceeds the row, so the reflection wraps more than once.
    ts::image<float> ramp(6, 1, 1);
    for (int x = 0; x < 6; ++x) ramp(x, 0) = static_cast<float>(x);
    const auto r = ts::ops::gaussian_filter(ts::cpu_serial{}, ramp, 2.0);
    const double want[6] = {1.157204, 1.519081, 2.141719, 2.858281, 3.480919, 3.842796};
    for (int x = 0; x < 6; ++x) CHECK(r(x, 0) == doctest::Approx(want[x]).epsilon(1e-5));
    // Channels are not mixed; sigma 0 is the identity; mass is preserved.
    ts::image<float> two(5, 4, 2, 0.0f);
    two(2, 1, 1) = 4.0f;
    const auto t = ts::ops::gaussian_filter(ts::cpu_serial{}, two, 0.7);
    double sum0 = 0, sum1 = 0;
    for (ts::index_t i = 0; i < 20; ++i) {
        sum0 += t.data()[2 * i];
        sum1 += t.data()[2 * i + 1];
    }
    CHECK(sum0 == 0.0);
    CHECK(sum1 == doctest::Approx(4.0).epsilon(1e-5));
    CHECK(ts::ops::gaussian_filter(ts::cpu_serial{}, two, 0.0).values() == two.values());
    CHECK_THROWS_AS((void)ts::ops::gaussian_filter(ts::cpu_serial{}, two, std::nan("")), ts::error);
}
