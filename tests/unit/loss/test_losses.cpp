#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "support/backend_test.hpp"
#include "support/error_message.hpp"
#include "support/tape_check.hpp"
#include "tessel/loss/cross_entropy.hpp"
#include "tessel/loss/mse.hpp"
#include "tessel/loss/spatial_continuity.hpp"
#include "tessel/nn/relu.hpp"
#include "tessel/ops/argmax.hpp"

namespace ts = tessel;
namespace ag = tessel::autograd;
using ts::label_t;
using ts::testing::check_tape_gradient;
using ts::testing::dtape;
using ts::testing::dvar;
using ts::testing::random_tensor;

namespace {
// The inputs of tests/unit/loss/reference_values.py, whose printed numbers are hard-coded below.
const std::vector<double> ref_logits = {0.5, -1.0, 2.0, 0.0, 1.5, 0.25, -0.5, 0.0, -2.0, 0.75, 1.0, 0.0};
const std::vector<double> ref_soft = {0.2, 0.5, 0.1, 1.0, 0.3, 0.25, 0.6, 0.0, 0.5, 0.25, 0.3, 0.0};
const std::vector<double> ref_response = {1.0, 3.0, 3.0, 0.0, 3.0, -1.0, 2.0, 2.0, 0.5, 2.0, -1.0, 4.0};

template <class T = double, class B = ts::cpu_serial>
ts::tensor<T, B> make(const ts::shape& s, const std::vector<double>& v) {
    ts::tensor<T, B> t(s);
    for (ts::index_t i = 0; i < t.numel(); ++i) t[i] = static_cast<T>(v[static_cast<std::size_t>(i)]);
    return t;
}
ts::tensor<label_t> labels_of(const ts::shape& s, std::vector<label_t> v) {
    return ts::tensor<label_t>(s, std::span<const label_t>(v));
}
using tessel::testing::message_of;
}  // namespace

TEST_CASE("cross_entropy: values against independently computed references") {
    const auto z = make(ts::shape{1, 3, 2, 2}, ref_logits);
    ts::loss::cross_entropy ce{.ignore_index = -1};
    CHECK(ce.value(z, labels_of(ts::shape{1, 2, 2}, {1, 2, 0, -1})) == doctest::Approx(0.4278070341350279).epsilon(1e-13));
    CHECK(ce.value(z, labels_of(ts::shape{1, 2, 2}, {1, 2, 0, 2})) == doctest::Approx(0.5955083477682983).epsilon(1e-13));
    ts::tensor<double> g;
    const double v = ce.value_and_grad(z, labels_of(ts::shape{1, 2, 2}, {1, 2, 0, -1}), g);
    CHECK(v == doctest::Approx(0.4278070341350279).epsilon(1e-13));
    // Pixel 0 of every channel: (softmax - onehot) / 3 counted pixels; the ignored pixel 3 gets 0.
    CHECK(g(0, 0, 0, 0) == doctest::Approx(0.08771083121709877).epsilon(1e-12));
    CHECK(g(0, 1, 0, 0) == doctest::Approx(-0.09491057467685537).epsilon(1e-12));
    CHECK(g(0, 2, 0, 0) == doctest::Approx(0.007199743459756572).epsilon(1e-12));
    for (int k = 0; k < 3; ++k) CHECK(g(0, k, 1, 1) == 0.0);
    // Rank-2 logits [N, C] with labels [N] are the classic case of the same function.
    const auto z2 = make(ts::shape{2, 2}, {0.0, 0.0, 1.0, 1.0});
    CHECK(ce.value(z2, labels_of(ts::shape{2}, {0, 1})) == doctest::Approx(std::log(2.0)));
}

TEST_CASE("soft_cross_entropy and mse: values against references") {
    const auto z = make(ts::shape{1, 3, 2, 2}, ref_logits);
    const auto y = make(ts::shape{1, 3, 2, 2}, ref_soft);
    CHECK(ts::loss::soft_cross_entropy{}.value(z, y) == doctest::Approx(1.7830083477682985).epsilon(1e-13));
    // One-hot soft targets equal hard labels.
    ts::tensor<double> onehot(z.shape());
    const std::vector<label_t> lab = {1, 2, 0, 2};
    for (int s = 0; s < 4; ++s) onehot[lab[static_cast<std::size_t>(s)] * 4 + s] = 1.0;
    CHECK(ts::loss::soft_cross_entropy{}.value(z, onehot) ==
          doctest::Approx(ts::loss::cross_entropy{}.value(z, labels_of(ts::shape{1, 2, 2}, lab))).epsilon(1e-14));
    const auto a = make(ts::shape{2, 2}, {1.0, -2.0, 0.5, 3.0});
    const auto b = make(ts::shape{2, 2}, {0.0, -1.0, 2.0, 3.0});
    CHECK(ts::loss::mse{}.value(a, b) == 1.0625);
    ts::tensor<double> g;
    CHECK(ts::loss::mse{}.value_and_grad(a, b, g) == 1.0625);
    CHECK(g.to_vector() == std::vector<double>{0.5, -0.5, -0.75, 0.0});  // 2 (a - b) / 4
}

TEST_CASE("spatial_continuity: value and subgradient by hand, batch counted in the means") {
    const auto r = make(ts::shape{2, 1, 2, 3}, ref_response);
    ts::loss::spatial_continuity con{};
    CHECK(con.value(r) == doctest::Approx(4.229166666666667).epsilon(1e-14));
    ts::tensor<double> g;
    CHECK(con.value_and_grad(r, g) == doctest::Approx(4.229166666666667).epsilon(1e-14));
    // Element (0,0,0,1) = 3: equal to its lower and right neighbours (sign(0) = 0), 2 above its
    // left one: gradient 1/8 (8 horizontal differences). Element (0,0,0,2) = 3: right of an equal
    // value (0), 4 above its lower neighbour: +1/6 (6 vertical differences).
    CHECK(g(0, 0, 0, 1) == doctest::Approx(1.0 / 8));
    CHECK(g(0, 0, 0, 2) == doctest::Approx(1.0 / 6));
    // A constant map has value 0 and gradient 0 everywhere.
    ts::tensor<double> flat(ts::shape{1, 2, 3, 3}, 0.7);
    CHECK(con.value_and_grad(flat, g) == 0.0);
    for (ts::index_t i = 0; i < g.numel(); ++i) CHECK(g[i] == 0.0);
}

TEST_CASE("losses: gradient checks of the direct and the tape forms") {
    ts::rng gen(3);
    auto z = random_tensor(ts::shape{2, 4, 3, 5}, gen, -2, 2);
    auto soft = random_tensor(ts::shape{2, 4, 3, 5}, gen, 0, 1);
    auto target = random_tensor(ts::shape{2, 4, 3, 5}, gen);
    ts::tensor<label_t> labels(ts::shape{2, 3, 5}), some_ignored(ts::shape{2, 3, 5});
    for (ts::index_t i = 0; i < labels.numel(); ++i) {
        labels[i] = static_cast<label_t>(gen.below(4));
        some_ignored[i] = i % 3 == 0 ? label_t(255) : labels[i];
    }
    auto direct = [&](const char* what, auto value, auto value_and_grad) {
        ts::tensor<double> g;
        value_and_grad(g);
        auto res = ag::check_scalar_gradient(value, z, g);
        INFO(what << " (direct): " << res.report);
        CHECK(res.passed);
    };
    auto taped = [&](const char* what, auto build) {
        auto res = check_tape_gradient(build, {&z});
        INFO(what << " (tape): " << res.report);
        CHECK(res.passed);
    };
    const ts::loss::cross_entropy ce{}, ce_ign{.ignore_index = 255};
    const ts::loss::soft_cross_entropy sce{};
    const ts::loss::spatial_continuity con{};
    const ts::loss::mse mse{};
    direct("hard CE", [&] { return ce.value(z, labels); }, [&](auto& g) { ce.value_and_grad(z, labels, g); });
    direct("hard CE ignored", [&] { return ce_ign.value(z, some_ignored); },
           [&](auto& g) { ce_ign.value_and_grad(z, some_ignored, g); });
    direct("soft CE", [&] { return sce.value(z, soft); }, [&](auto& g) { sce.value_and_grad(z, soft, g); });
    direct("continuity", [&] { return con.value(z); }, [&](auto& g) { con.value_and_grad(z, g); });
    direct("mse", [&] { return mse.value(z, target); }, [&](auto& g) { mse.value_and_grad(z, target, g); });
    taped("hard CE", [&](dtape&, std::vector<dvar>& v) { return ce(v[0], labels); });
    taped("hard CE ignored", [&](dtape&, std::vector<dvar>& v) { return ce_ign(v[0], some_ignored); });
    taped("soft CE", [&](dtape&, std::vector<dvar>& v) { return sce(v[0], soft); });
    taped("continuity", [&](dtape&, std::vector<dvar>& v) { return con(v[0]); });
    taped("mse", [&](dtape&, std::vector<dvar>& v) { return mse(v[0], target); });
    auto res = check_tape_gradient([&](dtape&, std::vector<dvar>& v) { return mse(v[0], v[1]); }, {&z, &target});
    INFO("mse of two vars: " << res.report);
    CHECK(res.passed);
}

TEST_CASE("Kim 2020 loss as a DAG: relu layer node feeding CE and continuity") {
    // r = relu(x) feeds both terms; L = CE(r, argmax labels) + mu * continuity(r). The labels are
    // computed once at the base point and then held fixed, as they carry no gradient.
    ts::rng gen(9), init(1);
    auto x = random_tensor(ts::shape{1, 5, 4, 6}, gen);
    for (ts::index_t i = 0; i < x.numel(); ++i)  // keep away from relu's kink for finite differences
        if (std::abs(x[i]) < 0.05) x[i] = 0.3;
    ts::nn::relu::bind<ts::cpu_serial, double> act({}, init);
    ts::nn::context<ts::cpu_serial> ctx;
    ts::tensor<label_t> labels;
    const ts::index_t n_labels = ts::ops::argmax_channels(act.forward(ctx, x), labels);
    CHECK(n_labels >= 2);
    const double mu = 5.0;
    dtape t;
    ag::var<ts::cpu_serial, double> xv;
    auto record = [&] {
        t.reset();
        xv = t.input(x);
        auto r = t.layer(act, ctx, xv);
        return ts::loss::cross_entropy{}(r, labels) + mu * ts::loss::spatial_continuity{}(r);
    };
    auto l = record();
    t.backward(l);
    const ts::tensor<double> dx = xv.grad();
    auto res = ag::check_scalar_gradient([&] { return record().value()[0]; }, x, dx);
    INFO(res.report);
    CHECK(res.passed);
    // The fast path (one gradient buffer, continuity accumulated with weight mu) gives the same.
    const auto& r = act.forward(ctx, x);
    ts::tensor<double> dr;
    const double v = ts::loss::cross_entropy{}.value_and_grad(r, labels, dr) +
                     mu * ts::loss::spatial_continuity{}.value_and_grad(r, dr, {.weight = mu, .accumulate = true});
    const auto& dx_fast = act.backward(ctx, dr);
    CHECK(v == doctest::Approx(record().value()[0]).epsilon(1e-14));
    for (ts::index_t i = 0; i < dx.numel(); ++i) CHECK(dx_fast[i] == doctest::Approx(dx[i]).epsilon(1e-14));
}

TEST_CASE("argmax_channels: labels, ties to the lowest channel, distinct count") {
    // [N=2, C=3, H=1, W=2]
    const auto x = make(ts::shape{2, 3, 1, 2}, {0, 5, 1, 5, 2, -1,  // image 0: channels 0..2 of 2 pixels
                                                7, 0, 7, 0, 7, 1});
    ts::tensor<label_t> labels;
    std::vector<std::uint8_t> seen;
    const auto n = ts::ops::argmax_channels(x, labels, seen);
    CHECK(labels.shape() == ts::shape{2, 1, 2});
    CHECK(labels.to_vector() == std::vector<label_t>{2, 0, 0, 2});  // pixel (0,1): 5 vs 5 -> channel 0
    CHECK(n == 2);
    CHECK_THROWS_AS(ts::ops::argmax_channels(ts::tensor<double>(ts::shape{4}), labels), ts::error);
}

TEST_CASE("losses: bad input throws tessel::error naming the loss and the shapes") {
    const auto z = make(ts::shape{1, 3, 2, 2}, ref_logits);
    ts::loss::cross_entropy ce{};
    auto msg = message_of([&] { (void)ce.value(z, labels_of(ts::shape{1, 2, 2}, {0, 3, 1, 2})); });
    CHECK(msg.find("tessel::loss::cross_entropy") != std::string::npos);
    CHECK(msg.find("[0,3)") != std::string::npos);
    CHECK(msg.find("first is 3 at sample 1") != std::string::npos);
    CHECK_THROWS_AS((void)ce.value(z, labels_of(ts::shape{1, 2, 2}, {0, -5, 1, 2})), ts::error);
    msg = message_of([&] { (void)ce.value(z, labels_of(ts::shape{1, 4}, {0, 1, 1, 2})); });
    CHECK(msg.find("[1,4]") != std::string::npos);
    CHECK(msg.find("[1,3,2,2]") != std::string::npos);
    CHECK_THROWS_AS((void)ce.value(ts::tensor<double>(ts::shape{0, 3, 2, 2}), ts::tensor<label_t>(ts::shape{0, 2, 2})),
                    ts::error);
    CHECK_THROWS_AS((void)ce.value(ts::tensor<double>(ts::shape{3}), ts::tensor<label_t>(ts::shape{})), ts::error);
    msg = message_of([&] { (void)ts::loss::soft_cross_entropy{}.value(z, ts::tensor<double>(ts::shape{1, 3, 4})); });
    CHECK(msg.find("tessel::loss::soft_cross_entropy") != std::string::npos);
    msg = message_of([&] { (void)ts::loss::spatial_continuity{}.value(ts::tensor<double>(ts::shape{1, 3, 1, 5})); });
    CHECK(msg.find("tessel::loss::spatial_continuity") != std::string::npos);
    CHECK(msg.find("[1,3,1,5]") != std::string::npos);
    CHECK_THROWS_AS((void)ts::loss::spatial_continuity{}.value(ts::tensor<double>(ts::shape{3, 5, 5})), ts::error);
    msg = message_of([&] { (void)ts::loss::mse{}.value(z, ts::tensor<double>(ts::shape{2, 3})); });
    CHECK(msg.find("tessel::loss::mse") != std::string::npos);
    CHECK(msg.find("[2,3]") != std::string::npos);
    ts::tensor<double> g(ts::shape{5});
    CHECK_THROWS_AS((void)ts::loss::mse{}.value_and_grad(z, z, g, {.accumulate = true}), ts::error);
    // Every pixel ignored: 0 and a zero gradient (PyTorch would give NaN).
    ts::loss::cross_entropy ign{.ignore_index = 7};
    CHECK(ign.value_and_grad(z, labels_of(ts::shape{1, 2, 2}, {7, 7, 7, 7}), g) == 0.0);
    for (ts::index_t i = 0; i < g.numel(); ++i) CHECK(g[i] == 0.0);
}

template <class B>
void losses_backends_agree() {
    ts::rng gen(21);
    const ts::shape s{2, 7, 13, 11};
    ts::tensor<float, B> z(s), soft(s);
    ts::tensor<label_t, B> labels(ts::shape{2, 13, 11});
    for (ts::index_t i = 0; i < z.numel(); ++i) {
        z[i] = static_cast<float>(gen.uniform(-3, 3));
        soft[i] = static_cast<float>(gen.uniform(0, 1));
    }
    for (ts::index_t i = 0; i < labels.numel(); ++i) labels[i] = static_cast<label_t>(gen.below(8)) - 1;  // -1..6
    auto zs = z.template to<ts::cpu_serial>();
    auto softs = soft.template to<ts::cpu_serial>();
    auto labels_s = labels.template to<ts::cpu_serial>();
    ts::tensor<float, B> g;
    ts::tensor<float> gs;
    auto compare = [&](double v, double vs) {
        CHECK(v == doctest::Approx(vs).epsilon(1e-6));
        REQUIRE(g.numel() == gs.numel());
        for (ts::index_t i = 0; i < g.numel(); ++i) CHECK(g[i] == doctest::Approx(gs[i]).epsilon(1e-5));
    };
    const ts::loss::cross_entropy ce{.ignore_index = -1};
    compare(ce.value_and_grad(z, labels, g), ce.value_and_grad(zs, labels_s, gs));
    compare(ts::loss::soft_cross_entropy{}.value_and_grad(z, soft, g),
            ts::loss::soft_cross_entropy{}.value_and_grad(zs, softs, gs));
    compare(ts::loss::spatial_continuity{}.value_and_grad(z, g), ts::loss::spatial_continuity{}.value_and_grad(zs, gs));
    compare(ts::loss::mse{}.value_and_grad(z, soft, g), ts::loss::mse{}.value_and_grad(zs, softs, gs));
    ts::tensor<label_t, B> am;
    ts::tensor<label_t> ams;
    CHECK(ts::ops::argmax_channels(z, am) == ts::ops::argmax_channels(zs, ams));
    CHECK(am.to_vector() == ams.to_vector());
}
TESSEL_BACKEND_TEST("losses: cpu_omp agrees with cpu_serial", losses_backends_agree)

TEST_CASE("losses: bitwise deterministic on cpu_serial, direct and tape forms identical") {
    auto run = [] {
        ts::rng gen(8);
        ts::tensor<float> z(ts::shape{1, 9, 17, 19});
        ts::tensor<label_t> labels(ts::shape{1, 17, 19});
        for (ts::index_t i = 0; i < z.numel(); ++i) z[i] = static_cast<float>(gen.uniform(-3, 3));
        for (ts::index_t i = 0; i < labels.numel(); ++i) labels[i] = static_cast<label_t>(gen.below(9));
        ts::tensor<float> g;
        std::vector<double> out;
        out.push_back(ts::loss::cross_entropy{}.value_and_grad(z, labels, g));
        out.push_back(ts::loss::spatial_continuity{}.value_and_grad(z, g, {.weight = 3.0, .accumulate = true}));
        for (float v : g.to_vector()) out.push_back(v);
        ag::tape<ts::cpu_serial> t;
        auto zv = t.input(z);
        t.backward(ts::loss::cross_entropy{}(zv, labels) + 3.0 * ts::loss::spatial_continuity{}(zv));
        for (float v : zv.grad().to_vector()) out.push_back(v);
        return out;
    };
    const auto a = run(), b = run();
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
    // Tape gradient == fast-path gradient up to float rounding of the chained scale.
    const std::size_t n = (a.size() - 2) / 2;
    for (std::size_t i = 0; i < n; ++i) CHECK(a[2 + i] == doctest::Approx(a[2 + n + i]).epsilon(1e-5));
}
