// linear, max_pool2d and inception: values by hand or brute force, gradient checks, backend
// agreement and errors.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "conv_reference.hpp"
#include "support/backend_test.hpp"
#include "tessel/autograd/check_gradients.hpp"
#include "tessel/nn/inception.hpp"
#include "tessel/nn/linear.hpp"
#include "tessel/nn/max_pool2d.hpp"

namespace ts = tessel;

template <class B>
void linear_by_hand() {
    ts::rng init(1);
    ts::nn::linear::bind<B, double> l({.in_features = 3, .out_features = 2}, init);
    const std::vector<double> w{1, 2, 3, -1, 0, 2}, b{0.5, -0.5};
    l.weight().assign(ts::shape{2, 3}, w.begin(), w.end());
    l.bias().assign(ts::shape{2}, b.begin(), b.end());
    ts::nn::context<B> ctx;
    ts::tensor<double, B> x(ts::shape{2, 3}, {1, 0, -1, 2, 1, 1});
    CHECK(l.forward(ctx, x).to_vector() == std::vector<double>{1 - 3 + 0.5, -1 - 2 - 0.5, 2 + 2 + 3 + 0.5, -2 + 2 - 0.5});
    ts::tensor<double, B> dy(ts::shape{2, 2}, {1, 0, 0, 1});
    // dx = dy W; dW = dy^T x; db = column sums.
    CHECK(l.backward(ctx, dy).to_vector() == std::vector<double>{1, 2, 3, -1, 0, 2});
    CHECK(l.parameters()[0].grad->to_vector() == std::vector<double>{1, 0, -1, 2, 1, 1});
    CHECK(l.parameters()[1].grad->to_vector() == std::vector<double>{1, 1});
}
TESSEL_BACKEND_TEST("linear: forward and backward by hand", linear_by_hand)

TEST_CASE("linear: gradient check, init bounds and errors") {
    for (bool bias : {true, false}) {
        auto r = ts::autograd::check_gradients<ts::nn::linear>({.in_features = 7, .out_features = 5, .bias = bias},
                                                               ts::shape{4, 7});
        INFO(r.report);
        CHECK(r.passed);
    }
    ts::rng a(4), b(4);
    ts::nn::linear::bind<ts::cpu_serial> l1({.in_features = 16, .out_features = 8}, a), l2({.in_features = 16, .out_features = 8}, b);
    CHECK(l1.weight().to_vector() == l2.weight().to_vector());
    for (float v : l1.weight().to_vector()) CHECK(std::abs(v) <= 0.25f);
    ts::nn::context<ts::cpu_serial> ctx;
    try {
        l1.forward(ctx, ts::tensor<float>(ts::shape{2, 15}));
        FAIL("no error");
    } catch (const ts::error& e) {
        CHECK(std::string(e.what()).find("tessel::nn::linear::forward") != std::string::npos);
        CHECK(std::string(e.what()).find("[2,15]") != std::string::npos);
    }
    CHECK_THROWS_AS(l1.forward(ctx, ts::tensor<float>(ts::shape{0, 16})), ts::error);
    CHECK_THROWS_AS(ts::nn::linear::bind<ts::cpu_serial>({.in_features = 0, .out_features = 1}, a), ts::error);
}

template <class B>
void max_pool_brute_force() {
    struct pcase {
        ts::index_t k, s, p;
    };
    for (const auto q : {pcase{3, 1, 1}, pcase{2, 2, 0}, pcase{3, 2, 1}, pcase{2, 1, 0}}) {
        CAPTURE(q.k);
        CAPTURE(q.s);
        ts::rng init(1);
        ts::nn::max_pool2d::bind<B, double> pool({.kernel = q.k, .stride = q.s, .padding = q.p}, init);
        ts::nn::context<B> ctx;
        const auto x = conv_ref::random_tensor(ts::shape{2, 3, 7, 6}, 21);
        const auto xb = x.to<B>();
        const auto y = pool.forward(ctx, xb).template to<ts::cpu_serial>();
        const auto OH = (7 + 2 * q.p - q.k) / q.s + 1, OW = (6 + 2 * q.p - q.k) / q.s + 1;
        REQUIRE(y.shape() == ts::shape{2, 3, OH, OW});
        for (ts::index_t n = 0; n < 2; ++n)
            for (ts::index_t c = 0; c < 3; ++c)
                for (ts::index_t oh = 0; oh < OH; ++oh)
                    for (ts::index_t ow = 0; ow < OW; ++ow) {
                        double m = -1e300;
                        for (ts::index_t i = oh * q.s - q.p; i < oh * q.s - q.p + q.k; ++i)
                            for (ts::index_t j = ow * q.s - q.p; j < ow * q.s - q.p + q.k; ++j)
                                if (i >= 0 && i < 7 && j >= 0 && j < 6) m = std::max(m, x(n, c, i, j));
                        CHECK(y(n, c, oh, ow) == m);
                    }
    }
}
TESSEL_BACKEND_TEST("max_pool2d: forward equals a brute-force maximum", max_pool_brute_force)

TEST_CASE("max_pool2d: gradient checks, gradient routing and errors") {
    struct pcase {
        ts::index_t k, s, p;
    };
    for (const auto q : {pcase{3, 1, 1}, pcase{2, 2, 0}, pcase{3, 2, 1}}) {
        auto r = ts::autograd::check_gradients<ts::nn::max_pool2d>({.kernel = q.k, .stride = q.s, .padding = q.p},
                                                                   ts::shape{2, 2, 5, 6});
        INFO(r.report);
        CHECK(r.passed);
    }
    // Overlapping windows: the centre of a 3x3 image is the maximum of all nine 3x3/s1/p1 windows.
    ts::rng init(1);
    ts::nn::max_pool2d::bind<ts::cpu_serial, double> pool({.kernel = 3, .stride = 1, .padding = 1}, init);
    ts::nn::context<ts::cpu_serial> ctx;
    ts::tensor<double> x(ts::shape{1, 1, 3, 3}, {0, 0, 0, 0, 9, 0, 0, 0, 0});
    CHECK(pool.forward(ctx, x).to_vector() == std::vector<double>(9, 9.0));
    ts::tensor<double> dy(ts::shape{1, 1, 3, 3}, 1.0);
    CHECK(pool.backward(ctx, dy).to_vector() == std::vector<double>{0, 0, 0, 0, 9, 0, 0, 0, 0});
    CHECK_THROWS_AS(ts::nn::max_pool2d::bind<ts::cpu_serial>({.kernel = 0}, init), ts::error);
    CHECK_THROWS_AS(ts::nn::max_pool2d::bind<ts::cpu_serial>({.kernel = 2, .stride = 0}, init), ts::error);
    CHECK_THROWS_AS(ts::nn::max_pool2d::bind<ts::cpu_serial>({.kernel = 3, .stride = 1, .padding = 2}, init), ts::error);
    CHECK_THROWS_AS(pool.forward(ctx, ts::tensor<double>(ts::shape{0, 1, 3, 3})), ts::error);
}

namespace {
const ts::nn::inception::config small_inception{.in_channels = 3, .branch1 = 2, .branch2_reduce = 3, .branch2 = 2,
                                                .branch3_reduce = 2, .branch3 = 3, .branch4 = 2};
}

TEST_CASE("inception: output is the concatenation of the four branches") {
    ts::rng a(5), b(5);
    ts::nn::inception::bind<ts::cpu_serial, double> block(small_inception, a);
    // The same draws in the same order build the branches by hand.
    using ts::nn::inception;
    auto conv = [](ts::index_t i, ts::index_t o, ts::index_t k) {
        return ts::nn::conv2d::config{.in_channels = i, .out_channels = o, .kernel = k, .padding = k / 2};
    };
    // The branches as the paper draws them, each ending in its ReLU (the block applies those on
    // the way into the concatenation).
    using unit1 = ts::nn::sequential<ts::nn::conv2d, ts::nn::batch_norm, ts::nn::relu>;
    using unit2 = ts::nn::sequential<ts::nn::conv2d, ts::nn::batch_norm, ts::nn::relu, ts::nn::conv2d,
                                     ts::nn::batch_norm, ts::nn::relu>;
    using unit_pool = ts::nn::sequential<ts::nn::max_pool2d, ts::nn::conv2d, ts::nn::batch_norm, ts::nn::relu>;
    static_assert(!std::is_same_v<unit1, inception::unit1>);
    unit1::bind<ts::cpu_serial, double> ba({conv(3, 2, 1), {.channels = 2}, {}}, b);
    unit2::bind<ts::cpu_serial, double> bb({conv(3, 3, 1), {.channels = 3}, {}, conv(3, 2, 3), {.channels = 2}, {}}, b);
    unit2::bind<ts::cpu_serial, double> bc({conv(3, 2, 1), {.channels = 2}, {}, conv(2, 3, 5), {.channels = 3}, {}}, b);
    unit_pool::bind<ts::cpu_serial, double> bd({{.kernel = 3, .stride = 1, .padding = 1}, conv(3, 2, 1), {.channels = 2}, {}}, b);
    ts::nn::context<ts::cpu_serial> ctx;
    const auto x = conv_ref::random_tensor(ts::shape{2, 3, 6, 7}, 4);
    const auto y = block.forward(ctx, x);
    REQUIRE(y.shape() == ts::shape{2, 9, 6, 7});
    const ts::tensor<double> parts[4] = {ba.forward(ctx, x), bb.forward(ctx, x), bc.forward(ctx, x), bd.forward(ctx, x)};
    ts::index_t c0 = 0;
    for (const auto& p : parts) {
        for (ts::index_t n = 0; n < 2; ++n)
            for (ts::index_t c = 0; c < p.dim(1); ++c)
                for (ts::index_t i = 0; i < 6; ++i)
                    for (ts::index_t j = 0; j < 7; ++j) REQUIRE(y(n, c0 + c, i, j) == p(n, c, i, j));
        c0 += p.dim(1);
    }
    CHECK(block.parameters().size() == 4 * (1 + 2 + 2 + 1));
}

TEST_CASE("inception: gradient check (double, cpu_serial)") {
    ts::autograd::gradient_check_options opt;
    opt.max_coords = 64;
    auto r = ts::autograd::check_gradients<ts::nn::inception>(small_inception, ts::shape{2, 3, 5, 4}, opt);
    INFO(r.report);
    CHECK(r.passed);
}

TEST_CASE("inception: cpu_serial and cpu_omp agree (float); errors") {
    ts::rng a(6), b(6);
    ts::nn::inception::bind<ts::cpu_serial> s(small_inception, a);
    ts::nn::inception::bind<ts::cpu_omp> o(small_inception, b);
    ts::nn::context<ts::cpu_serial> cs;
    ts::nn::context<ts::cpu_omp> co;
    const auto x = conv_ref::random_tensor(ts::shape{2, 3, 12, 9}, 5).cast<float>();
    const auto xo = x.to<ts::cpu_omp>();
    const auto ys = s.forward(cs, x).to_vector();
    const auto yo = o.forward(co, xo).to_vector();
    for (std::size_t i = 0; i < ys.size(); ++i) REQUIRE(std::abs(ys[i] - yo[i]) < 1e-4f);
    const auto dy = conv_ref::random_tensor(s.forward(cs, x).shape(), 6).cast<float>();
    const auto ds = s.backward(cs, dy).to_vector();
    const auto dd = o.backward(co, dy.to<ts::cpu_omp>()).to_vector();
    for (std::size_t i = 0; i < ds.size(); ++i) REQUIRE(std::abs(ds[i] - dd[i]) < 1e-3f);
    try {
        s.forward(cs, ts::tensor<float>(ts::shape{1, 4, 5, 5}));
        FAIL("no error");
    } catch (const ts::error& e) {
        CHECK(std::string(e.what()).find("tessel::nn::inception::forward") != std::string::npos);
        CHECK(std::string(e.what()).find("[1,4,5,5]") != std::string::npos);
    }
    auto bad = small_inception;
    bad.branch3 = 0;
    CHECK_THROWS_AS(ts::nn::inception::bind<ts::cpu_serial>(bad, a), ts::error);
}
