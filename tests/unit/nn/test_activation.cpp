#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "nn_test_util.hpp"
#include "support/backend_test.hpp"
#include "tessel/nn/activation.hpp"

namespace ts = tessel;
namespace nn = tessel::nn;
using nn_test::check_values;

namespace {
// Inputs shared by the pointwise cases; expected outputs below were computed independently with
// Python's math module (math.tanh, 1/(1+math.exp(-x)), x*sigmoid(x), scale*alpha*math.expm1(x)
// with PyTorch's SELU constants), printed to 9 significant digits.
const std::vector<float> inputs{-3.f, -0.5f, 0.f, 0.25f, 2.f, 10.f};

template <class Spec, class B>
std::vector<float> run_forward(const typename Spec::config& cfg = {}) {
    ts::rng init(1);
    typename Spec::template bind<B> layer(cfg, init);
    nn::context<B> ctx;
    ts::tensor<float, B> x(ts::shape{1, 2, 1, 3}, std::span<const float>(inputs));
    return layer.forward(ctx, x).to_vector();
}
}  // namespace

template <class B>
void pointwise_forward_values() {
    check_values(run_forward<nn::tanh, B>(), {-0.995054754, -0.462117157, 0, 0.244918662, 0.96402758, 0.999999996});
    check_values(run_forward<nn::sigmoid, B>(),
                 {0.0474258732, 0.377540669, 0.5, 0.562176501, 0.880797078, 0.999954602});
    check_values(run_forward<nn::silu, B>(), {-0.14227762, -0.188770334, 0, 0.140544125, 1.76159416, 9.99954602});
    check_values(run_forward<nn::selu, B>(), {-1.67056873, -0.691758188, 0, 0.262675247, 2.10140197, 10.5070099});
    check_values(run_forward<nn::leaky_relu, B>({.negative_slope = 0.1}), {-0.3, -0.05, 0, 0.25, 2, 10});
    check_values(run_forward<nn::leaky_relu, B>(), {-0.03, -0.005, 0, 0.25, 2, 10});
}
TESSEL_BACKEND_TEST("activations: forward values by hand", pointwise_forward_values)

TEST_CASE("activations: derivatives at chosen points") {
    // d tanh = 1 - tanh^2; d sigmoid = s (1 - s); d silu = s (1 + x (1 - s)); d selu = scale alpha
    // e^x for x <= 0; leaky slope at exactly 0 is the negative slope (PyTorch's convention).
    ts::rng init(1);
    nn::context<ts::cpu_serial> ctx;
    ts::tensor<double> x(ts::shape{3}, {-0.5, 0.0, 2.0});
    ts::tensor<double> dy(ts::shape{3}, {1.0, 1.0, 2.0});
    nn::tanh::bind<ts::cpu_serial, double> t({}, init);
    t.forward(ctx, x);
    const double t2 = std::tanh(2.0);
    check_values(t.backward(ctx, dy).to_vector(), {1 - 0.462117157 * 0.462117157, 1, 2 * (1 - t2 * t2)}, 1e-8);
    nn::selu::bind<ts::cpu_serial, double> s({}, init);
    s.forward(ctx, x);
    const double sa = 1.0507009873554805 * 1.6732632423543772;
    check_values(s.backward(ctx, dy).to_vector(), {sa * std::exp(-0.5), sa, 2 * 1.0507009873554805}, 1e-12);
    nn::leaky_relu::bind<ts::cpu_serial, double> l({.negative_slope = 0.2}, init);
    l.forward(ctx, x);
    check_values(l.backward(ctx, dy).to_vector(), {0.2, 0.2, 2.0}, 0);
}

TEST_CASE("activations: gradient checks") {
    const ts::shape s{2, 3, 4, 5};
    nn_test::gradient_check<nn::tanh>({}, s);
    nn_test::gradient_check<nn::sigmoid>({}, s);
    nn_test::gradient_check<nn::silu>({}, s);
    nn_test::gradient_check<nn::selu>({}, s);
    nn_test::gradient_check<nn::leaky_relu>({.negative_slope = 0.3}, s);
    nn_test::gradient_check<nn::softmax>({}, s);
    nn_test::gradient_check<nn::log_softmax>({}, s);
    // logits far apart and large: the stable forms keep the gradients finite and correct
    ts::autograd::gradient_check_options wide;
    wide.input_low = -30;
    wide.input_high = 30;
    wide.epsilon = 1e-5;
    nn_test::gradient_check<nn::softmax>({}, ts::shape{2, 5, 3}, wide);
    nn_test::gradient_check<nn::log_softmax>({}, ts::shape{2, 5, 3}, wide);
    nn_test::gradient_check<nn::sigmoid>({}, ts::shape{40}, wide);
}

template <class B>
void softmax_values() {
    ts::rng init(1);
    nn::context<B> ctx;
    // x[c][s] for one image of 3 channels at 2 positions; channel-major storage [1,3,1,2].
    ts::tensor<float, B> x(ts::shape{1, 3, 1, 2}, {1.f, -2.f, 2.f, 0.f, 3.f, 1000.f});
    nn::softmax::bind<B> sm({}, init);
    nn::log_softmax::bind<B> lsm({}, init);
    // Python: e = [math.exp(v - max) for v in col]; e / sum(e); v - max - math.log(sum(e)).
    // Position 1 has a logit of 1000: a naive exp overflows to inf and gives NaN.
    check_values(sm.forward(ctx, x).to_vector(), {0.0900305732, 0, 0.244728471, 0, 0.665240956, 1});
    check_values(lsm.forward(ctx, x).to_vector(), {-2.40760596, -1002, -1.40760596, -1000, -0.407605964, 0});
}
TESSEL_BACKEND_TEST("softmax/log_softmax: values over the channel axis, stable for large logits", softmax_values)

TEST_CASE("softmax: sums to one over channels at every position, any rank >= 2") {
    ts::rng init(1);
    nn::context<ts::cpu_serial> ctx;
    nn::softmax::bind<ts::cpu_serial, double> sm({}, init);
    const auto x = nn_test::random_tensor<double>(ts::shape{2, 4, 3, 5}, 11, -20, 20);
    const auto& y = sm.forward(ctx, x);
    for (ts::index_t n = 0; n < 2; ++n)
        for (ts::index_t h = 0; h < 3; ++h)
            for (ts::index_t w = 0; w < 5; ++w) {
                double s = 0;
                for (ts::index_t c = 0; c < 4; ++c) s += y(n, c, h, w);
                CHECK(s == doctest::Approx(1.0).epsilon(1e-12));
            }
    const auto x2 = nn_test::random_tensor<double>(ts::shape{3, 6}, 12);
    const auto& y2 = sm.forward(ctx, x2);
    for (ts::index_t n = 0; n < 3; ++n) {
        double s = 0;
        for (ts::index_t c = 0; c < 6; ++c) s += y2(n, c);
        CHECK(s == doctest::Approx(1.0).epsilon(1e-12));
    }
}

TEST_CASE("activations: cpu_serial and cpu_omp agree") {
    const ts::shape s{2, 5, 7, 9};
    nn_test::serial_omp_agree<nn::tanh>({}, s, 0);
    nn_test::serial_omp_agree<nn::sigmoid>({}, s, 0);
    nn_test::serial_omp_agree<nn::silu>({}, s, 0);
    nn_test::serial_omp_agree<nn::selu>({}, s, 0);
    nn_test::serial_omp_agree<nn::leaky_relu>({}, s, 0);
    nn_test::serial_omp_agree<nn::softmax>({}, s, 0);
    nn_test::serial_omp_agree<nn::log_softmax>({}, s, 0);
}

TEST_CASE("activations: errors name the op") {
    ts::rng init(1);
    nn::context<ts::cpu_serial> ctx;
    ts::tensor<float> empty(ts::shape{1, 0, 4, 4});
    nn::tanh::bind<ts::cpu_serial> t({}, init);
    CHECK_THROWS_WITH_AS(t.forward(ctx, empty), doctest::Contains("tessel::nn::tanh"), ts::error);
    nn::softmax::bind<ts::cpu_serial> sm({}, init);
    CHECK_THROWS_WITH_AS(sm.forward(ctx, empty), doctest::Contains("tessel::nn::softmax: empty input"), ts::error);
    ts::tensor<float> flat(ts::shape{5});
    CHECK_THROWS_WITH_AS(sm.forward(ctx, flat), doctest::Contains("rank >= 2"), ts::error);
    CHECK_THROWS_AS(nn::leaky_relu::bind<ts::cpu_serial>({.negative_slope = std::nan("")}, init), ts::error);
    ts::tensor<float> x(ts::shape{1, 2, 2, 2});
    t.forward(ctx, x);
    ts::tensor<float> wrong(ts::shape{1, 2, 2, 3});
    CHECK_THROWS_WITH_AS(t.backward(ctx, wrong), doctest::Contains("shape mismatch"), ts::error);
}
