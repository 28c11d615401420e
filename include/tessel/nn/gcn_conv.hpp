// tessel/nn/gcn_conv.hpp: graph convolution of Kipf & Welling (PyTorch Geometric's GCNConv).
//
// gcn_graph<T, B> is the propagation operator of PyG's gcn_norm (torch_geometric 2.0.4,
// add_self_loops=True, normalize=True, flow source_to_target): every node without a self-loop gets
// one of weight 1 (existing self-loop weights are kept: add_remaining_self_loops), deg_i is the
// weighted in-degree (the sum over arcs j -> i), and
//     out_i = sum over arcs j -> i of  deg_j^-1/2 * w_ji * deg_i^-1/2 * x_j,
// i.e. Y = D^-1/2 A^T D^-1/2 X with D = diag of A's column sums (= D^-1/2 A D^-1/2 X for the
// symmetric similarity graphs of UnSegGNet, METHODS.md §6.3). It is held either dense (an N x N
// matrix; one GEMM per product, the form METHODS.md asks for at 3,025 nodes) or as CSR rows
// (for sparse graphs, from graph::csr_graph), and applies itself or its transpose (backward).
//
// gcn_conv is the layer: Y = P (X W^T) + b, W [out, in] Glorot-uniform, b = 0 (PyG's
// reset_parameters), trainable with backward. The graph is not a parameter: it is bound with
// set_graph before forward (nn::set_graph walks sequential / repeat containers), and it must
// outlive the layer's use.
#pragma once
#include <cmath>
#include <memory>
#include <tuple>
#include <vector>

#include "tessel/backend/parallel.hpp"
#include "tessel/graph/csr_graph.hpp"
#include "tessel/nn/concepts.hpp"
#include "tessel/nn/init.hpp"
#include "tessel/nn/linear.hpp"
#include "tessel/ops/gemm.hpp"

namespace tessel::nn {

namespace detail {
template <class T>
struct csr_spmm_fn {  // Y[i, :] = sum_k val[k] X[col[k], :] over row i, one work item per (i, f)
    const index_t* off;
    const index_t* col;
    const T* val;
    const T* x;
    T* y;
    index_t F;
    TESSEL_HD void operator()(index_t i) const {
        const index_t r = i / F, f = i % F;
        T s = T(0);
        for (index_t k = off[r]; k < off[r + 1]; ++k) s += val[k] * x[col[k] * F + f];
        y[i] = s;
    }
};
}  // namespace detail

/// The normalised propagation operator P of a GCN (see the top of the file).
template <class T, Backend B>
class gcn_graph {
public:
    gcn_graph() = default;

    /// From a dense weighted adjacency A [N, N] (A[j, i] = weight of arc j -> i; 0 = no arc).
    static gcn_graph dense(const tensor<T, B>& a) {
        constexpr auto where = "tessel::nn::gcn_graph::dense";
        expects(a.rank() == 2 && a.dim(0) == a.dim(1) && a.dim(0) > 0, where, "expects a square [N, N] adjacency, got ",
                a.shape().str());
        const index_t N = a.dim(0);
        std::vector<T> h = a.to_vector();
        for (index_t i = 0; i < N; ++i) {
            T& d = h[static_cast<std::size_t>(i * N + i)];
            if (d == T(0)) d = T(1);  // add_remaining_self_loops, fill value 1
        }
        std::vector<double> deg(static_cast<std::size_t>(N), 0.0);
        for (index_t j = 0; j < N; ++j)
            for (index_t i = 0; i < N; ++i) {
                const T w = h[static_cast<std::size_t>(j * N + i)];
                expects(std::isfinite(static_cast<double>(w)), where, "adjacency entry (", j, ", ", i, ") is ", w);
                deg[static_cast<std::size_t>(i)] += static_cast<double>(w);
            }
        std::vector<double> dis = inv_sqrt(deg);
        // P[i, j] = dis_i * A[j, i] * dis_j
        std::vector<T> p(static_cast<std::size_t>(N * N));
        for (index_t j = 0; j < N; ++j)
            for (index_t i = 0; i < N; ++i)
                p[static_cast<std::size_t>(i * N + j)] =
                    static_cast<T>(dis[static_cast<std::size_t>(i)] * static_cast<double>(h[static_cast<std::size_t>(j * N + i)]) *
                                   dis[static_cast<std::size_t>(j)]);
        gcn_graph g;
        g.m_n = N;
        g.m_dense.assign(shape{N, N}, p.begin(), p.end());
        return g;
    }

    /// From a CSR graph whose arc u -> v has weight w (parallel arcs add up, as in PyG's scatter).
    template <class W>
    static gcn_graph csr(const csr_graph<W>& a) {
        constexpr auto where = "tessel::nn::gcn_graph::csr";
        const index_t N = a.num_nodes();
        expects(N > 0, where, "empty graph");
        // Arcs by target i: (source j, weight), plus remaining self-loops.
        std::vector<std::vector<std::pair<index_t, double>>> in(static_cast<std::size_t>(N));
        std::vector<char> has_loop(static_cast<std::size_t>(N), 0);
        for (index_t u = 0; u < N; ++u) {
            const auto nb = a.neighbors(u);
            const auto ws = a.weights(u);
            for (std::size_t k = 0; k < nb.size(); ++k) {
                const double w = static_cast<double>(ws[k]);
                expects(std::isfinite(w), where, "arc ", u, " -> ", nb[k], " has weight ", w);
                in[static_cast<std::size_t>(nb[k])].emplace_back(u, w);
                if (nb[k] == u) has_loop[static_cast<std::size_t>(u)] = 1;
            }
        }
        for (index_t i = 0; i < N; ++i)
            if (!has_loop[static_cast<std::size_t>(i)]) in[static_cast<std::size_t>(i)].emplace_back(i, 1.0);
        std::vector<double> deg(static_cast<std::size_t>(N), 0.0);
        for (index_t i = 0; i < N; ++i)
            for (const auto& [j, w] : in[static_cast<std::size_t>(i)]) deg[static_cast<std::size_t>(i)] += w;
        const std::vector<double> dis = inv_sqrt(deg);
        gcn_graph g;
        g.m_n = N;
        std::vector<index_t> off{0}, col;
        std::vector<T> val;
        for (index_t i = 0; i < N; ++i) {
            for (const auto& [j, w] : in[static_cast<std::size_t>(i)]) {
                col.push_back(j);
                val.push_back(static_cast<T>(dis[static_cast<std::size_t>(i)] * w * dis[static_cast<std::size_t>(j)]));
            }
            off.push_back(static_cast<index_t>(col.size()));
        }
        // The transpose, for backward: rows by source j.
        std::vector<index_t> toff(static_cast<std::size_t>(N + 1), 0), tcol(col.size());
        std::vector<T> tval(val.size());
        for (index_t c : col) ++toff[static_cast<std::size_t>(c + 1)];
        for (index_t j = 0; j < N; ++j) toff[static_cast<std::size_t>(j + 1)] += toff[static_cast<std::size_t>(j)];
        std::vector<index_t> fill(toff.begin(), toff.end() - 1);
        for (index_t i = 0; i < N; ++i)
            for (index_t k = off[static_cast<std::size_t>(i)]; k < off[static_cast<std::size_t>(i + 1)]; ++k) {
                const auto pos = static_cast<std::size_t>(fill[static_cast<std::size_t>(col[static_cast<std::size_t>(k)])]++);
                tcol[pos] = i;
                tval[pos] = val[static_cast<std::size_t>(k)];
            }
        g.m_off.assign(shape{N + 1}, off.begin(), off.end());
        g.m_col.assign(shape{static_cast<index_t>(col.size())}, col.begin(), col.end());
        g.m_val.assign(shape{static_cast<index_t>(val.size())}, val.begin(), val.end());
        g.m_toff.assign(shape{N + 1}, toff.begin(), toff.end());
        g.m_tcol.assign(shape{static_cast<index_t>(tcol.size())}, tcol.begin(), tcol.end());
        g.m_tval.assign(shape{static_cast<index_t>(tval.size())}, tval.begin(), tval.end());
        return g;
    }

    [[nodiscard]] index_t num_nodes() const noexcept { return m_n; }
    [[nodiscard]] bool is_dense() const noexcept { return !m_dense.empty(); }
    /// The dense operator P [N, N] (empty for a CSR graph).
    [[nodiscard]] const tensor<T, B>& dense_operator() const noexcept { return m_dense; }

    /// y = P x (transpose: P^T x) for x [N, F].
    void apply(const tensor<T, B>& x, tensor<T, B>& y, bool transpose = false) const {
        constexpr auto where = "tessel::nn::gcn_graph::apply";
        expects(m_n > 0, where, "empty graph");
        expects(x.rank() == 2 && x.dim(0) == m_n, where, "input ", x.shape().str(), " does not have the graph's ", m_n,
                " rows");
        const index_t F = x.dim(1);
        y.resize(shape{m_n, F});
        if (is_dense()) {
            ops::gemm(B{}, ops::gemm_args<T>{.trans_a = transpose ? ops::op::trans : ops::op::none, .m = m_n, .n = F,
                                             .k = m_n, .a = m_dense.data(), .lda = m_n, .b = x.data(), .ldb = F,
                                             .c = y.data(), .ldc = F});
        } else {
            const auto& off = transpose ? m_toff : m_off;
            const auto& col = transpose ? m_tcol : m_col;
            const auto& val = transpose ? m_tval : m_val;
            parallel_for(B{}, m_n * F, detail::csr_spmm_fn<T>{off.data(), col.data(), val.data(), x.data(), y.data(), F});
        }
    }

private:
    static std::vector<double> inv_sqrt(const std::vector<double>& deg) {
        std::vector<double> d(deg.size());
        for (std::size_t i = 0; i < deg.size(); ++i) d[i] = deg[i] > 0 ? 1.0 / std::sqrt(deg[i]) : 0.0;  // PyG: inf -> 0
        return d;
    }
    index_t m_n = 0;
    tensor<T, B> m_dense;
    tensor<index_t, B> m_off, m_col, m_toff, m_tcol;
    tensor<T, B> m_val, m_tval;
};

/// GCNConv: Y = P (X W^T) + b on node features X [N, in].
struct gcn_conv {
    static constexpr const char* name = "tessel::nn::gcn_conv";
    struct config {
        index_t in_features = 0;
        index_t out_features = 0;
        bool bias = true;
    };

    template <Backend B, class T = float>
    class bind {
    public:
        bind(const config& cfg, rng& init) : m_cfg(cfg) {
            expects(cfg.in_features > 0 && cfg.out_features > 0, name, "feature counts must be positive, got ",
                    cfg.in_features, " -> ", cfg.out_features);
            m_w.resize(shape{cfg.out_features, cfg.in_features});
            init::xavier_uniform(m_w, cfg.in_features, cfg.out_features, init);
            m_dw.resize(m_w.shape());
            if (cfg.bias) {
                m_b = tensor<T, B>(shape{cfg.out_features});
                m_db.resize(m_b.shape());
            }
        }

        void set_graph(const gcn_graph<T, B>* g) noexcept { m_graph = g; }

        const tensor<T, B>& forward(context<B>&, const tensor<T, B>& x) {
            expects(m_graph != nullptr, name, "no graph bound (call set_graph, or nn::set_graph on the network)");
            expects(x.rank() == 2 && x.dim(1) == m_cfg.in_features, name, "expects [N, ", m_cfg.in_features,
                    "] node features, got ", x.shape().str());
            expects(x.dim(0) == m_graph->num_nodes(), name, "features for ", x.dim(0), " nodes on a graph of ",
                    m_graph->num_nodes());
            const index_t N = x.dim(0), I = m_cfg.in_features, O = m_cfg.out_features;
            m_xw.resize(shape{N, O});
            ops::gemm(B{}, ops::gemm_args<T>{.trans_b = ops::op::trans, .m = N, .n = O, .k = I, .a = x.data(), .lda = I,
                                             .b = m_w.data(), .ldb = I, .c = m_xw.data(), .ldc = O});
            m_graph->apply(m_xw, m_y);
            if (m_cfg.bias) parallel_for(B{}, N * O, add_bias_fn{m_y.data(), m_b.data(), O});
            m_x = &x;
            return m_y;
        }

        const tensor<T, B>& backward(context<B>&, const tensor<T, B>& dy) {
            expects(m_x != nullptr, name, "backward called before forward");
            expect_same_shape(name, dy, m_y);
            const index_t N = dy.dim(0), I = m_cfg.in_features, O = m_cfg.out_features;
            m_graph->apply(dy, m_dxw, true);  // d(XW^T) = P^T dY
            ops::gemm(B{}, ops::gemm_args<T>{.trans_a = ops::op::trans, .m = O, .n = I, .k = N, .a = m_dxw.data(),
                                             .lda = O, .b = m_x->data(), .ldb = I, .c = m_dw.data(), .ldc = I});
            if (m_cfg.bias) parallel_for(B{}, O, linear_detail_column_sum{dy.data(), m_db.data(), N, O});
            if (m_input_grad) {
                m_dx.resize(m_x->shape());
                ops::gemm(B{}, ops::gemm_args<T>{.m = N, .n = I, .k = O, .a = m_dxw.data(), .lda = O, .b = m_w.data(),
                                                 .ldb = I, .c = m_dx.data(), .ldc = I});
            }
            return m_dx;
        }

        parameter_list<T, B> parameters() {
            parameter_list<T, B> p{{&m_w, &m_dw, "weight"}};
            if (m_cfg.bias) p.push_back({&m_b, &m_db, "bias"});
            return p;
        }
        void set_input_grad_needed(bool needed) noexcept { m_input_grad = needed; }
        tensor<T, B>& weight() noexcept { return m_w; }
        tensor<T, B>& bias() noexcept { return m_b; }

    private:
        struct add_bias_fn {
            T* y;
            const T* b;
            index_t O;
            TESSEL_HD void operator()(index_t i) const { y[i] += b[i % O]; }
        };
        using linear_detail_column_sum = detail::column_sum_fn<T>;
        config m_cfg;
        tensor<T, B> m_w, m_dw, m_b, m_db, m_xw, m_y, m_dxw, m_dx;
        const tensor<T, B>* m_x = nullptr;
        const gcn_graph<T, B>* m_graph = nullptr;
        bool m_input_grad = true;
    };
};

static_assert(LayerSpec<gcn_conv>);
static_assert(Layer<gcn_conv::bind<cpu_serial>, cpu_serial>);

/// Binds graph g to every layer of `net` that takes one (set_graph), through sequential
/// (layers()) and repeat (size() / operator[]) containers.
template <class L, class G>
void set_graph(L& net, const G* g) {
    if constexpr (requires { net.set_graph(g); }) {
        net.set_graph(g);
    } else if constexpr (requires { net.layers(); }) {
        std::apply([&](auto&... l) { (set_graph(l, g), ...); }, net.layers());
    } else if constexpr (requires { net.size(); net[std::size_t{0}]; }) {
        for (std::size_t i = 0; i < net.size(); ++i) set_graph(net[i], g);
    }
}

}  // namespace tessel::nn
