#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "support/backend_test.hpp"
#include "tessel/autograd/functions.hpp"
#include "tessel/loss/mse.hpp"
#include "tessel/optim/adam.hpp"
#include "tessel/optim/sgd.hpp"

namespace ts = tessel;
namespace opt = tessel::optim;

namespace {
// The inputs of tests/unit/optim/reference_values.py: p0 and the gradient of each of 3 steps.
const std::vector<double> p0 = {1.0, -2.0, 0.5};
const std::vector<std::vector<double>> grads = {{0.1, -0.2, 0.3}, {-0.5, 0.4, 0.0}, {0.25, 0.25, -1.0}};

template <class Spec>
std::vector<double> run3(const typename Spec::config& cfg) {
    ts::tensor<double> w(ts::shape{3}, std::span<const double>(p0)), g(ts::shape{3});
    typename Spec::template bind<ts::cpu_serial, double> o({{&w, &g, "w"}}, cfg);
    for (const auto& step : grads) {
        for (int i = 0; i < 3; ++i) g[i] = step[static_cast<std::size_t>(i)];
        o.step();
    }
    CHECK(o.steps() == 3);
    return w.to_vector();
}
void check_close(const std::vector<double>& got, const std::vector<double>& want) {
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-12));
}
}  // namespace

TEST_CASE("sgd: three steps against PyTorch-semantics references") {
    check_close(run3<opt::sgd>({.lr = 0.1}), {1.0150000000000001, -2.045, 0.57});
    check_close(run3<opt::sgd>({.lr = 0.1, .momentum = 0.9}), {1.0429, -2.0467999999999997, 0.5186999999999999});
    check_close(run3<opt::sgd>({.lr = 0.1, .momentum = 0.9, .dampening = 0.5}),
                {1.0079, -1.9963, 0.46869999999999995});
    check_close(run3<opt::sgd>({.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1, .nesterov = true}),
                {0.973721882, -1.929509764, 0.5503457935});
}

TEST_CASE("adam and adamw: three steps against PyTorch-semantics references") {
    check_close(run3<opt::adam>({.lr = 0.1}), {0.9732272004680534, -1.9924941772769538, 0.3793167483398872});
    check_close(run3<opt::adam>({.lr = 0.1, .weight_decay = 0.1}),
                {0.922222155185864, -1.8651153567304266, 0.3651826369092443});
    CHECK(opt::adamw::config{}.weight_decay == 0.01);
    check_close(run3<opt::adamw>({.lr = 0.1}), {0.9703702640315113, -1.9866634649154125, 0.3780851536554781});
    check_close(run3<opt::adamw>({.lr = 0.1, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-3, .weight_decay = 0.5}),
                {0.8398950861100313, -1.7258253433846753, 0.3337748478585582});
}

TEST_CASE("optimizers: first Adam step moves every weight by lr against its gradient's sign") {
    // With bias correction, step 1 is p -= lr * g / (|g| + eps): a property independent of g's size.
    ts::tensor<double> w(ts::shape{4}, {0.0, 0.0, 0.0, 0.0}), g(ts::shape{4}, {1e-3, -5.0, 200.0, -0.5});
    opt::adam::bind<ts::cpu_serial, double> o({{&w, &g, "w"}}, {.lr = 0.01, .eps = 0});
    o.step();
    check_close(w.to_vector(), {-0.01, 0.01, -0.01, 0.01});
}

TEST_CASE("optimizers: SGD with momentum minimises an MSE through the tape") {
    ts::tensor<double> w(ts::shape{2, 1}, {0.0, 0.0}), dw(ts::shape{2, 1});
    ts::tensor<double> x(ts::shape{4, 2}, {1, 0, 0, 1, 1, 1, 2, -1}), y(ts::shape{4, 1}, {3, -2, 1, 8});  // y = x [3,-2]
    opt::sgd::bind<ts::cpu_serial, double> o({{&w, &dw, "w"}}, {.lr = 0.05, .momentum = 0.9});
    ts::autograd::tape<ts::cpu_serial, double> t;
    double first = 0, last = 0;
    for (int it = 0; it < 300; ++it) {
        t.reset();
        auto l = ts::loss::mse{}(ts::autograd::matmul(t.constant(x), t.parameter({&w, &dw, "w"})), y);
        if (it == 0) first = l.value()[0];
        last = l.value()[0];
        t.backward(l);
        o.step();
    }
    CHECK(first > 1.0);
    CHECK(last < 1e-10);
    CHECK(w[0] == doctest::Approx(3.0).epsilon(1e-5));
    CHECK(w[1] == doctest::Approx(-2.0).epsilon(1e-5));
}

TEST_CASE("optimizers: settings, learning rate changes, zero_grad") {
    ts::tensor<double> w(ts::shape{2}, {1.0, 1.0}), g(ts::shape{2}, {1.0, -1.0});
    ts::nn::parameter_list<double, ts::cpu_serial> params{{&w, &g, "w"}};
    opt::sgd::bind<ts::cpu_serial, double> o(params, {.lr = 0.5});
    o.set_learning_rate(0.25);
    CHECK(o.learning_rate() == 0.25);
    o.step();
    CHECK(w.to_vector() == std::vector<double>{0.75, 1.25});
    o.zero_grad();
    CHECK(g.to_vector() == std::vector<double>{0.0, 0.0});
    auto msg = [](auto&& f) {
        try {
            f();
        } catch (const ts::error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK(msg([&] { opt::sgd::bind<ts::cpu_serial, double>(params, {.lr = -1}); }).find("tessel::optim::sgd") == 0);
    CHECK_THROWS_AS((opt::sgd::bind<ts::cpu_serial, double>(params, {.lr = 0.1, .nesterov = true})), ts::error);
    CHECK_THROWS_AS((opt::adam::bind<ts::cpu_serial, double>(params, {.beta1 = 1.0})), ts::error);
    CHECK_THROWS_AS((opt::adamw::bind<ts::cpu_serial, double>(params, {.eps = -1})), ts::error);
    CHECK_THROWS_AS((opt::adam::bind<ts::cpu_serial, double>({{&w, nullptr, "w"}}, {})), ts::error);
    CHECK_THROWS_AS(o.set_learning_rate(-0.1), ts::error);
    // A gradient of the wrong shape names the parameter and both shapes.
    opt::adam::bind<ts::cpu_serial, double> a(params, {});
    g = ts::tensor<double>(ts::shape{3});
    const std::string m = msg([&] { a.step(); });
    CHECK(m.find("tessel::optim::adam") != std::string::npos);
    CHECK(m.find("'w'") != std::string::npos);
    CHECK(m.find("[2]") != std::string::npos);
    CHECK(m.find("[3]") != std::string::npos);
}

template <class B>
void optimizers_backends_agree() {
    ts::rng gen(5);
    const ts::shape s{37, 29};
    ts::tensor<float, B> w(s), g(s);
    for (ts::index_t i = 0; i < w.numel(); ++i) w[i] = static_cast<float>(gen.uniform(-1, 1));
    auto ws = w.template to<ts::cpu_serial>();
    ts::tensor<float> gs(s);
    opt::adamw::bind<B> a({{&w, &g, "w"}}, {.lr = 0.01});
    opt::adamw::bind<ts::cpu_serial> as({{&ws, &gs, "w"}}, {.lr = 0.01});
    opt::sgd::bind<B> sg({{&w, &g, "w"}}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-3});
    opt::sgd::bind<ts::cpu_serial> sgs({{&ws, &gs, "w"}}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-3});
    for (int step = 0; step < 4; ++step) {
        for (ts::index_t i = 0; i < g.numel(); ++i) gs[i] = g[i] = static_cast<float>(gen.uniform(-1, 1));
        a.step();
        as.step();
        sg.step();
        sgs.step();
    }
    // Elementwise updates: the same operations in the same order per element, so bitwise equal.
    CHECK(w.to_vector() == ws.to_vector());
}
TESSEL_BACKEND_TEST("optimizers: cpu_omp agrees with cpu_serial", optimizers_backends_agree)
