// tessel/loss/region_agreement.hpp: agreement of neighbouring regions on a weighted region
// adjacency graph, as tape operations (PiCNet's L_global, METHODS.md §8.2).
//
// PiCNet pushes neighbouring superpixels with similar features to share a cluster. The PROPOSAL
// of METHODS.md §8.2 writes it as
//     L_global = sum_{(i,j) in E} w_ij * || pbar_i - pbar_j ||_1 / sum_{(i,j)} w_ij,
// pbar_i the mean class probability over region i and w_ij = exp(-|mu_i - mu_j|^2 / (2 s^2)) an
// affinity of the regions' mean features mu with s the median neighbour distance. The loss is a
// composition, so it is recorded on an autograd::tape from two reusable functions:
//   region_mean(v, graph):  [1, C, H, W] -> [K, C], the mean of every channel over each region;
//   edge_l1(m, graph):      [K, C] -> scalar, the weighted mean L1 difference over the edges;
// and region_agreement(p, graph) = edge_l1(region_mean(p, graph), graph). The probabilities come
// from a softmax layer node before it. region_graph holds the regions, their sizes and the
// weighted edges; region_graph::set_feature_affinities sets w from mean features (which get no
// gradient: the weights are treated as constants, a PROPOSAL detail). Host backends only: the
// region map lives in host memory (docs/design.md).
#pragma once
#include <algorithm>
#include <cmath>
#include <span>
#include <string_view>
#include <vector>

#include "tessel/autograd/functions.hpp"
#include "tessel/backend/parallel.hpp"
#include "tessel/core/image.hpp"
#include "tessel/graph/csr_graph.hpp"
#include "tessel/graph/region_adjacency.hpp"
#include "tessel/loss/concepts.hpp"

namespace tessel::loss {

/// Regions 0..K-1 of an image with a weighted adjacency (4-connected neighbours).
struct region_graph {
    label_map regions;                ///< dense labels 0..K-1
    index_t num_regions = 0;          ///< K
    std::vector<index_t> sizes;       ///< pixels per region
    csr_graph<double> adjacency;      ///< both directions; weights w_ij
    double weight_sum = 0;            ///< sum over undirected edges of w_ij

    /// The graph of a label map (relabelled densely); every edge starts with weight 1.
    static region_graph from_labels(label_map labels) {
        constexpr auto where = "tessel::loss::region_graph";
        expects(!labels.empty(), where, "empty region map");
        region_graph g;
        g.num_regions = relabel_sequential(labels);
        g.regions = std::move(labels);
        const region_adjacency_graph rag = region_adjacency(g.regions);
        g.sizes.assign(static_cast<std::size_t>(g.num_regions), 0);
        for (index_t i = 0; i < g.regions.size(); ++i) ++g.sizes[static_cast<std::size_t>(g.regions.data()[i])];
        auto edges = rag.graph.upper_edges();
        for (auto& e : edges) e.weight = 1.0;
        g.adjacency = csr_graph<double>::from_undirected_edges(g.num_regions, edges);
        g.weight_sum = static_cast<double>(edges.size());
        return g;
    }

    /// w_ij = exp(-|mu_i - mu_j|^2 / (2 s^2)) from mean features mu ([K, C], row-major), s the
    /// median of |mu_i - mu_j| over the edges (1 when that median is 0).
    void set_feature_affinities(std::span<const double> mu, index_t channels) {
        constexpr auto where = "tessel::loss::region_graph::set_feature_affinities";
        expects(static_cast<index_t>(mu.size()) == num_regions * channels, where, "got ", mu.size(),
                " feature values for ", num_regions, " regions x ", channels, " channels");
        auto edges = adjacency.upper_edges();
        std::vector<double> d2(edges.size());
        for (std::size_t k = 0; k < edges.size(); ++k) {
            double s = 0;
            const double* a = mu.data() + edges[k].source * channels;
            const double* b = mu.data() + edges[k].target * channels;
            for (index_t c = 0; c < channels; ++c) s += (a[c] - b[c]) * (a[c] - b[c]);
            expects(std::isfinite(s), where, "non-finite feature distance between regions ", edges[k].source, " and ",
                    edges[k].target);
            d2[k] = s;
        }
        double s2 = 1.0;
        if (!d2.empty()) {
            std::vector<double> sorted = d2;
            const auto mid = sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() / 2);
            std::nth_element(sorted.begin(), mid, sorted.end());
            if (*mid > 0) s2 = *mid;  // the median distance, squared
        }
        weight_sum = 0;
        for (std::size_t k = 0; k < edges.size(); ++k) {
            edges[k].weight = std::exp(-d2[k] / (2 * s2));
            weight_sum += edges[k].weight;
        }
        adjacency = csr_graph<double>::from_undirected_edges(num_regions, edges);
    }
};

namespace detail {

template <class T>
struct region_sum_fn {  // work item = one channel: sums[r * C + c] over the region's pixels
    const T* x;
    const label_t* regions;
    double* sums;
    index_t channels, pixels;
    TESSEL_HD void operator()(index_t c) const {
        const T* xc = x + c * pixels;
        for (index_t i = 0; i < pixels; ++i) sums[regions[i] * channels + c] += static_cast<double>(xc[i]);
    }
};

template <class T>
struct region_mean_grad_fn {  // dx[c, i] = dm[r(i), c] / |r(i)|
    autograd::grad_target<T> dx;
    const T* dm;
    const label_t* regions;
    const index_t* sizes;
    index_t channels, pixels;
    TESSEL_HD void operator()(index_t k) const {
        const index_t c = k / pixels, i = k % pixels;
        const label_t r = regions[i];
        dx.write(k, dm[r * channels + c] / static_cast<T>(sizes[r]));
    }
};

template <class T>
struct edge_l1_fn {  // work item = one region: half of its edges' terms (each edge seen twice)
    const T* m;
    const index_t* offsets;
    const index_t* targets;
    const double* weights;
    index_t channels;
    TESSEL_HD double operator()(index_t i) const {
        double s = 0;
        for (index_t e = offsets[i]; e < offsets[i + 1]; ++e) {
            const index_t j = targets[e];
            double d = 0;
            for (index_t c = 0; c < channels; ++c) {
                const double t = static_cast<double>(m[i * channels + c]) - static_cast<double>(m[j * channels + c]);
                d += t < 0 ? -t : t;
            }
            s += weights[e] * d;
        }
        return 0.5 * s;
    }
};

template <class T>
struct edge_l1_grad_fn {  // dm[i, c] = dy * sum_j w_ij sign(m_i - m_j) / W; sign(0) = 0
    autograd::grad_target<T> dm;
    const T* m;
    const T* dy;
    const index_t* offsets;
    const index_t* targets;
    const double* weights;
    index_t channels;
    double inv_w;
    TESSEL_HD void operator()(index_t k) const {
        const index_t i = k / channels, c = k % channels;
        double s = 0;
        for (index_t e = offsets[i]; e < offsets[i + 1]; ++e) {
            const T t = m[i * channels + c] - m[targets[e] * channels + c];
            s += weights[e] * (t > T(0) ? 1.0 : (t < T(0) ? -1.0 : 0.0));
        }
        dm.write(k, static_cast<T>(static_cast<double>(dy[0]) * s * inv_w));
    }
};

template <class T, class B>
void check_region_input(std::string_view where, const tensor<T, B>& x, const region_graph& g) {
    expects(x.rank() == 4 && x.dim(0) == 1, where, "expects one image [1, C, H, W], got shape ", x.shape().str());
    expects(x.dim(2) == g.regions.height() && x.dim(3) == g.regions.width(), where, "input of shape ",
            x.shape().str(), " does not match the ", g.regions.width(), "x", g.regions.height(), " region map");
}

struct region_mean_op : autograd::function<region_mean_op> {
    static constexpr std::string_view name = "tessel::loss::region_mean";
    template <class B, class T>
    static void forward(autograd::function_context<B, T>& ctx, tensor<T, B>& out, const tensor<T, B>& x,
                        const region_graph& g) {
        static_assert(HostBackend<B>, "tessel::loss::region_mean runs on host backends");
        check_region_input(name, x, g);
        ctx.save_object(g);
        const index_t C = x.dim(1), P = x.dim(2) * x.dim(3), K = g.num_regions;
        std::vector<double> sums(static_cast<std::size_t>(K * C), 0.0);
        parallel_for(B{}, C, region_sum_fn<T>{x.data(), g.regions.data(), sums.data(), C, P});
        out.resize(shape{K, C});
        for (index_t r = 0; r < K; ++r)
            for (index_t c = 0; c < C; ++c)
                out[r * C + c] = static_cast<T>(sums[static_cast<std::size_t>(r * C + c)] /
                                                static_cast<double>(std::max<index_t>(1, g.sizes[static_cast<std::size_t>(r)])));
    }
    template <class B, class T>
    static void backward(autograd::function_context<B, T>& ctx, const tensor<T, B>& dy, autograd::input_grads<B, T>& dx) {
        if (!dx.needed(0)) return;
        const auto& g = ctx.template object<region_graph>(0);
        const auto& x = ctx.input(0);
        const index_t C = x.dim(1), P = x.dim(2) * x.dim(3);
        parallel_for(B{}, C * P, region_mean_grad_fn<T>{dx.target(0), dy.data(), g.regions.data(), g.sizes.data(), C, P});
    }
};

struct edge_l1_op : autograd::function<edge_l1_op> {
    static constexpr std::string_view name = "tessel::loss::edge_l1";
    template <class B, class T>
    static void forward(autograd::function_context<B, T>& ctx, tensor<T, B>& out, const tensor<T, B>& m,
                        const region_graph& g) {
        static_assert(HostBackend<B>, "tessel::loss::edge_l1 runs on host backends");
        expects(m.rank() == 2 && m.dim(0) == g.num_regions, name, "expects [K, C] with K = ", g.num_regions,
                " regions, got shape ", m.shape().str());
        ctx.save_object(g);
        const auto& a = g.adjacency;
        const double s = parallel_sum(B{}, g.num_regions, 0.0,
                                      edge_l1_fn<T>{m.data(), a.offsets().data(), a.targets().data(),
                                                    a.all_weights().data(), m.dim(1)});
        out.resize(shape{});
        out[0] = static_cast<T>(g.weight_sum > 0 ? s / g.weight_sum : 0.0);
    }
    template <class B, class T>
    static void backward(autograd::function_context<B, T>& ctx, const tensor<T, B>& dy, autograd::input_grads<B, T>& dx) {
        if (!dx.needed(0)) return;
        const auto& g = ctx.template object<region_graph>(0);
        const auto& m = ctx.input(0);
        const auto& a = g.adjacency;
        parallel_for(B{}, m.numel(),
                     edge_l1_grad_fn<T>{dx.target(0), m.data(), dy.data(), a.offsets().data(), a.targets().data(),
                                        a.all_weights().data(), m.dim(1), g.weight_sum > 0 ? 1.0 / g.weight_sum : 0.0});
    }
};

}  // namespace detail

/// The mean of each channel of v ([1, C, H, W]) over each region of g: [K, C]. g must outlive
/// the tape's backward.
template <Backend B, class T>
autograd::var<B, T> region_mean(const autograd::var<B, T>& v, const region_graph& g) {
    return detail::region_mean_op::apply(v, g);
}
/// sum over edges of w_ij |m_i - m_j|_1 / sum of w_ij for m = [K, C] (0 without edges).
template <Backend B, class T>
autograd::var<B, T> edge_l1(const autograd::var<B, T>& m, const region_graph& g) {
    return detail::edge_l1_op::apply(m, g);
}
/// PiCNet's L_global on class probabilities p ([1, q, H, W]).
template <Backend B, class T>
autograd::var<B, T> region_agreement(const autograd::var<B, T>& p, const region_graph& g) {
    return edge_l1(region_mean(p, g), g);
}

/// Mean of every channel of x ([1, C, H, W], host backend) over each region: [K * C] doubles.
template <class T, Backend B>
void region_means(const tensor<T, B>& x, const region_graph& g, std::vector<double>& out) {
    static_assert(HostBackend<B>, "tessel::loss::region_means runs on host backends");
    detail::check_region_input("tessel::loss::region_means", x, g);
    const index_t C = x.dim(1), P = x.dim(2) * x.dim(3);
    out.assign(static_cast<std::size_t>(g.num_regions * C), 0.0);
    parallel_for(B{}, C, detail::region_sum_fn<T>{x.data(), g.regions.data(), out.data(), C, P});
    for (index_t r = 0; r < g.num_regions; ++r)
        for (index_t c = 0; c < C; ++c)
            out[static_cast<std::size_t>(r * C + c)] /=
                static_cast<double>(std::max<index_t>(1, g.sizes[static_cast<std::size_t>(r)]));
}

}  // namespace tessel::loss
