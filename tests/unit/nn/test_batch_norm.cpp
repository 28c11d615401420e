// batch_norm: hand-computed statistics and running-stat updates, train/eval gradient checks,
// backend agreement and errors.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "conv_reference.hpp"
#include "support/backend_test.hpp"
#include "tessel/autograd/check_gradients.hpp"
#include "tessel/nn/batch_norm.hpp"

namespace ts = tessel;

template <class B>
void batch_norm_by_hand() {
    ts::rng init(1);
    ts::nn::batch_norm::bind<B, double> bn({.channels = 2}, init);
    ts::nn::context<B> ctx;
    // Channel 0 over (N=2, H=1, W=2): 1, 2 | 3, 4 -> mean 2.5, biased var 1.25, unbiased 5/3.
    // Channel 1: 2, 2 | 2, 2 -> mean 2, variance 0.
    ts::tensor<double, B> x(ts::shape{2, 2, 1, 2}, {1, 2, 2, 2, 3, 4, 2, 2});
    const auto y = bn.forward(ctx, x).to_vector();
    const double s0 = std::sqrt(1.25 + 1e-5);
    CHECK(y[0] == doctest::Approx((1 - 2.5) / s0).epsilon(1e-12));
    CHECK(y[1] == doctest::Approx((2 - 2.5) / s0).epsilon(1e-12));
    CHECK(y[4] == doctest::Approx((3 - 2.5) / s0).epsilon(1e-12));
    CHECK(y[5] == doctest::Approx((4 - 2.5) / s0).epsilon(1e-12));
    CHECK(y[2] == 0.0);
    CHECK(y[7] == 0.0);
    auto rm = bn.running_mean().to_vector(), rv = bn.running_var().to_vector();
    CHECK(rm[0] == doctest::Approx(0.25).epsilon(1e-12));
    CHECK(rm[1] == doctest::Approx(0.2).epsilon(1e-12));
    CHECK(rv[0] == doctest::Approx(0.9 + 0.1 * 5.0 / 3.0).epsilon(1e-12));
    CHECK(rv[1] == doctest::Approx(0.9).epsilon(1e-12));
    bn.forward(ctx, x);  // a second step: r <- 0.9 r + 0.1 s
    rm = bn.running_mean().to_vector();
    rv = bn.running_var().to_vector();
    CHECK(rm[0] == doctest::Approx(0.9 * 0.25 + 0.25).epsilon(1e-12));
    CHECK(rv[0] == doctest::Approx(0.9 * (0.9 + 0.5 / 3.0) + 0.5 / 3.0).epsilon(1e-12));

    // Eval mode uses the running statistics and leaves them alone.
    ctx.training = false;
    const auto ye = bn.forward(ctx, x).to_vector();
    CHECK(ye[0] == doctest::Approx((1 - rm[0]) / std::sqrt(rv[0] + 1e-5)).epsilon(1e-12));
    CHECK(ye[2] == doctest::Approx((2 - rm[1]) / std::sqrt(rv[1] + 1e-5)).epsilon(1e-12));
    CHECK(bn.running_mean().to_vector() == rm);

    // gamma and beta act per channel.
    const std::vector<double> g{2.0, 3.0}, b{0.5, -1.0};
    bn.gamma().assign(ts::shape{2}, g.begin(), g.end());
    bn.beta().assign(ts::shape{2}, b.begin(), b.end());
    ctx.training = true;
    const auto yg = bn.forward(ctx, x).to_vector();
    CHECK(yg[0] == doctest::Approx(2.0 * (1 - 2.5) / s0 + 0.5).epsilon(1e-12));
    CHECK(yg[3] == doctest::Approx(-1.0).epsilon(1e-12));
}
TESSEL_BACKEND_TEST("batch_norm: statistics and running-stat updates by hand", batch_norm_by_hand)

TEST_CASE("batch_norm: gradient checks in train and eval mode (double, cpu_serial)") {
    for (bool train : {true, false}) {
        CAPTURE(train);
        ts::autograd::gradient_check_options opt;
        opt.training = train;
        auto r = ts::autograd::check_gradients<ts::nn::batch_norm>({.channels = 3}, ts::shape{2, 3, 4, 5}, opt);
        INFO(r.report);
        CHECK(r.passed);
        CHECK(r.coords_checked > 100);
    }
}

TEST_CASE("batch_norm: eval-mode gradient with non-trivial running statistics") {
    // check_gradients starts from running stats (0, 1); after some train steps they differ.
    ts::rng init(3);
    ts::nn::batch_norm::bind<ts::cpu_serial, double> bn({.channels = 2}, init);
    ts::nn::context<ts::cpu_serial> ctx;
    auto x = conv_ref::random_tensor(ts::shape{2, 2, 3, 3}, 8);
    for (ts::index_t i = 0; i < x.numel(); ++i) x[i] = 3 * x[i] + 1;
    bn.forward(ctx, x);
    ctx.training = false;
    const auto dy = conv_ref::random_tensor(x.shape(), 9);
    bn.forward(ctx, x);
    const auto dx = bn.backward(ctx, dy);
    auto loss = [&] {
        const auto& y = bn.forward(ctx, x);
        double s = 0;
        for (ts::index_t i = 0; i < y.numel(); ++i) s += y[i] * dy[i];
        return s;
    };
    auto r = ts::autograd::check_scalar_gradient(loss, x, dx);
    INFO(r.report);
    CHECK(r.passed);
    CHECK(bn.running_var()[0] != doctest::Approx(1.0));
}

TEST_CASE("batch_norm: cpu_serial and cpu_omp agree (float)") {
    ts::rng a(1), b(1);
    ts::nn::batch_norm::bind<ts::cpu_serial> s({.channels = 5}, a);
    ts::nn::batch_norm::bind<ts::cpu_omp> o({.channels = 5}, b);
    ts::nn::context<ts::cpu_serial> cs;
    ts::nn::context<ts::cpu_omp> co;
    const auto x = conv_ref::random_tensor(ts::shape{3, 5, 17, 19}, 2).cast<float>();
    const auto dy = conv_ref::random_tensor(x.shape(), 3).cast<float>();
    const auto xo = x.to<ts::cpu_omp>();
    const auto ys = s.forward(cs, x).to_vector();
    const auto yo = o.forward(co, xo).to_vector();
    const auto ds = s.backward(cs, dy).to_vector();
    const auto dd = o.backward(co, dy.to<ts::cpu_omp>()).to_vector();
    for (std::size_t i = 0; i < ys.size(); ++i) {
        REQUIRE(std::abs(ys[i] - yo[i]) < 1e-5f);
        REQUIRE(std::abs(ds[i] - dd[i]) < 1e-5f);
    }
    CHECK(s.running_var().to_vector() == o.running_var().to_vector());
}

TEST_CASE("batch_norm: errors name the op and the shapes") {
    ts::rng init(1);
    ts::nn::context<ts::cpu_serial> ctx;
    ts::nn::batch_norm::bind<ts::cpu_serial> bn({.channels = 3}, init);
    try {
        bn.forward(ctx, ts::tensor<float>(ts::shape{1, 4, 2, 2}));
        FAIL("no error");
    } catch (const ts::error& e) {
        const std::string m = e.what();
        CHECK(m.find("tessel::nn::batch_norm::forward") != std::string::npos);
        CHECK(m.find("[1,4,2,2]") != std::string::npos);
    }
    CHECK_THROWS_AS(bn.forward(ctx, ts::tensor<float>(ts::shape{0, 3, 2, 2})), ts::error);
    CHECK_THROWS_AS(bn.forward(ctx, ts::tensor<float>(ts::shape{1, 3, 1, 1})), ts::error);  // one value per channel
    ctx.training = false;
    CHECK_NOTHROW(bn.forward(ctx, ts::tensor<float>(ts::shape{1, 3, 1, 1})));
    CHECK_THROWS_AS(ts::nn::batch_norm::bind<ts::cpu_serial>({.channels = 0}, init), ts::error);
    CHECK_THROWS_AS(ts::nn::batch_norm::bind<ts::cpu_serial>({.channels = 2, .momentum = 1.5}, init), ts::error);
}

// release_output lends the output's memory to ctx.scratch; restore_output rebuilds the same
// values in the same tensor object from the saved input and statistics (with non-default gamma
// and beta, so a restore that skipped the affine step would fail), and a forward after a release
// that was never restored takes the memory back.
TEST_CASE("batch_norm: release_output and restore_output give back the same output") {
    static_assert(ts::nn::ReleasesOutput<ts::nn::batch_norm::bind<ts::cpu_serial, float>, ts::cpu_serial, float>);
    ts::rng init(4);
    ts::nn::batch_norm::bind<ts::cpu_serial, float> bn({.channels = 3}, init);
    for (ts::index_t c = 0; c < 3; ++c) bn.gamma()[c] = 0.5f + 0.25f * static_cast<float>(c), bn.beta()[c] = -0.1f * static_cast<float>(c + 1);
    ts::nn::context<ts::cpu_serial> ctx;
    ts::tensor<float> x(ts::shape{2, 3, 4, 5});
    for (ts::index_t i = 0; i < x.numel(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i)) + 0.01f * static_cast<float>(i);
    for (bool train : {true, false}) {
        ctx.training = train;
        const auto& y = bn.forward(ctx, x);
        const auto expected = y.to_vector();
        bn.release_output(ctx);
        CHECK(y.numel() == 0);
        CHECK(ctx.scratch.size<float>() >= 1);
        bn.restore_output(ctx);
        CHECK(y.shape() == x.shape());
        CHECK(y.to_vector() == expected);
        bn.restore_output(ctx);  // a second restore is a no-op
        CHECK(y.to_vector() == expected);
        CHECK(y.data() != nullptr);
        bn.release_output(ctx);
        const auto again = bn.forward(ctx, x).to_vector();  // forward after a release
        CHECK(again == expected);
    }
}
