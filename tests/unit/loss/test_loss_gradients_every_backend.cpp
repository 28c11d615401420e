// Each loss's direct gradient (value_and_grad) against finite differences of its value, in
// double precision, on both CPU backends.
#include <doctest/doctest.h>

#include "support/backend_test.hpp"
#include "tessel/autograd/check_gradients.hpp"
#include "tessel/loss/cross_entropy.hpp"
#include "tessel/loss/mse.hpp"
#include "tessel/loss/spatial_continuity.hpp"

namespace ts = tessel;

namespace {
template <class B>
ts::tensor<double, B> random_tensor(const ts::shape& s, std::uint64_t seed, double lo = -1, double hi = 1) {
    ts::rng g(seed);
    ts::tensor<double, B> t(s);
    for (ts::index_t i = 0; i < t.numel(); ++i) t[i] = g.uniform(lo, hi);
    return t;
}
template <class B, class Value, class Grad>
void expect_matching(ts::tensor<double, B>& x, Value value, Grad grad) {
    ts::tensor<double, B> g;
    grad(g);
    const auto r = ts::autograd::check_scalar_gradient(value, x, g);
    INFO(r.report);
    CHECK(r.passed);
}
}  // namespace

template <class B>
void every_loss_gradient() {
    const ts::shape s{2, 5, 4, 3};
    auto z = random_tensor<B>(s, 1, -2, 2);

    ts::tensor<ts::label_t, B> labels(ts::shape{2, 4, 3});
    ts::rng g(2);
    for (ts::index_t i = 0; i < labels.numel(); ++i) labels[i] = static_cast<ts::label_t>(g.below(5));
    labels[3] = -100;  // ignored
    const ts::loss::cross_entropy ce{};
    expect_matching(z, [&] { return ce.value(z, labels); }, [&](auto& d) { ce.value_and_grad(z, labels, d); });

    auto p = random_tensor<B>(s, 3, 0, 1);  // probabilities along channels
    for (ts::index_t n = 0; n < 2; ++n)
        for (ts::index_t i = 0; i < 12; ++i) {
            double sum = 0;
            for (ts::index_t c = 0; c < 5; ++c) sum += p[(n * 5 + c) * 12 + i];
            for (ts::index_t c = 0; c < 5; ++c) p[(n * 5 + c) * 12 + i] /= sum;
        }
    const ts::loss::soft_cross_entropy sce{};
    expect_matching(z, [&] { return sce.value(z, p); }, [&](auto& d) { sce.value_and_grad(z, p, d); });

    const ts::loss::spatial_continuity cont{};
    expect_matching(z, [&] { return cont.value(z); }, [&](auto& d) { cont.value_and_grad(z, d); });

    auto target = random_tensor<B>(s, 4);
    const ts::loss::mse mse{};
    expect_matching(z, [&] { return mse.value(z, target); }, [&](auto& d) { mse.value_and_grad(z, target, d); });

    // Kim 2020's sum, accumulated into one buffer as the training loop does.
    for (ts::index_t i = 0; i < labels.numel(); ++i) labels[i] = labels[i] < 0 ? 0 : labels[i];
    expect_matching(
        z, [&] { return ce.value(z, labels) + 5.0 * cont.value(z); },
        [&](auto& d) {
            ce.value_and_grad(z, labels, d);
            cont.value_and_grad(z, d, {.weight = 5.0, .accumulate = true});
        });
}
TESSEL_BACKEND_TEST("every loss: value_and_grad matches finite differences", every_loss_gradient)
