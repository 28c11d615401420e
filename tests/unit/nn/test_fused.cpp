#include <doctest/doctest.h>

#include <cmath>

#include "nn_test_util.hpp"
#include "support/backend_test.hpp"
#include "tessel/nn/activation.hpp"
#include "tessel/nn/fused.hpp"
#include "tessel/nn/relu.hpp"

namespace ts = tessel;
namespace nn = tessel::nn;
using fused = nn::fused_relu_tanh;
using nn_test::check_values;

// Expected values: Python, w_relu * max(x, 0) + w_tanh * math.tanh(x) for
// x = [-3, -0.5, 0, 0.25, 2]; gradients as sums of dy * max(x, 0) and dy * math.tanh(x).
template <class B>
void fused_values() {
    ts::rng init(1);
    nn::context<B> ctx;
    ts::tensor<float, B> x(ts::shape{1, 1, 1, 5}, {-3.f, -0.5f, 0.f, 0.25f, 2.f});
    fused::bind<B> def({}, init);
    check_values(def.forward(ctx, x).to_vector(), {-0.497527377, -0.231058579, 0, 0.247459331, 1.48201379});
    fused::bind<B> mix({.relu_weight = 0.8, .tanh_weight = 0.2}, init);
    check_values(mix.forward(ctx, x).to_vector(), {-0.199010951, -0.0924234315, 0, 0.248983732, 1.79280552});
    fused::bind<B> free({.relu_weight = 1.5, .tanh_weight = -0.7, .convex = false}, init);
    check_values(free.forward(ctx, x).to_vector(), {0.696538328, 0.32348201, 0, 0.203556936, 2.32518069});

    ts::tensor<float, B> dy(ts::shape{1, 1, 1, 5}, {1.f, -2.f, 0.5f, 3.f, -1.f});
    def.forward(ctx, x);
    check_values(def.backward(ctx, dy).to_vector(), {0.00493301858, -0.786447733, 0.25, 2.91002227, -0.535325412});
    CHECK(def.parameters().empty());

    fused::bind<B> lfree({.learnable = true, .convex = false}, init);
    lfree.forward(ctx, x);
    check_values(lfree.backward(ctx, dy).to_vector(), {0.00493301858, -0.786447733, 0.25, 2.91002227, -0.535325412});
    auto pf = lfree.parameters();
    REQUIRE(pf.size() == 1);
    CHECK(pf[0].name == "weights");
    check_values(pf[0].grad->to_vector(), {-1.25, -0.300092032});

    fused::bind<B> lmix({.learnable = true}, init);
    lmix.forward(ctx, x);
    lmix.backward(ctx, dy);
    auto pm = lmix.parameters();
    REQUIRE(pm.size() == 1);
    CHECK(pm[0].name == "mix");
    check_values(pm[0].value->to_vector(), {0.5});
    check_values(pm[0].grad->to_vector(), {-1.25 + 0.300092032});  // d/da = sum dy (relu - tanh)
}
TESSEL_BACKEND_TEST("fused relu/tanh: forward and backward by hand", fused_values)

TEST_CASE("fused relu/tanh: mix 1 is relu, mix 0 is tanh") {
    ts::rng init(1);
    nn::context<ts::cpu_serial> ctx;
    const auto x = nn_test::random_tensor<double>(ts::shape{2, 3, 4, 4}, 4);
    const auto dy = nn_test::random_tensor<double>(ts::shape{2, 3, 4, 4}, 5);
    fused::bind<ts::cpu_serial, double> f1({.relu_weight = 1, .tanh_weight = 0}, init);
    fused::bind<ts::cpu_serial, double> f0({.relu_weight = 0, .tanh_weight = 1}, init);
    nn::relu::bind<ts::cpu_serial, double> r({}, init);
    nn::tanh::bind<ts::cpu_serial, double> t({}, init);
    CHECK(nn_test::max_rel_diff(f1.forward(ctx, x).to_vector(), r.forward(ctx, x).to_vector()) == 0);
    CHECK(nn_test::max_rel_diff(f1.backward(ctx, dy).to_vector(), r.backward(ctx, dy).to_vector()) == 0);
    CHECK(nn_test::max_rel_diff(f0.forward(ctx, x).to_vector(), t.forward(ctx, x).to_vector()) <= 1e-15);
    CHECK(nn_test::max_rel_diff(f0.backward(ctx, dy).to_vector(), t.backward(ctx, dy).to_vector()) <= 1e-15);
}

TEST_CASE("fused relu/tanh: a learnable mix is clamped to [0, 1]") {
    ts::rng init(1);
    nn::context<ts::cpu_serial> ctx;
    fused::bind<ts::cpu_serial, double> f({.learnable = true}, init);
    auto p = f.parameters();
    (*p[0].value)[0] = 1.7;  // as if an optimiser step overshot
    const auto x = nn_test::random_tensor<double>(ts::shape{1, 2, 3, 3}, 6);
    const auto dy = nn_test::random_tensor<double>(ts::shape{1, 2, 3, 3}, 7);
    const auto& y = f.forward(ctx, x);
    for (ts::index_t i = 0; i < x.numel(); ++i) CHECK(y[i] == (x[i] > 0 ? x[i] : 0.0));
    CHECK(f.current_weights() == std::array<double, 2>{1.0, 0.0});
    f.backward(ctx, dy);
    CHECK((*p[0].grad)[0] == 0.0);  // outside the clamp range the mix gets no gradient
    (*p[0].value)[0] = -0.2;
    f.forward(ctx, x);
    CHECK(f.current_weights() == std::array<double, 2>{0.0, 1.0});
}

TEST_CASE("fused relu/tanh: gradient checks") {
    const ts::shape s{2, 3, 4, 5};
    nn_test::gradient_check<fused>({}, s);
    nn_test::gradient_check<fused>({.relu_weight = 0.3, .tanh_weight = 0.7, .learnable = true}, s);
    nn_test::gradient_check<fused>({.relu_weight = 1.2, .tanh_weight = 0.4, .learnable = true, .convex = false}, s);
    nn_test::gradient_check<fused>({.relu_weight = -0.5, .tanh_weight = 2, .convex = false}, s);
}

TEST_CASE("fused relu/tanh: cpu_serial and cpu_omp agree") {
    const ts::shape s{2, 8, 9, 11};
    nn_test::serial_omp_agree<fused>({}, s, 0);
    nn_test::serial_omp_agree<fused>({.learnable = true}, s, 1e-5);
    nn_test::serial_omp_agree<fused>({.learnable = true, .convex = false}, s, 1e-5);
}

TEST_CASE("fused relu/tanh: bad configs and inputs") {
    ts::rng init(1);
    auto make = [&](fused::config c) { fused::bind<ts::cpu_serial> f(c, init); };
    CHECK_THROWS_WITH_AS(make({.relu_weight = 0.7}), doctest::Contains("tanh_weight must be 1 - relu_weight"),
                         ts::error);
    CHECK_THROWS_WITH_AS(make({.relu_weight = 1.5, .tanh_weight = -0.5}), doctest::Contains("[0, 1]"), ts::error);
    CHECK_THROWS_WITH_AS(make({.relu_weight = std::nan(""), .convex = false}),
                         doctest::Contains("tessel::nn::fused_relu_tanh"), ts::error);
    CHECK_NOTHROW(make({.relu_weight = 0.7, .tanh_weight = 0.3}));
    fused::bind<ts::cpu_serial> f({}, init);
    nn::context<ts::cpu_serial> ctx;
    ts::tensor<float> empty(ts::shape{0, 3, 2, 2});
    CHECK_THROWS_WITH_AS(f.forward(ctx, empty), doctest::Contains("tessel::nn::fused_relu_tanh: empty input"),
                         ts::error);
}
