// tessel/pipeline/stages/graph_cluster.hpp: clustering the nodes of a feature graph with a GNN
// trained per image (UnSegGNet, METHODS.md §6.1, §6.3-6.5), as pipeline stages and self_train
// policies.
//
//   node_features<B>    state data: features F [N, D] of a gh x gw grid of nodes (row-major);
//                       made by stages::vit_features (or any stage of the user's).
//   similarity_graph    stage: F -> the dense adjacency of feature_graph<B>. Cosine form (DMoN):
//                       A_ij = [F_i.F_j / (|F_i| |F_j|) >= tau], diagonal 1. Dot form (NCUT):
//                       A = F F^T, entries <= tau set to 0, divided by the maximum. Also the GCN
//                       propagation operator of A (nn::gcn_graph, dense).
//   graph_node_input    self_train Input policy: the network's input is F, the GCN layers are
//                       bound to the state's graph, the labels form the gh x gw grid.
//   graph_cluster_loss  self_train Loss policy: S = softmax(response) over the K outputs, then
//                       loss::dmon (as coded, or paper form) or loss::normalized_cut on A.
//   foreground_mask     stage: corner rule (if the 4 corner labels sum to more than 2, 1 - S),
//                       then nearest-neighbour resize to the image (OpenCV's rule), 0/1 labels.
#pragma once
#include <cmath>
#include <string_view>
#include <utility>
#include <vector>

#include "tessel/loss/modularity.hpp"
#include "tessel/nn/activation.hpp"
#include "tessel/nn/gcn_conv.hpp"
#include "tessel/ops/gemm.hpp"
#include "tessel/ops/resize.hpp"
#include "tessel/pipeline/state.hpp"

namespace tessel::stages {

/// Node features of a grid of nodes (state data).
template <Backend B>
struct node_features {
    static constexpr const char* name = "node_features";
    tensor<float, B> features;  ///< [N, D], node n = row * grid_w + col
    index_t grid_h = 0, grid_w = 0;
};

/// The graph the GNN trains on (state data).
template <Backend B>
struct feature_graph {
    static constexpr const char* name = "feature_graph";
    tensor<float, B> adjacency;     ///< dense [N, N], what the loss reads
    nn::gcn_graph<float, B> gcn;    ///< D^-1/2 A D^-1/2, what the GCN layers propagate with
    loss::graph_degrees degrees;    ///< A 1, for the loss
    double density = 0;             ///< fraction of nonzero entries of A
};

/// How similarity_graph turns features into edges.
enum class graph_form {
    cosine_threshold,  ///< DMoN: 0/1 edges where cosine similarity >= tau
    dot_threshold      ///< NCUT: raw dot products above tau, scaled to max 1
};

namespace detail {
struct threshold_fn {  // a = a >= tau ? 1 : 0, diagonal 1
    float* a;
    float tau;
    index_t N;
    TESSEL_HD void operator()(index_t i) const { a[i] = (i / N == i % N || a[i] >= tau) ? 1.0f : 0.0f; }
};
}  // namespace detail

struct similarity_graph {
    struct config {
        double tau = 0.5;
        graph_form form = graph_form::cosine_threshold;
    };
    template <Backend B>
    class bind {
    public:
        explicit bind(const config& cfg) : m_cfg(cfg) {
            expects(std::isfinite(cfg.tau), "tessel::stages::similarity_graph", "tau must be finite, got ", cfg.tau);
        }
        void run(pipeline::state<B>& st) {
            constexpr auto where = "tessel::stages::similarity_graph";
            pipeline::stage_timer timer(st, "graph");
            const auto& nf = st.template require<node_features<B>>(where);
            const tensor<float, B>& f = nf.features;
            expects(f.rank() == 2 && f.dim(0) >= 2 && f.dim(1) >= 1, where, "needs features [N >= 2, D], got ",
                    f.shape().str());
            const index_t N = f.dim(0), D = f.dim(1);
            std::vector<float> h = f.to_vector();
            for (index_t i = 0; i < N * D; ++i)
                expects(std::isfinite(h[static_cast<std::size_t>(i)]), where, "feature ", i % D, " of node ", i / D,
                        " is ", h[static_cast<std::size_t>(i)]);
            if (m_cfg.form == graph_form::cosine_threshold)
                for (index_t n = 0; n < N; ++n) {  // F.normalize: x / max(|x|, 1e-12)
                    double ss = 0;
                    for (index_t j = 0; j < D; ++j) ss += static_cast<double>(h[static_cast<std::size_t>(n * D + j)]) * h[static_cast<std::size_t>(n * D + j)];
                    const double inv = 1.0 / std::max(std::sqrt(ss), 1e-12);
                    for (index_t j = 0; j < D; ++j) h[static_cast<std::size_t>(n * D + j)] = static_cast<float>(h[static_cast<std::size_t>(n * D + j)] * inv);
                }
            tensor<float, B> fn;
            fn.assign(shape{N, D}, h.begin(), h.end());
            auto& g = st.template data<feature_graph<B>>();
            g.adjacency.resize(shape{N, N});
            ops::gemm(B{}, ops::gemm_args<float>{.trans_b = ops::op::trans, .m = N, .n = N, .k = D, .a = fn.data(),
                                                 .lda = D, .b = fn.data(), .ldb = D, .c = g.adjacency.data(), .ldc = N});
            if (m_cfg.form == graph_form::cosine_threshold) {
                parallel_for(B{}, N * N, detail::threshold_fn{g.adjacency.data(), static_cast<float>(m_cfg.tau), N});
            } else {
                std::vector<float> a = g.adjacency.to_vector();
                float mx = 0;
                for (float& v : a) {
                    if (v <= static_cast<float>(m_cfg.tau)) v = 0;
                    mx = std::max(mx, v);
                }
                expects(mx > 0, where, "no dot product exceeds tau = ", m_cfg.tau, ": the NCUT graph is empty");
                for (float& v : a) v /= mx;
                g.adjacency.assign(shape{N, N}, a.begin(), a.end());
            }
            g.gcn = nn::gcn_graph<float, B>::dense(g.adjacency);
            g.degrees = loss::graph_degrees::of(g.adjacency);
            index_t nnz = 0;
            for (float v : g.adjacency.to_vector()) nnz += v != 0;
            g.density = static_cast<double>(nnz) / static_cast<double>(N * N);
            st.info.values["graph_density"] = g.density;
        }

    private:
        config m_cfg;
    };
};

/// self_train Input policy for a GNN on node_features / feature_graph.
struct graph_node_input {
    template <Backend B>
    const tensor<float, B>& input(const pipeline::state<B>& st) {
        const auto& nf = st.template require<node_features<B>>("tessel::stages::self_train");
        expects(nf.features.rank() == 2 && nf.features.dim(0) == nf.grid_h * nf.grid_w, "tessel::stages::self_train",
                "node features ", nf.features.shape().str(), " do not fill the ", nf.grid_h, "x", nf.grid_w, " grid");
        return nf.features;
    }
    /// Binds the graph to every GCN layer, and seeds the dropout stream from the run's seed.
    template <class Net, Backend B>
    void bind_network(Net& net, nn::context<B>& ctx, const pipeline::state<B>& st) {
        nn::set_graph(net, &st.template require<feature_graph<B>>("tessel::stages::self_train").gcn);
        rng copy = st.gen;
        ctx.gen.reseed(copy.next());
    }
    template <Backend B>
    void write_labels(pipeline::state<B>& st, std::vector<label_t> labels) {
        const auto& nf = st.template require<node_features<B>>("tessel::stages::self_train");
        st.labels = label_map(nf.grid_w, nf.grid_h, std::move(labels));
    }
};

/// The graph-clustering objectives of UnSegGNet (METHODS.md §6.4).
enum class cluster_objective {
    dmon,        ///< DMoN as coded (default)
    dmon_paper,  ///< DMoN's own definition
    ncut         ///< DeepCut's normalised cut (use with graph_form::dot_threshold)
};

/// self_train Loss policy: softmax over the response's K outputs, then the graph objective on the
/// state's feature_graph.
struct graph_cluster_loss {
    struct config {
        cluster_objective objective = cluster_objective::dmon;
    };
    template <Backend B>
    class bind {
    public:
        explicit bind(const config& cfg) : m_cfg(cfg) {}
        double value_and_grad(const tensor<float, B>& r, const tensor<label_t, B>& /*labels*/, tensor<float, B>& dr,
                              const pipeline::state<B>& st) {
            constexpr auto where = "tessel::stages::graph_cluster_loss";
            expects(r.rank() == 2, where, "expects a response [N, K], got ", r.shape().str());
            const auto& g = st.template require<feature_graph<B>>(where);
            const tensor<float, B>& s = m_softmax.forward(m_ctx, r);
            double v = 0;
            if (m_cfg.objective == cluster_objective::ncut)
                v = loss::normalized_cut{}.value_and_grad(s, g.adjacency, g.degrees, m_ds);
            else
                v = loss::dmon{.form = m_cfg.objective == cluster_objective::dmon ? loss::dmon_form::coded
                                                                                 : loss::dmon_form::paper}
                        .value_and_grad(s, g.adjacency, g.degrees, m_ds);
            expects(std::isfinite(v), where, "the loss is ", v);
            const tensor<float, B>& d = m_softmax.backward(m_ctx, m_ds);
            dr.resize(d.shape());
            std::copy(d.data(), d.data() + d.numel(), dr.data());
            return v;
        }

    private:
        config m_cfg;
        nn::softmax::bind<B, float> m_softmax;
        nn::context<B> m_ctx;
        tensor<float, B> m_ds;
    };
};

/// Stage: the binary mask of a 2-cluster grid labelling.
///   reads:  state.labels (the node grid, labels 0/1), state.input (for the output size)
///   writes: state.labels at the image's size, 0 = background, 1 = foreground;
///           state.info.values["corner_flip"] (1 when the corner rule inverted the labels)
struct foreground_mask {
    struct config {
        bool corner_rule = true;  ///< invert when the 4 corner labels sum to more than 2
    };
    template <Backend B>
    class bind {
    public:
        explicit bind(const config& cfg) : m_cfg(cfg) {}
        void run(pipeline::state<B>& st) {
            constexpr auto where = "tessel::stages::foreground_mask";
            expects(!st.labels.empty(), where, "no labels in the pipeline state");
            label_map& l = st.labels;
            for (label_t v : l.values())
                expects(v == 0 || v == 1, where, "expects 2-cluster labels (0/1), found ", v);
            const index_t W = l.width(), H = l.height();
            const label_t corners = l(0, 0) + l(W - 1, 0) + l(0, H - 1) + l(W - 1, H - 1);
            const bool flip = m_cfg.corner_rule && corners > 2;
            if (flip)
                for (index_t y = 0; y < H; ++y)
                    for (index_t x = 0; x < W; ++x) l(x, y) = 1 - l(x, y);
            st.info.values["corner_flip"] = flip ? 1.0 : 0.0;
            if (st.input != nullptr && (st.input->width() != W || st.input->height() != H))
                st.labels = ops::resize_nearest_labels(l, st.input->width(), st.input->height());
        }

    private:
        config m_cfg;
    };
};

}  // namespace tessel::stages
