#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "support/tape_check.hpp"
#include "support/backend_test.hpp"
#include "tessel/autograd/concepts.hpp"
#include "tessel/nn/relu.hpp"
#include "tessel/nn/sequential.hpp"

namespace ts = tessel;
namespace ag = tessel::autograd;
using ts::testing::check_tape_gradient;
using ts::testing::dtape;
using ts::testing::dvar;
using ts::testing::random_tensor;

namespace {

// A test-only layer with parameters: y[n,c,...] = w[c] x[n,c,...] + b[c].
struct channel_affine {
    struct config {
        ts::index_t channels = 1;
    };
    template <ts::Backend B, class T = float>
    class bind {
    public:
        bind(const config& c, ts::rng& gen) : m_w(ts::shape{c.channels}), m_b(ts::shape{c.channels}) {
            for (ts::index_t i = 0; i < c.channels; ++i) {
                m_w[i] = static_cast<T>(gen.uniform(0.5, 1.5));
                m_b[i] = static_cast<T>(gen.uniform(-0.5, 0.5));
            }
            m_dw = m_w;
            m_db = m_b;
        }
        const ts::tensor<T, B>& forward(ts::nn::context<B>&, const ts::tensor<T, B>& x) {
            m_x = &x;
            m_y.resize(x.shape());
            const ts::index_t C = x.dim(1), inner = x.numel() / (x.dim(0) * C);
            for (ts::index_t i = 0; i < x.numel(); ++i) {
                const ts::index_t c = (i / inner) % C;
                m_y[i] = m_w[c] * x[i] + m_b[c];
            }
            return m_y;
        }
        const ts::tensor<T, B>& backward(ts::nn::context<B>&, const ts::tensor<T, B>& dy) {
            m_dx.resize(dy.shape());
            m_dw.fill(T(0));
            m_db.fill(T(0));
            const ts::index_t C = dy.dim(1), inner = dy.numel() / (dy.dim(0) * C);
            for (ts::index_t i = 0; i < dy.numel(); ++i) {
                const ts::index_t c = (i / inner) % C;
                m_dx[i] = m_w[c] * dy[i];
                m_dw[c] += dy[i] * (*m_x)[i];
                m_db[c] += dy[i];
            }
            return m_dx;
        }
        ts::nn::parameter_list<T, B> parameters() { return {{&m_w, &m_dw, "weight"}, {&m_b, &m_db, "bias"}}; }

    private:
        ts::tensor<T, B> m_w, m_b, m_dw, m_db, m_y, m_dx;
        const ts::tensor<T, B>* m_x = nullptr;
    };
};
static_assert(ts::nn::Layer<channel_affine::bind<ts::cpu_serial, double>, ts::cpu_serial, double>);

// libtorch's return form, one input.
struct cube : ag::function<cube> {
    static constexpr std::string_view name = "test::cube";
    template <class B, class T>
    static ts::tensor<T, B> forward(ag::function_context<B, T>& ctx, const ts::tensor<T, B>& x) {
        ctx.save_for_backward(x);
        ts::tensor<T, B> y(x.shape());
        for (ts::index_t i = 0; i < x.numel(); ++i) y[i] = x[i] * x[i] * x[i];
        return y;
    }
    template <class B, class T>
    static ts::tensor<T, B> backward(ag::function_context<B, T>& ctx, const ts::tensor<T, B>& dy) {
        const auto& x = ctx.saved(0);
        ts::tensor<T, B> dx(x.shape());
        for (ts::index_t i = 0; i < x.numel(); ++i) dx[i] = 3 * x[i] * x[i] * dy[i];
        return dx;
    }
};

// Return form with two inputs and a non-var argument: y = alpha * a * exp(b); the gradient for b
// is left undefined when asked to, to exercise "no gradient" returns.
struct scaled_exp_product : ag::function<scaled_exp_product> {
    template <class B, class T>
    static ts::tensor<T, B> forward(ag::function_context<B, T>& ctx, const ts::tensor<T, B>& a,
                                    const ts::tensor<T, B>& b, double alpha) {
        ctx.save_scalar(alpha);
        ts::tensor<T, B> y(a.shape());
        for (ts::index_t i = 0; i < a.numel(); ++i) y[i] = static_cast<T>(alpha) * a[i] * std::exp(b[i]);
        return y;
    }
    template <class B, class T>
    static std::array<ts::tensor<T, B>, 2> backward(ag::function_context<B, T>& ctx, const ts::tensor<T, B>& dy) {
        const auto& a = ctx.input(0);
        const auto& b = ctx.input(1);
        const T alpha = static_cast<T>(ctx.scalar(0));
        std::array<ts::tensor<T, B>, 2> g{ts::tensor<T, B>(a.shape()), ts::tensor<T, B>()};
        for (ts::index_t i = 0; i < a.numel(); ++i) g[0][i] = alpha * std::exp(b[i]) * dy[i];
        if (ctx.needs_input_grad(1)) {
            g[1] = ts::tensor<T, B>(b.shape());
            for (ts::index_t i = 0; i < a.numel(); ++i) g[1][i] = ctx.output()[i] * dy[i];
        }
        return g;
    }
};
static_assert(ag::DifferentiableFunction<cube> && ag::DifferentiableFunction<ag::matmul_op>);

}  // namespace

TEST_CASE("tape: hand-computed forward and backward of a small DAG") {
    // L = sum(a*b + a) with a = [1,2,3], b = [4,5,6]: L = 4+10+18 + 6 = 38; dL/da = b+1, dL/db = a.
    dtape t;
    ts::tensor<double> a(ts::shape{3}, {1, 2, 3}), b(ts::shape{3}, {4, 5, 6});
    auto va = t.input(a);
    auto vb = t.input(b);
    auto l = ag::sum(va * vb + va);
    CHECK(l.value().rank() == 0);
    CHECK(l.value()[0] == 38.0);
    t.backward(l);
    CHECK(va.grad().to_vector() == std::vector<double>{5, 6, 7});
    CHECK(vb.grad().to_vector() == std::vector<double>{1, 2, 3});
    // Constants take part in the forward but get no gradient.
    t.reset();
    auto ca = t.constant(a);
    auto vb2 = t.input(b);
    auto l2 = ag::mean(ag::scale(ca * vb2, 3.0) - vb2);  // mean(3ab - b) = (8 + 25 + 48)/3 = 27
    CHECK(l2.value()[0] == doctest::Approx(27.0));
    t.backward(l2);
    const auto g2 = vb2.grad();  // (3a - 1)/3
    CHECK(g2[0] == doctest::Approx(2.0 / 3));
    CHECK(g2[1] == doctest::Approx(5.0 / 3));
    CHECK(g2[2] == doctest::Approx(8.0 / 3));
    CHECK_FALSE(ca.requires_grad());
    CHECK_THROWS_AS((void)ca.grad(), ts::error);
}

TEST_CASE("tape: gradient checks of every op") {
    ts::rng gen(7);
    auto a = random_tensor(ts::shape{3, 4}, gen);
    auto b = random_tensor(ts::shape{3, 4}, gen);
    auto r = random_tensor(ts::shape{3, 4}, gen);
    auto weighted = [&](dtape& t, dvar y) { return ag::sum(y * t.constant(r)); };
    auto check = [&](const char* what, auto build, std::vector<ts::tensor<double>*> in) {
        auto res = check_tape_gradient(build, in);
        INFO(what << ": " << res.report);
        CHECK(res.passed);
        CHECK(res.coords_checked > 0);
    };
    check("add", [&](dtape& t, std::vector<dvar>& v) { return weighted(t, v[0] + v[1]); }, {&a, &b});
    check("sub", [&](dtape& t, std::vector<dvar>& v) { return weighted(t, v[0] - v[1]); }, {&a, &b});
    check("mul", [&](dtape& t, std::vector<dvar>& v) { return weighted(t, v[0] * v[1]); }, {&a, &b});
    check("scale", [&](dtape& t, std::vector<dvar>& v) { return weighted(t, -2.5 * v[0]); }, {&a});
    check("sum", [&](dtape&, std::vector<dvar>& v) { return ag::sum(v[0]); }, {&a});
    check("mean", [&](dtape&, std::vector<dvar>& v) { return ag::mean(v[0]); }, {&a});
    check("tanh", [&](dtape& t, std::vector<dvar>& v) { return weighted(t, ag::tanh(v[0])); }, {&a});
    check("relu", [&](dtape& t, std::vector<dvar>& v) { return weighted(t, ag::relu(v[0])); }, {&a});
    check("reshape", [&](dtape& t, std::vector<dvar>& v) {
        return ag::sum(ag::reshape(v[0], ts::shape{4, 3}) * ag::reshape(t.constant(r), ts::shape{4, 3}));
    }, {&a});
    auto m = random_tensor(ts::shape{4, 5}, gen);
    auto r2 = random_tensor(ts::shape{3, 5}, gen);
    check("matmul", [&](dtape& t, std::vector<dvar>& v) { return ag::sum(ag::matmul(v[0], v[1]) * t.constant(r2)); },
          {&a, &m});
    check("custom cube", [&](dtape& t, std::vector<dvar>& v) { return weighted(t, cube::apply(v[0])); }, {&a});
    check("custom two-input", [&](dtape& t, std::vector<dvar>& v) {
        return weighted(t, scaled_exp_product::apply(v[0], v[1], 0.7));
    }, {&a, &b});
    // A DAG where values are reused: x feeds three ops, y two.
    check("dag", [&](dtape&, std::vector<dvar>& v) {
        auto x = v[0];
        auto y = ag::tanh(x * v[1]);
        return ag::mean(y * x + ag::relu(y - x)) + ag::sum(cube::apply(y));
    }, {&a, &b});
}

TEST_CASE("tape: matmul by hand") {
    dtape t;
    ts::tensor<double> a(ts::shape{2, 3}, {1, 2, 3, 4, 5, 6}), b(ts::shape{3, 2}, {7, 8, 9, 10, 11, 12});
    auto y = ag::matmul(t.input(a), t.input(b));
    CHECK(y.value().shape() == ts::shape{2, 2});
    CHECK(y.value().to_vector() == std::vector<double>{58, 64, 139, 154});
}

TEST_CASE("tape: custom function with an undefined gradient leaves that input's gradient at zero") {
    dtape t;
    ts::tensor<double> a(ts::shape{2}, {1, 2}), b(ts::shape{2}, {0, 0});
    auto va = t.input(a);
    auto cb = t.constant(b);
    auto l = ag::sum(scaled_exp_product::apply(va, cb, 2.0));
    CHECK(l.value()[0] == doctest::Approx(6.0));
    t.backward(l);
    CHECK(va.grad().to_vector() == std::vector<double>{2, 2});
}

TEST_CASE("tape: a layer and a sequential are single nodes; parameters get their gradients") {
    using net_t = ts::nn::sequential<channel_affine, ts::nn::relu, channel_affine>;
    ts::rng init(3);
    net_t::bind<ts::cpu_serial, double> net({{.channels = 2}, {}, {.channels = 2}}, init);
    ts::nn::context<ts::cpu_serial> ctx;
    ts::rng gen(5);
    auto x = random_tensor(ts::shape{2, 2, 3, 3}, gen);
    auto target = random_tensor(ts::shape{2, 2, 3, 3}, gen);
    dtape t;
    auto build = [&](const ts::tensor<double>& in) {
        t.reset();
        auto xv = t.input(in);
        auto y = t.layer(net, ctx, xv);
        auto d = y - t.constant(target);
        return std::pair{xv, ag::mean(d * d) + ag::sum(ag::tanh(y))};  // y feeds two branches
    };
    auto [xv, l] = build(x);
    CHECK(t.num_records() == 7);  // layer, sub, mul, mean, tanh, sum, add
    t.backward(l);
    const ts::tensor<double> dx = xv.grad();
    auto params = net.parameters();
    REQUIRE(params.size() == 4);
    std::vector<ts::tensor<double>> pgrads;
    for (auto& p : params) pgrads.push_back(*p.grad);
    auto f = [&]() { return build(x).second.value()[0]; };
    auto rin = ag::check_scalar_gradient(f, x, dx);
    INFO(rin.report);
    CHECK(rin.passed);
    for (std::size_t k = 0; k < params.size(); ++k) {
        auto rp = ag::check_scalar_gradient(f, *params[k].value, pgrads[k]);
        INFO("parameter " << k << ": " << rp.report);
        CHECK(rp.passed);
    }
}

TEST_CASE("tape: parameter leaves and layers off the loss path get zero gradients") {
    ts::rng init(1);
    channel_affine::bind<ts::cpu_serial, double> used({.channels = 1}, init), unused({.channels = 1}, init);
    ts::nn::context<ts::cpu_serial> ctx;
    ts::tensor<double> x(ts::shape{1, 1, 2}, {1.0, 2.0});
    ts::tensor<double> w(ts::shape{2, 1}, {3.0, 4.0}), dw(ts::shape{2, 1}, 99.0), w2(ts::shape{1}, {1.0}),
        dw2(ts::shape{1}, 99.0);
    dtape t;
    auto xv = t.constant(x);
    auto y = t.layer(used, ctx, xv);
    (void)t.layer(unused, ctx, xv);
    auto pw = t.parameter({&w, &dw, "w"});
    (void)t.parameter({&w2, &dw2, "w2"});
    auto l = ag::sum(ag::matmul(ag::reshape(y, ts::shape{1, 2}), pw));
    t.backward(l);
    auto pu = unused.parameters();
    CHECK((*pu[0].grad)[0] == 0.0);
    CHECK((*pu[1].grad)[0] == 0.0);
    CHECK(dw2[0] == 0.0);
    // dL/dw = y^T.
    CHECK(dw[0] == doctest::Approx(y.value()[0]));
    CHECK(dw[1] == doctest::Approx(y.value()[1]));
}

TEST_CASE("tape: storage is recycled, so a repeated recording stops allocating") {
    dtape t;
    ts::rng gen(2);
    auto a = random_tensor(ts::shape{8, 8}, gen);
    auto run = [&] {
        t.reset();
        auto va = t.input(a);
        auto h = ag::tanh(ag::matmul(va, va));
        auto l = ag::mean(h * h);
        t.backward(l);
        return std::pair{h.value().data(), va.grad().data()};
    };
    const auto first = run();
    const std::size_t cap = t.capacity();
    for (int i = 0; i < 5; ++i) {
        const auto again = run();
        CHECK(again.first == first.first);
        CHECK(again.second == first.second);
    }
    CHECK(t.capacity() == cap);
}

TEST_CASE("tape: misuse throws tessel::error naming the op and the shapes") {
    dtape t;
    ts::tensor<double> a(ts::shape{2, 3}), b(ts::shape{3, 2});
    auto va = t.input(a);
    auto vb = t.input(b);
    try {
        (void)(va + vb);
        FAIL("expected a throw");
    } catch (const ts::error& e) {
        const std::string msg = e.what();
        CHECK(msg.find("tessel::autograd::add") != std::string::npos);
        CHECK(msg.find("[2,3]") != std::string::npos);
        CHECK(msg.find("[3,2]") != std::string::npos);
    }
    CHECK_THROWS_AS((void)ag::matmul(va, va), ts::error);
    CHECK_THROWS_AS((void)ag::reshape(va, ts::shape{4}), ts::error);
    CHECK_THROWS_AS(t.backward(va), ts::error);  // not a scalar
    auto c = ag::sum(t.constant(a));
    CHECK_THROWS_AS(t.backward(c), ts::error);  // depends on nothing that needs a gradient
    dtape other;
    auto vo = other.input(a);
    CHECK_THROWS_AS((void)(va * vo), ts::error);  // different tapes
    t.reset();
    CHECK_THROWS_AS((void)va.value(), ts::error);  // stale
    CHECK_THROWS_AS((void)ag::sum(ag::var<ts::cpu_serial, double>{}), ts::error);
}

template <class B>
void tape_backends_agree() {
    ts::rng gen(11);
    ts::tensor<float, B> a(ts::shape{33, 17}), b(ts::shape{17, 9});
    for (ts::index_t i = 0; i < a.numel(); ++i) a[i] = static_cast<float>(gen.uniform(-1, 1));
    for (ts::index_t i = 0; i < b.numel(); ++i) b[i] = static_cast<float>(gen.uniform(-1, 1));
    ag::tape<B> t;
    auto va = t.input(a);
    auto vb = t.input(b);
    auto h = ag::relu(ag::matmul(va, vb));
    auto l = ag::mean(ag::tanh(h) * h) + 0.5 * ag::sum(vb * vb);
    t.backward(l);
    // Reference on cpu_serial, the bitwise reference backend.
    auto as = a.template to<ts::cpu_serial>();
    auto bs = b.template to<ts::cpu_serial>();
    ag::tape<ts::cpu_serial> ts_;
    auto sa = ts_.input(as);
    auto sb = ts_.input(bs);
    auto sh = ag::relu(ag::matmul(sa, sb));
    auto sl = ag::mean(ag::tanh(sh) * sh) + 0.5 * ag::sum(sb * sb);
    ts_.backward(sl);
    CHECK(l.value()[0] == doctest::Approx(sl.value()[0]).epsilon(1e-6));
    for (ts::index_t i = 0; i < a.numel(); ++i) CHECK(va.grad()[i] == doctest::Approx(sa.grad()[i]).epsilon(1e-5));
    for (ts::index_t i = 0; i < b.numel(); ++i) CHECK(vb.grad()[i] == doctest::Approx(sb.grad()[i]).epsilon(1e-5));
}
TESSEL_BACKEND_TEST("tape: cpu_omp agrees with cpu_serial", tape_backends_agree)

TEST_CASE("tape: bitwise deterministic on cpu_serial") {
    auto run = [] {
        ts::rng gen(4);
        ts::tensor<float> a(ts::shape{64, 32});
        for (ts::index_t i = 0; i < a.numel(); ++i) a[i] = static_cast<float>(gen.uniform(-1, 1));
        ag::tape<ts::cpu_serial> t;
        auto va = t.input(a);
        auto l = ag::mean(ag::tanh(ag::matmul(va, ag::reshape(va, ts::shape{32, 64}))));
        t.backward(l);
        std::vector<float> out = va.grad().to_vector();
        out.push_back(l.value()[0]);
        return out;
    };
    const auto x = run(), y = run();
    CHECK(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0);
}
