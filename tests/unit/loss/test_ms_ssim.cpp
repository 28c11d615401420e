// MS-SSIM (loss/ms_ssim.hpp): values and gradients against pytorch_msssim (ms_ssim_reference.py,
// whose printed numbers are embedded here), finite-difference gradient checks in double at sizes
// that reach both pooling branches (odd and even sides), the automatic scale rule, and errors.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "support/error_message.hpp"
#include "support/tape_check.hpp"
#include "tessel/loss/ms_ssim.hpp"

namespace ts = tessel;
namespace ag = tessel::autograd;
using ts::index_t;

namespace {
// The closed-form images of ms_ssim_reference.py (double, then rounded to float).
template <class T = float, class B = ts::cpu_omp>
std::pair<ts::tensor<T, B>, ts::tensor<T, B>> synthetic_pair(index_t n, index_t c, index_t h, index_t w) {
    ts::tensor<T, B> x(ts::shape{n, c, h, w}), y(ts::shape{n, c, h, w});
    index_t k = 0;
    for (index_t a = 0; a < n; ++a)
        for (index_t b = 0; b < c; ++b)
            for (index_t i = 0; i < h; ++i)
                for (index_t j = 0; j < w; ++j, ++k) {
                    const double di = static_cast<double>(i), dj = static_cast<double>(j), db = static_cast<double>(b),
                                 da = static_cast<double>(a);
                    const double v = 0.5 + 0.3 * std::sin(0.31 * di + 0.17 * dj + 1.3 * db + 0.7 * da) +
                                     0.15 * std::cos(0.023 * di * dj + 0.5 * db);
                    const double u = v + 0.2 * std::sin(0.9 * di - 0.45 * dj + db) * std::cos(0.13 * dj + da);
                    x[k] = static_cast<T>(static_cast<float>(std::min(1.0, std::max(0.0, v))));
                    y[k] = static_cast<T>(static_cast<float>(std::min(1.0, std::max(0.0, u))));
                }
    return {std::move(x), std::move(y)};
}
struct grad_ref {
    std::array<index_t, 4> at;
    double value;
};
template <class T, class B>
void check_against(const ts::loss::ms_ssim& s, index_t n, index_t c, index_t h, index_t w, double value,
                   const std::vector<grad_ref>& grads) {
    auto [x, y] = synthetic_pair<T, B>(n, c, h, w);
    CHECK(s.index(x, y) == doctest::Approx(value).epsilon(2e-6));
    ts::tensor<T, B> dx;
    const double loss = s.value_and_grad(x, y, dx);
    CHECK(loss == doctest::Approx(1 - value).epsilon(2e-5));
    for (const auto& g : grads) {
        const double got = dx(g.at[0], g.at[1], g.at[2], g.at[3]);
        INFO("gradient at [" << g.at[0] << "," << g.at[1] << "," << g.at[2] << "," << g.at[3] << "]");
        CHECK(std::abs(got - g.value) <= 2e-3 * std::abs(g.value) + 1e-10);
    }
}
using tessel::testing::message_of;
}  // namespace

TEST_CASE("ms_ssim: five scales match pytorch_msssim (value and autograd gradient)") {
    const ts::loss::ms_ssim s{};
    const std::vector<grad_ref> g = {{{0, 0, 0, 0}, 2.30762826e-10},
                                     {{0, 1, 17, 33}, 8.95280755e-06},
                                     {{0, 2, 175, 180}, 1.40373144e-10},
                                     {{0, 0, 88, 91}, -8.15108433e-06},
                                     {{0, 2, 5, 170}, -2.82967562e-06}};
    check_against<float, ts::cpu_omp>(s, 1, 3, 176, 181, 0.951650381, g);
    check_against<double, ts::cpu_serial>(s, 1, 3, 176, 181, 0.951650381, g);
    auto [x, y] = synthetic_pair(1, 3, 176, 181);
    ts::loss::ms_ssim::workspace<float, ts::cpu_omp> ws;
    CHECK(ws.forward(s, x, y) == doctest::Approx(0.951650381).epsilon(2e-6));
    CHECK(ws.levels() == 5);
}

TEST_CASE("ms_ssim: three renormalised scales on a batch of two with odd sides match pytorch_msssim") {
    const ts::loss::ms_ssim s{.levels = 3};
    check_against<float, ts::cpu_omp>(s, 2, 1, 180, 163, 0.925148249,
                                      {{{0, 0, 0, 0}, -2.2293653e-11},
                                       {{1, 0, 179, 162}, -1.54289203e-11},
                                       {{1, 0, 90, 81}, -2.16928565e-05},
                                       {{0, 0, 33, 2}, 5.90631373e-07}});
}

TEST_CASE("ms_ssim: one scale is SSIM (pytorch_msssim.ssim), also with another window, sigma and K2") {
    check_against<float, ts::cpu_omp>(ts::loss::ms_ssim{.levels = 1}, 1, 2, 23, 30, 0.818359971,
                                      {{{0, 0, 0, 0}, 4.06313561e-09},
                                       {{0, 1, 22, 29}, 6.13938589e-09},
                                       {{0, 1, 11, 14}, -0.00364733255}});
    // 20 x 30 is too small for a second scale, so the automatic rule gives SSIM there.
    auto [x, y] = synthetic_pair(1, 2, 20, 30);
    CHECK(ts::loss::ms_ssim{}.index(x, y) == ts::loss::ms_ssim{.levels = 1}.index(x, y));
    check_against<float, ts::cpu_omp>(ts::loss::ms_ssim{.levels = 1, .window = 7, .sigma = 2.0, .k2 = 0.05}, 1, 1,
                                      47, 52, 0.806636035,
                                      {{{0, 0, 0, 0}, 3.437345e-05}, {{0, 0, 30, 40}, -0.000560642977}});
}

TEST_CASE("ms_ssim: the automatic scale count and the renormalised weights") {
    const ts::loss::ms_ssim s{};
    CHECK(s.levels_for(176, 181) == 5);
    CHECK(s.levels_for(300, 161) == 5);  // 161 -> 81 -> 41 -> 21 -> 11 (ceil halving)
    CHECK(s.levels_for(160, 300) == 4);  // 160 -> 80 -> 40 -> 20 -> 10
    CHECK(s.levels_for(60, 70) == 3);    // 60 -> 30 -> 15 -> 8
    CHECK(s.levels_for(21, 400) == 2);   // 21 -> 11
    CHECK(s.levels_for(20, 400) == 1);
    CHECK(s.levels_for(22, 22) == 2);
    const auto w = s.weights_for(3);
    CHECK(w[0] + w[1] + w[2] == doctest::Approx(1.0));
    CHECK(w[1] / w[0] == doctest::Approx(0.2856 / 0.0448));
    CHECK(s.weights_for(5)[4] == 0.1333);
    const ts::loss::ms_ssim raw{.renormalize = false};
    CHECK(raw.weights_for(2)[1] == 0.2856);
    // The automatic rule at 60 x 70 is exactly three explicit scales.
    auto [x, y] = synthetic_pair(1, 3, 60, 70);
    CHECK(s.index(x, y) == ts::loss::ms_ssim{.levels = 3}.index(x, y));
    CHECK(s.index(x, x) == doctest::Approx(1.0).epsilon(1e-6));
}

TEST_CASE("ms_ssim: gradients against finite differences at random images, odd and even sides") {
    ts::rng gen(7);
    struct sz {
        index_t n, c, h, w, levels;
    };
    for (const sz z : {sz{1, 1, 23, 24, 2}, sz{2, 2, 25, 23, 2}, sz{1, 1, 44, 45, 3}, sz{1, 2, 13, 11, 1}}) {
        ts::tensor<double> x = ts::testing::random_tensor(ts::shape{z.n, z.c, z.h, z.w}, gen, 0.0, 1.0);
        const ts::tensor<double> y = ts::testing::random_tensor(ts::shape{z.n, z.c, z.h, z.w}, gen, 0.0, 1.0);
        // Smooth the prediction towards the target so the cs terms stay positive (relu inactive).
        for (index_t i = 0; i < x.numel(); ++i) x[i] = 0.6 * y[i] + 0.4 * x[i];
        const ts::loss::ms_ssim s{.levels = z.levels, .window = z.levels == 1 ? 5 : 11};
        ts::tensor<double> g;
        s.value_and_grad(x, y, g, {.weight = 1.7});
        auto res = ag::check_scalar_gradient([&] { return 1.7 * s.value(x, y); }, x, g, {.tolerance = 1e-6});
        INFO(z.n << "x" << z.c << "x" << z.h << "x" << z.w << " levels " << z.levels << ": " << res.report);
        CHECK(res.passed);
        // The tape form gives the same gradient.
        auto tres = ts::testing::check_tape_gradient(
            [&](ts::testing::dtape&, std::vector<ts::testing::dvar>& v) { return s(v[0], y) * 1.7; }, {&x},
            {.tolerance = 1e-6});
        CHECK(tres.passed);
    }
}

TEST_CASE("ms_ssim: accumulate adds to the gradient buffer") {
    auto [x, y] = synthetic_pair<double, ts::cpu_serial>(1, 1, 30, 31);
    const ts::loss::ms_ssim s{};
    ts::tensor<double> g1, g2(x.shape());
    s.value_and_grad(x, y, g1);
    for (index_t i = 0; i < g2.numel(); ++i) g2[i] = 0.25;
    s.value_and_grad(x, y, g2, {.weight = 2.0, .accumulate = true});
    for (index_t i = 0; i < g2.numel(); i += 37) CHECK(g2[i] == doctest::Approx(0.25 + 2 * g1[i]).epsilon(1e-12));
}

TEST_CASE("ms_ssim: bad input and settings say what is wrong") {
    ts::tensor<float, ts::cpu_omp> a(ts::shape{1, 3, 30, 30}), b(ts::shape{1, 3, 30, 31}), small(ts::shape{1, 1, 10, 40});
    CHECK(message_of([&] { (void)ts::loss::ms_ssim{}.index(a, b); }).find("equal shape") != std::string::npos);
    CHECK(message_of([&] { (void)ts::loss::ms_ssim{}.index(small, small); }).find("smaller than the 11x11") !=
          std::string::npos);
    CHECK(message_of([&] { (void)ts::loss::ms_ssim{.levels = 3}.index(a, a); }).find("3 scales") != std::string::npos);
    CHECK(message_of([&] { (void)ts::loss::ms_ssim{.levels = 6}.index(a, a); }).find("levels") != std::string::npos);
    CHECK(message_of([&] { (void)ts::loss::ms_ssim{.window = 4}.index(a, a); }).find("odd") != std::string::npos);
    CHECK(message_of([&] { (void)ts::loss::ms_ssim{.sigma = std::nan("")}.index(a, a); }).find("sigma") !=
          std::string::npos);
    CHECK(message_of([&] { (void)ts::loss::ms_ssim{.data_range = 0}.index(a, a); }).find("data_range") !=
          std::string::npos);
    ts::loss::ms_ssim bad_w{};
    bad_w.weights[2] = -1;
    CHECK(message_of([&] { (void)bad_w.index(a, a); }).find("weights") != std::string::npos);
}
