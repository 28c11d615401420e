// nn/gcn_conv.hpp: GCNConv against PyTorch Geometric's values (gcn_reference.py, beside this
// file), dense and CSR; backward against finite differences at random parameters.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "support/backend_test.hpp"
#include "tessel/autograd/check_gradients.hpp"
#include "tessel/nn/activation.hpp"
#include "tessel/nn/gcn_conv.hpp"
#include "tessel/nn/repeat.hpp"
#include "tessel/nn/sequential.hpp"

namespace ts = tessel;

namespace {

constexpr ts::index_t N = 5;
struct arc {
    ts::index_t j, i;
    double w;
};
const arc arcs[] = {{0, 1, 1.0}, {1, 0, 0.5}, {1, 2, 2.0}, {2, 2, 2.5}, {3, 1, 1.5}, {4, 3, 0.25}, {2, 4, 1.0}, {0, 4, 3.0}};
const double x_in[] = {0.5, -1.0, 2.0, 1.5, 0.25, -0.5, -2.0, 1.0, 0.75, 0.0, 0.5, 1.0, 1.0, -1.5, 0.25};
const double w_in[] = {0.3, -0.2, 0.5, -0.4, 0.1, 0.25};
const double b_in[] = {0.125, -0.0625};
// torch_geometric 2.3.1 GCNConv(3, 2) on the graph above (gcn_reference.py)
const double expected[] = {1.057732683535399,  -0.08191918983186139, 1.0439003127345767, 0.03992830577458775,
                           -0.03551821650926576, 0.18889982519138793, 0.5175000000000001, 0.12874999999999998,
                           1.6592530382258446, 0.28835415336427395};

template <class T, class B>
ts::tensor<T, B> dense_adjacency() {
    std::vector<T> a(static_cast<std::size_t>(N * N), T(0));
    for (const auto& e : arcs) a[static_cast<std::size_t>(e.j * N + e.i)] = static_cast<T>(e.w);
    ts::tensor<T, B> t;
    t.assign(ts::shape{N, N}, a.begin(), a.end());
    return t;
}
ts::csr_graph<double> csr_adjacency() {
    std::vector<ts::weighted_edge<double>> e;
    for (const auto& a : arcs) e.push_back({a.j, a.i, a.w});
    return ts::csr_graph<double>::from_arcs(N, e);
}

template <class B>
void gcn_matches_pyg() {
    for (bool dense : {true, false}) {
        const auto g = dense ? ts::nn::gcn_graph<double, B>::dense(dense_adjacency<double, B>())
                             : ts::nn::gcn_graph<double, B>::csr(csr_adjacency());
        CHECK(g.is_dense() == dense);
        ts::rng init(1);
        ts::nn::gcn_conv::bind<B, double> conv({.in_features = 3, .out_features = 2}, init);
        CHECK(conv.bias()[0] == 0.0);  // PyG's reset_parameters: zeros
        conv.weight().assign(ts::shape{2, 3}, std::begin(w_in), std::end(w_in));
        conv.bias().assign(ts::shape{2}, std::begin(b_in), std::end(b_in));
        conv.set_graph(&g);
        ts::tensor<double, B> x;
        x.assign(ts::shape{N, 3}, std::begin(x_in), std::end(x_in));
        ts::nn::context<B> ctx;
        const auto& y = conv.forward(ctx, x);
        REQUIRE(y.shape() == ts::shape{N, 2});
        for (ts::index_t k = 0; k < 2 * N; ++k) CHECK(y[k] == doctest::Approx(expected[k]).epsilon(1e-12));
    }
}

template <class B>
void gcn_gradients() {
    for (bool dense : {true, false}) {
        const auto g = dense ? ts::nn::gcn_graph<double, B>::dense(dense_adjacency<double, B>())
                             : ts::nn::gcn_graph<double, B>::csr(csr_adjacency());
        ts::rng init(3);
        ts::nn::gcn_conv::bind<B, double> conv({.in_features = 3, .out_features = 4}, init);
        for (auto& p : conv.parameters())  // move the zero bias away from its initial value
            for (ts::index_t i = 0; i < p.value->numel(); ++i) (*p.value)[i] += init.uniform(-0.5, 0.5);
        conv.set_graph(&g);
        ts::nn::context<B> ctx;
        ts::tensor<double, B> x(ts::shape{N, 3}), r(ts::shape{N, 4});
        for (ts::index_t i = 0; i < x.numel(); ++i) x[i] = init.uniform(-1, 1);
        for (ts::index_t i = 0; i < r.numel(); ++i) r[i] = init.uniform(-1, 1);
        auto loss = [&] {
            const auto& y = conv.forward(ctx, x);
            double s = 0;
            for (ts::index_t i = 0; i < y.numel(); ++i) s += y[i] * r[i];
            return s;
        };
        loss();
        const ts::tensor<double, B> dx = conv.backward(ctx, r);
        std::vector<ts::tensor<double, B>> grads;
        for (auto& p : conv.parameters()) grads.push_back(*p.grad);
        auto res = ts::autograd::check_scalar_gradient(loss, x, dx);
        CHECK_MESSAGE(res.passed, res.report);
        auto params = conv.parameters();
        for (std::size_t k = 0; k < params.size(); ++k) {
            res = ts::autograd::check_scalar_gradient(loss, *params[k].value, grads[k]);
            CHECK_MESSAGE(res.passed, params[k].name, ": ", res.report);
        }
    }
}

}  // namespace

TESSEL_BACKEND_TEST("gcn_conv: equals torch_geometric's GCNConv (dense and CSR, remaining self-loops)", gcn_matches_pyg)
TESSEL_BACKEND_TEST("gcn_conv: backward matches finite differences (input, weight, bias; dense and CSR)", gcn_gradients)

TEST_CASE("gcn_conv: set_graph reaches every conv of a network; errors without a graph or on a size mismatch") {
    using host_graph = ts::nn::gcn_graph<double, ts::cpu_serial>;
    using net = ts::nn::sequential<ts::nn::gcn_conv, ts::nn::activation,
                                   ts::nn::repeat<ts::nn::sequential<ts::nn::gcn_conv, ts::nn::activation>>>;
    ts::rng init(2);
    net::bind<ts::cpu_serial, double> n(
        {{.in_features = 3, .out_features = 4}, {}, {.count = 2, .block = {{.in_features = 4, .out_features = 4}, {}}}}, init);
    ts::nn::context<ts::cpu_serial> ctx;
    ts::tensor<double> x(ts::shape{N, 3}, 0.5);
    CHECK_THROWS_AS(n.forward(ctx, x), ts::error);
    const auto g = ts::nn::gcn_graph<double, ts::cpu_serial>::dense(dense_adjacency<double, ts::cpu_serial>());
    ts::nn::set_graph(n, &g);
    CHECK(n.forward(ctx, x).shape() == ts::shape{N, 4});
    ts::tensor<double> wrong(ts::shape{N + 1, 3}, 0.5);
    CHECK_THROWS_AS(n.forward(ctx, wrong), ts::error);
    CHECK_THROWS_AS(host_graph::dense(ts::tensor<double>(ts::shape{2, 3})), ts::error);
    ts::tensor<double> nan_a(ts::shape{2, 2}, 1.0);
    nan_a[1] = std::nan("");
    CHECK_THROWS_AS(host_graph::dense(nan_a), ts::error);
}

TEST_CASE("activation: gelu, elu and the run-time choice match their formulas and finite differences") {
    for (auto kind : {ts::nn::activation_kind::selu, ts::nn::activation_kind::silu, ts::nn::activation_kind::gelu,
                      ts::nn::activation_kind::relu, ts::nn::activation_kind::elu, ts::nn::activation_kind::tanh}) {
        const auto r = ts::autograd::check_gradients<ts::nn::activation>({.kind = kind}, ts::shape{3, 7});
        CHECK_MESSAGE(r.passed, static_cast<int>(kind), ": ", r.report);
    }
    CHECK(ts::autograd::check_gradients<ts::nn::gelu>({}, ts::shape{2, 9}).passed);
    CHECK(ts::autograd::check_gradients<ts::nn::elu>({.alpha = 0.7}, ts::shape{2, 9}).passed);
    ts::rng init(0);
    ts::nn::context<ts::cpu_serial> ctx;
    ts::nn::gelu::bind<ts::cpu_serial, double> g({}, init);
    ts::tensor<double> x(ts::shape{4}, {-3.0, -0.5, 0.0, 1.25});
    const auto& y = g.forward(ctx, x);
    for (ts::index_t i = 0; i < 4; ++i)
        CHECK(y[i] == doctest::Approx(0.5 * x[i] * (1 + std::erf(x[i] / std::sqrt(2.0)))).epsilon(1e-15));
    ts::nn::activation::bind<ts::cpu_serial, double> relu({.kind = ts::nn::activation_kind::relu}, init);
    relu.forward(ctx, x);
    const auto& d = relu.backward(ctx, ts::tensor<double>(ts::shape{4}, 1.0));
    CHECK(d[2] == 0.0);  // PyTorch: relu'(0) = 0
    CHECK(d[3] == 1.0);
}
