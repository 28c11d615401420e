// nn::bn_tanh_dropout: the fused unit equals the chain batch_norm -> tanh -> dropout it replaces
// (values, gradients, running statistics, the dropout mask for the same generator state), in
// train and eval mode, at random gamma, beta and running statistics; passes the finite-difference
// check with and without dropout; and refuses bad settings.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "support/backend_test.hpp"
#include "tessel/autograd/check_gradients.hpp"
#include "tessel/nn/activation.hpp"
#include "tessel/nn/batch_norm.hpp"
#include "tessel/nn/bn_tanh_dropout.hpp"
#include "tessel/nn/dropout.hpp"

namespace ts = tessel;

namespace {

double max_diff(const std::vector<double>& a, const std::vector<double>& b) {
    REQUIRE(a.size() == b.size());
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}

template <class B>
void fused_equals_chain() {
    for (const bool training : {true, false})
        for (const double p : {0.0, 0.3}) {
            CAPTURE(training);
            CAPTURE(p);
            const ts::index_t N = 3, C = 5, H = 7, W = 4;
            ts::rng init(3);
            ts::nn::bn_tanh_dropout::bind<B, double> fused({.channels = C, .p = p, .momentum = 0.2}, init);
            ts::nn::batch_norm::bind<B, double> bn({.channels = C, .momentum = 0.2}, init);
            ts::nn::tanh::bind<B, double> act({}, init);
            ts::nn::dropout::bind<B, double> drop({.p = p}, init);
            // The same non-default state in both.
            ts::rng v(4);
            for (ts::index_t c = 0; c < C; ++c) {
                const double g = v.uniform(0.5, 2.0), b = v.uniform(-0.5, 0.5), m = v.uniform(-0.3, 0.3),
                             s = v.uniform(0.5, 2.0);
                fused.gamma()[c] = bn.gamma()[c] = g;
                fused.beta()[c] = bn.beta()[c] = b;
                fused.running_mean()[c] = bn.running_mean()[c] = m;
                fused.running_var()[c] = bn.running_var()[c] = s;
            }
            ts::tensor<double, B> x(ts::shape{N, C, H, W}), dy(ts::shape{N, C, H, W});
            for (ts::index_t i = 0; i < x.numel(); ++i) x[i] = v.uniform(-2.0, 2.0), dy[i] = v.uniform(-1.0, 1.0);
            ts::nn::context<B> c1, c2;
            c1.training = c2.training = training;
            c1.gen.reseed(9);
            c2.gen.reseed(9);
            const auto yf = fused.forward(c1, x).to_vector();
            const auto& y1 = bn.forward(c2, x);
            const auto& y2 = act.forward(c2, y1);
            const auto yc = drop.forward(c2, y2).to_vector();
            CHECK(max_diff(yf, yc) < 1e-12);
            if (training && p > 0) {  // the mask is the chain's: the same elements are zero
                std::size_t zeros = 0;
                for (std::size_t i = 0; i < yf.size(); ++i) {
                    CHECK((yf[i] == 0.0) == (yc[i] == 0.0));
                    zeros += yf[i] == 0.0;
                }
                CHECK(zeros > yf.size() / 10);
            }
            const auto dxf = fused.backward(c1, dy).to_vector();
            const auto dxc = bn.backward(c2, act.backward(c2, drop.backward(c2, dy))).to_vector();
            CHECK(max_diff(dxf, dxc) < 1e-11);
            auto pf = fused.parameters();
            auto pc = bn.parameters();
            for (std::size_t k = 0; k < 2; ++k) CHECK(max_diff(pf[k].grad->to_vector(), pc[k].grad->to_vector()) < 1e-11);
            CHECK(max_diff(fused.running_mean().to_vector(), bn.running_mean().to_vector()) < 1e-14);
            CHECK(max_diff(fused.running_var().to_vector(), bn.running_var().to_vector()) < 1e-14);
        }
}

}  // namespace

TESSEL_BACKEND_TEST("bn_tanh_dropout equals batch_norm -> tanh -> dropout in train and eval mode, with and without dropout",
                    fused_equals_chain)

TEST_CASE("bn_tanh_dropout passes the finite-difference check at random parameters and statistics") {
    struct check_case {
        double p;
        bool training;
        ts::shape in;
    };
    for (const auto& c : {check_case{0.0, true, ts::shape{2, 3, 5, 4}}, check_case{0.4, true, ts::shape{2, 3, 5, 4}},
                          check_case{0.4, true, ts::shape{3, 2, 1, 1}}, check_case{0.0, false, ts::shape{1, 4, 3, 3}},
                          check_case{0.4, false, ts::shape{1, 4, 3, 3}}}) {
        CAPTURE(c.p);
        CAPTURE(c.training);
        ts::autograd::gradient_check_options opt;
        opt.training = c.training;
        const auto r = ts::autograd::check_gradients<ts::nn::bn_tanh_dropout>({.channels = c.in[1], .p = c.p}, c.in, opt);
        INFO(r.report);
        CHECK(r.passed);
    }
}

TEST_CASE("bn_tanh_dropout refuses bad settings and inputs with messages") {
    ts::rng init(1);
    CHECK_THROWS_WITH_AS(ts::nn::bn_tanh_dropout::bind<ts::cpu_serial>({.channels = 3, .p = 1.0}, init),
                         doctest::Contains("p must lie in [0, 1)"), ts::error);
    CHECK_THROWS_WITH_AS(ts::nn::bn_tanh_dropout::bind<ts::cpu_serial>({.channels = 0}, init),
                         doctest::Contains("channels must be positive"), ts::error);
    ts::nn::bn_tanh_dropout::bind<ts::cpu_serial> layer({.channels = 3}, init);
    ts::nn::context<ts::cpu_serial> ctx;
    CHECK_THROWS_WITH_AS(layer.forward(ctx, ts::tensor<float>(ts::shape{1, 2, 4, 4})),
                         doctest::Contains("input has 2 channels"), ts::error);
    CHECK_THROWS_WITH_AS(layer.forward(ctx, ts::tensor<float>(ts::shape{1, 3, 1, 1})),
                         doctest::Contains("more than one value per channel"), ts::error);
    CHECK_THROWS_WITH_AS(layer.backward(ctx, ts::tensor<float>(ts::shape{1, 3, 4, 4})),
                         doctest::Contains("before forward"), ts::error);
}
