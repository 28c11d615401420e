#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "nn_test_util.hpp"
#include "support/backend_test.hpp"
#include "tessel/nn/eca.hpp"

namespace ts = tessel;
namespace nn = tessel::nn;
using nn_test::check_values;

TEST_CASE("eca: adaptive kernel size") {
    // Python, the ECA-Net reference formula: t = int(abs((math.log(C, 2) + 1) / 2));
    // k = t if t % 2 else t + 1.
    CHECK(nn::eca::kernel_size(16) == 3);
    CHECK(nn::eca::kernel_size(64) == 3);
    CHECK(nn::eca::kernel_size(100) == 3);
    CHECK(nn::eca::kernel_size(256) == 5);
    CHECK(nn::eca::kernel_size(512) == 5);
    CHECK(nn::eca::kernel_size(1) == 1);
    CHECK(nn::eca::kernel_size(4) == 1);
    CHECK(nn::eca::kernel_size(128) == 5);
    CHECK(nn::eca::kernel_size(2048) == 7);
    CHECK(nn::eca::kernel_size(64, 1, 0) == 7);  // t = 6 -> 7
    ts::rng init(1);
    CHECK(nn::eca::bind<ts::cpu_serial>({.channels = 256}, init).kernel_size() == 5);
    CHECK(nn::eca::bind<ts::cpu_serial>({.channels = 256, .kernel = 9}, init).kernel_size() == 9);
}

TEST_CASE("eca: the kernel starts as PyTorch's Conv1d default, U(-1/sqrt(k), 1/sqrt(k)), fixed by the seed") {
    ts::rng a(5), b(5), c(6);
    nn::eca::bind<ts::cpu_serial> e1({.channels = 512}, a), e2({.channels = 512}, b), e3({.channels = 512}, c);
    const auto w = e1.weight().to_vector();
    REQUIRE(w.size() == 5);
    for (float v : w) CHECK(std::abs(v) <= 1 / std::sqrt(5.0f));
    CHECK(w == e2.weight().to_vector());
    CHECK(w != e3.weight().to_vector());
    auto p = e1.parameters();
    REQUIRE(p.size() == 1);
    CHECK(p[0].name == "weight");
    CHECK(p[0].value->shape() == ts::shape{5});
}

// Expected values: Python, s = channel means; z[c] = sum_j w[j] * s[c + j - 1] over channels of
// the same image (zero outside); g = 1 / (1 + math.exp(-z)); y = x * g.
template <class B>
void eca_values() {
    ts::rng init(1);
    nn::eca::bind<B> e({.channels = 4, .kernel = 3}, init);  // the rule would give k = 1 for C = 4
    REQUIRE(e.kernel_size() == 3);
    e.weight() = ts::tensor<float, B>(ts::shape{3}, {0.5f, -1.f, 2.f});
    nn::context<B> ctx;
    ts::tensor<float, B> x(ts::shape{2, 4, 2, 2},
                           {1, 2, 3, 4, -1, -1, 0, 0, 0.5f, 0.5f, 0.5f, 0.5f, 4, 0, 0, 0,  // image 0
                            100, 100, 100, 100, 0, 0, 0, 0, 1, 1, 1, 1, -2, -2, -2, -2});  // image 1
    const auto y = e.forward(ctx, x).to_vector();
    // The last channel of image 0 must not see image 1's first channel (mean 100) as a neighbour.
    check_values(e.gates().to_vector(),
                 {0.0293122308, 0.93991335, 0.777299861, 0.320821301, 3.72007598e-44, 1, 0.00669285092, 0.92414182});
    check_values(y, {0.0293122308, 0.0586244615, 0.0879366923, 0.117248923, -0.93991335, -0.93991335, 0, 0,
                     0.388649931, 0.388649931, 0.388649931, 0.388649931, 1.2832852, 0, 0, 0,
                     0, 0, 0, 0, 0, 0, 0, 0,
                     0.00669285092, 0.00669285092, 0.00669285092, 0.00669285092,
                     -1.84828364, -1.84828364, -1.84828364, -1.84828364});
}
TESSEL_BACKEND_TEST("eca: forward values by hand", eca_values)

TEST_CASE("eca: gradient checks (input and kernel)") {
    nn_test::gradient_check<nn::eca>({.channels = 6}, ts::shape{2, 6, 3, 4});
    nn_test::gradient_check<nn::eca>({.channels = 7, .kernel = 5}, ts::shape{2, 7, 3, 3});
    nn_test::gradient_check<nn::eca>({.channels = 3, .kernel = 7}, ts::shape{1, 3, 2, 5});  // kernel wider than C
    nn_test::gradient_check<nn::eca>({.channels = 1}, ts::shape{3, 1, 4, 4});
    nn_test::gradient_check<nn::eca>({.channels = 256}, ts::shape{1, 256, 2, 2});
}

TEST_CASE("eca: cpu_serial and cpu_omp agree") {
    nn_test::serial_omp_agree<nn::eca>({.channels = 64}, ts::shape{2, 64, 9, 7}, 0);
    nn_test::serial_omp_agree<nn::eca>({.channels = 5, .kernel = 3}, ts::shape{3, 5, 4, 4}, 0);
}

TEST_CASE("eca: bad configs and inputs") {
    ts::rng init(1);
    CHECK_THROWS_WITH_AS(nn::eca::bind<ts::cpu_serial>({}, init),
                         doctest::Contains("tessel::nn::eca: channels must be positive"), ts::error);
    CHECK_THROWS_WITH_AS(nn::eca::bind<ts::cpu_serial>({.channels = 8, .kernel = 4}, init),
                         doctest::Contains("kernel must be odd"), ts::error);
    CHECK_THROWS_AS(nn::eca::kernel_size(64, 0, 1), ts::error);
    nn::eca::bind<ts::cpu_serial> e({.channels = 8}, init);
    nn::context<ts::cpu_serial> ctx;
    ts::tensor<float> wrong(ts::shape{1, 4, 3, 3}), empty(ts::shape{1, 8, 0, 3}), flat(ts::shape{8, 3});
    CHECK_THROWS_WITH_AS(e.forward(ctx, wrong), doctest::Contains("input has 4 channels, the layer expects 8"),
                         ts::error);
    CHECK_THROWS_WITH_AS(e.forward(ctx, empty), doctest::Contains("tessel::nn::eca: empty input"), ts::error);
    CHECK_THROWS_WITH_AS(e.forward(ctx, flat), doctest::Contains("NCHW"), ts::error);
}

// Planes of more than one elementwise chunk (2048 values): 47 x 93 = 4371 = 2 x 2048 + 275, so
// the scale and input-gradient passes cover full chunks and a partial last one per plane. The
// reference is the definition summed in double, element by element.
template <class B>
void eca_long_planes() {
    const ts::index_t n = 2, c = 5, h = 47, w = 93, hw = h * w;
    ts::rng init(4);
    nn::eca::bind<B> e({.channels = c, .kernel = 3}, init);
    e.weight() = ts::tensor<float, B>(ts::shape{3}, {0.7f, -0.4f, 1.3f});
    std::vector<float> xv(static_cast<std::size_t>(n * c * hw)), dyv(xv.size());
    for (std::size_t i = 0; i < xv.size(); ++i) {
        xv[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)) + 0.1 * static_cast<double>(i % 7));
        dyv[i] = static_cast<float>(std::cos(0.11 * static_cast<double>(i)));
    }
    const ts::tensor<float, B> x(ts::shape{n, c, h, w}, xv), dy(ts::shape{n, c, h, w}, dyv);
    nn::context<B> ctx;
    const auto y = e.forward(ctx, x).to_vector();
    const auto dx = e.backward(ctx, dy).to_vector();
    const double wt[3] = {0.7, -0.4, 1.3};
    std::vector<double> s(static_cast<std::size_t>(n * c)), g(s.size()), dz(s.size());
    for (ts::index_t p = 0; p < n * c; ++p) {
        double sum = 0;
        for (ts::index_t k = 0; k < hw; ++k) sum += xv[static_cast<std::size_t>(p * hw + k)];
        s[static_cast<std::size_t>(p)] = sum / static_cast<double>(hw);
    }
    for (ts::index_t p = 0; p < n * c; ++p) {
        const ts::index_t ch = p % c, row = p - ch;
        double z = 0;
        for (int j = 0; j < 3; ++j)
            if (ch + j - 1 >= 0 && ch + j - 1 < c) z += wt[j] * s[static_cast<std::size_t>(row + ch + j - 1)];
        g[static_cast<std::size_t>(p)] = 1 / (1 + std::exp(-z));
        double dot = 0;
        for (ts::index_t k = 0; k < hw; ++k)
            dot += double(dyv[static_cast<std::size_t>(p * hw + k)]) * xv[static_cast<std::size_t>(p * hw + k)];
        const double gp = g[static_cast<std::size_t>(p)];
        dz[static_cast<std::size_t>(p)] = dot * gp * (1 - gp);
    }
    double worst_y = 0, worst_dx = 0;
    for (ts::index_t p = 0; p < n * c; ++p) {
        const ts::index_t ch = p % c, row = p - ch;
        double ds = 0;
        for (int j = 0; j < 3; ++j)
            if (ch - j + 1 >= 0 && ch - j + 1 < c) ds += dz[static_cast<std::size_t>(row + ch - j + 1)] * wt[j];
        for (ts::index_t k = 0; k < hw; ++k) {
            const auto i = static_cast<std::size_t>(p * hw + k);
            const double gp = g[static_cast<std::size_t>(p)];
            worst_y = std::max(worst_y, std::abs(y[i] - xv[i] * gp));
            worst_dx = std::max(worst_dx, std::abs(dx[i] - (dyv[i] * gp + ds / static_cast<double>(hw))));
        }
    }
    CHECK(worst_y < 2e-6);
    CHECK(worst_dx < 2e-6);
}
TESSEL_BACKEND_TEST("eca: planes longer than one chunk, against the definition", eca_long_planes)
