#include <doctest/doctest.h>

#include <cmath>

#include "nn_test_util.hpp"
#include "support/backend_test.hpp"
#include "tessel/nn/dropout.hpp"

namespace ts = tessel;
namespace nn = tessel::nn;

template <class B>
void dropout_statistics() {
    for (double p : {0.1, 0.3, 0.5, 0.9}) {
        INFO("p = " << p);
        ts::rng init(1);
        nn::dropout::bind<B> d({.p = p}, init);
        nn::context<B> ctx;
        ctx.gen.reseed(123);
        const ts::index_t n = 200000;
        const ts::tensor<float, B> x(ts::shape{2, 10, 100, 100}, 1.5f);
        const auto y = d.forward(ctx, x).to_vector();
        ts::index_t dropped = 0;
        double sum = 0;
        bool values_ok = true;
        const float kept = static_cast<float>(1.5f * static_cast<float>(1.0 / (1.0 - p)));
        for (float v : y) {
            if (v == 0.f)
                ++dropped;
            else
                values_ok = values_ok && v == kept;
            sum += v;
        }
        CHECK(values_ok);  // survivors are scaled by exactly 1/(1-p)
        // 6 binomial standard deviations: a correct mask fails this with probability ~1e-9.
        const double sd = std::sqrt(p * (1 - p) / static_cast<double>(n));
        CHECK(std::abs(static_cast<double>(dropped) / static_cast<double>(n) - p) < 6 * sd);
        CHECK(std::abs(sum / static_cast<double>(n) - 1.5) < 6 * sd * 1.5 / (1 - p));  // inverted: mean kept
        // the mask is not spatially periodic: drops in the first and second halves are balanced
        ts::index_t first = 0;
        for (ts::index_t i = 0; i < n / 2; ++i) first += y[static_cast<std::size_t>(i)] == 0.f;
        CHECK(std::abs(static_cast<double>(first) / static_cast<double>(n / 2) - p) < 6 * sd * std::sqrt(2.0));
    }
}
TESSEL_BACKEND_TEST("dropout: fraction dropped ~ p, survivors scaled by 1/(1-p)", dropout_statistics)

template <class B>
void dropout_eval_and_backward() {
    ts::rng init(1);
    nn::dropout::bind<B> d({.p = 0.4}, init);
    nn::context<B> ctx;
    const auto x = nn_test::random_tensor<float, B>(ts::shape{2, 3, 8, 8}, 2);
    const auto dy = nn_test::random_tensor<float, B>(ts::shape{2, 3, 8, 8}, 3);
    // training: backward applies the same mask and scale
    const auto y = d.forward(ctx, x).to_vector();
    const auto dx = d.backward(ctx, dy).to_vector();
    const auto xv = x.to_vector(), dyv = dy.to_vector();
    for (std::size_t i = 0; i < y.size(); ++i) {
        const bool kept = y[i] != 0.f;
        CHECK(dx[i] == (kept ? dyv[i] * static_cast<float>(1.0 / 0.6) : 0.f));
        CHECK(y[i] == (kept ? xv[i] * static_cast<float>(1.0 / 0.6) : 0.f));
    }
    // eval: identity both ways, and the random stream is left alone
    ctx.training = false;
    const ts::rng before = ctx.gen;
    CHECK(d.forward(ctx, x).to_vector() == xv);
    CHECK(d.backward(ctx, dy).to_vector() == dyv);
    ts::rng after = ctx.gen, copy = before;
    CHECK(after.next() == copy.next());
    // p = 0 in training is the identity too
    nn::dropout::bind<B> d0({.p = 0}, init);
    ctx.training = true;
    CHECK(d0.forward(ctx, x).to_vector() == xv);
}
TESSEL_BACKEND_TEST("dropout: backward uses the mask; eval and p = 0 are the identity", dropout_eval_and_backward)

TEST_CASE("dropout: the same seed gives the same mask, the stream moves on between calls") {
    ts::rng init(1);
    nn::dropout::bind<ts::cpu_serial> d({.p = 0.5}, init);
    nn::context<ts::cpu_serial> ctx;
    const ts::tensor<float> x(ts::shape{1, 4, 16, 16}, 1.f);
    ctx.gen.reseed(42);
    const auto m1 = d.forward(ctx, x).to_vector();
    const auto m2 = d.forward(ctx, x).to_vector();
    ctx.gen.reseed(42);
    const auto m3 = d.forward(ctx, x).to_vector();
    ctx.gen.reseed(43);
    const auto m4 = d.forward(ctx, x).to_vector();
    CHECK(m1 == m3);
    CHECK(m1 != m2);
    CHECK(m1 != m4);
    // and cpu_omp draws exactly the same mask for the same generator state
    nn::dropout::bind<ts::cpu_omp> domp({.p = 0.5}, init);
    nn::context<ts::cpu_omp> ctx_omp;
    ctx_omp.gen.reseed(42);
    CHECK(domp.forward(ctx_omp, x.to<ts::cpu_omp>()).to_vector() == m1);
}

TEST_CASE("dropout: gradient checks and cpu_serial/cpu_omp agreement") {
    nn_test::gradient_check<nn::dropout>({.p = 0.3}, ts::shape{2, 3, 5, 4});
    ts::autograd::gradient_check_options eval;
    eval.training = false;
    nn_test::gradient_check<nn::dropout>({.p = 0.3}, ts::shape{2, 3, 5, 4}, eval);
    nn_test::serial_omp_agree<nn::dropout>({.p = 0.25}, ts::shape{3, 4, 17, 19}, 0);
    nn_test::serial_omp_agree<nn::dropout>({.p = 0.25}, ts::shape{3, 4, 17, 19}, 0, false);
}

TEST_CASE("dropout: bad configs and inputs") {
    ts::rng init(1);
    for (double p : {1.0, -0.1, 1.5, std::nan("")}) {
        INFO("p = " << p);
        CHECK_THROWS_WITH_AS(nn::dropout::bind<ts::cpu_serial>({.p = p}, init),
                             doctest::Contains("tessel::nn::dropout: p must lie in [0, 1)"), ts::error);
    }
    nn::dropout::bind<ts::cpu_serial> d({}, init);
    nn::context<ts::cpu_serial> ctx;
    ts::tensor<float> empty(ts::shape{0});
    CHECK_THROWS_WITH_AS(d.forward(ctx, empty), doctest::Contains("tessel::nn::dropout: empty input"), ts::error);
}
