// tessel/graph/grid_graph.hpp: builders for the graphs segmentation methods put over pixels,
// patches and feature vectors.
//
//   grid_graph                 - 4- or 8-neighbour grid (pixels, or GraPL's d x d patch grid)
//   knn_graph / make_symmetric - each node to its k nearest neighbours in feature space
//   fully_connected_graph      - every pair of nodes, weighted by a user function
//   similarity_threshold_graph - every pair whose weight reaches a threshold (GraPL's pruning)
// Nodes of a grid are numbered row-major, node = y * width + x. All return a csr_graph.
#pragma once
#include <cmath>
#include <concepts>
#include <span>
#include <type_traits>
#include <vector>

#include "tessel/backend/parallel.hpp"
#include "tessel/graph/csr_graph.hpp"

namespace tessel {

/// WeightFunction: w(u, v) gives the weight of the edge between nodes u and v (index_t).
///   requires: the result is arithmetic and finite; w(u, v) == w(v, u) for the undirected builders,
///             which call it once per edge with u < v.
template <class F>
concept WeightFunction = std::invocable<const F&, index_t, index_t> &&
                         std::is_arithmetic_v<std::decay_t<std::invoke_result_t<const F&, index_t, index_t>>>;

template <WeightFunction F>
using weight_result_t = std::decay_t<std::invoke_result_t<const F&, index_t, index_t>>;

/// The undirected width x height grid with 4 or 8 neighbours; edge {u, v} has weight w(u, v).
template <WeightFunction F>
csr_graph<weight_result_t<F>> grid_graph(index_t width, index_t height, int connectivity, const F& w) {
    constexpr auto where = "tessel::grid_graph";
    expects(width > 0 && height > 0, where, "grid must be non-empty, got ", width, "x", height);
    expects(connectivity == 4 || connectivity == 8, where, "connectivity must be 4 or 8, got ", connectivity);
    using W = weight_result_t<F>;
    std::vector<weighted_edge<W>> edges;
    edges.reserve(static_cast<std::size_t>(width * height * (connectivity / 2)));
    for (index_t y = 0; y < height; ++y)
        for (index_t x = 0; x < width; ++x) {
            const index_t u = y * width + x;
            auto add = [&](index_t v) { edges.push_back({u, v, w(u, v)}); };
            if (x + 1 < width) add(u + 1);
            if (y + 1 < height) {
                if (connectivity == 8 && x > 0) add(u + width - 1);
                add(u + width);
                if (connectivity == 8 && x + 1 < width) add(u + width + 1);
            }
        }
    return csr_graph<W>::from_undirected_edges(width * height, edges);
}

/// The grid with every edge of weight 1.
inline csr_graph<float> grid_graph(index_t width, index_t height, int connectivity = 4) {
    return grid_graph(width, height, connectivity, [](index_t, index_t) { return 1.0f; });
}

/// Every pair {u, v} of the n nodes, with weight w(u, v) (u < v).
template <WeightFunction F>
csr_graph<weight_result_t<F>> fully_connected_graph(index_t n, const F& w) {
    expects(n >= 0, "tessel::fully_connected_graph", "negative node count ", n);
    using W = weight_result_t<F>;
    std::vector<weighted_edge<W>> edges;
    edges.reserve(static_cast<std::size_t>(n * (n - 1) / 2));
    for (index_t u = 0; u < n; ++u)
        for (index_t v = u + 1; v < n; ++v) edges.push_back({u, v, w(u, v)});
    return csr_graph<W>::from_undirected_edges(n, edges);
}

/// The pairs {u, v} with w(u, v) >= threshold: a fully connected affinity graph pruned to its
/// strong edges (GraPL keeps colour affinities >= 0.2, METHODS.md 5.5).
template <WeightFunction F>
csr_graph<weight_result_t<F>> similarity_threshold_graph(index_t n, const F& w, double threshold) {
    constexpr auto where = "tessel::similarity_threshold_graph";
    expects(n >= 0, where, "negative node count ", n);
    expects(!std::isnan(threshold), where, "threshold is NaN");
    using W = weight_result_t<F>;
    std::vector<weighted_edge<W>> edges;
    for (index_t u = 0; u < n; ++u)
        for (index_t v = u + 1; v < n; ++v) {
            const W x = w(u, v);
            if (static_cast<double>(x) >= threshold) edges.push_back({u, v, x});
        }
    return csr_graph<W>::from_undirected_edges(n, edges);
}

namespace detail {
// One k-NN row: keeps the k best (squared distance, index) pairs sorted in the output slots, by
// insertion. Lexicographic order on (distance, index) makes ties deterministic.
template <class T>
struct knn_row {
    const T* features;
    index_t n, dim, k;
    T* out_dist;
    index_t* out_index;

    TESSEL_HD void operator()(index_t i) const {
        T* bd = out_dist + i * k;
        index_t* bi = out_index + i * k;
        index_t filled = 0;
        const T* fi = features + i * dim;
        for (index_t j = 0; j < n; ++j) {
            if (j == i) continue;
            const T* fj = features + j * dim;
            T d = 0;
            for (index_t c = 0; c < dim; ++c) {
                const T t = fi[c] - fj[c];
                d += t * t;
            }
            if (filled == k && !(d < bd[k - 1])) continue;  // j > every stored index: ties lose
            index_t pos = filled < k ? filled++ : k - 1;
            while (pos > 0 && d < bd[pos - 1]) {
                bd[pos] = bd[pos - 1];
                bi[pos] = bi[pos - 1];
                --pos;
            }
            bd[pos] = d;
            bi[pos] = j;
        }
    }
};
}  // namespace detail

/// The directed k-nearest-neighbour graph of n feature vectors (row-major n x dim): node i has arcs
/// to its k nearest other nodes in Euclidean distance, weighted by that distance. Ties go to the
/// smaller index. Exact search, O(n^2 dim); rows run in parallel on backend B.
template <class B = cpu_serial, class T>
    requires std::floating_point<T>
csr_graph<T> knn_graph(std::span<const T> features, index_t n, index_t dim, index_t k, B backend = {}) {
    constexpr auto where = "tessel::knn_graph";
    expects(n > 0 && dim > 0, where, "need n > 0 points of dim > 0, got n = ", n, ", dim = ", dim);
    expects(static_cast<index_t>(features.size()) == n * dim, where, "features hold ", features.size(),
            " values, expected n * dim = ", n, " * ", dim, " = ", n * dim);
    expects(k >= 1 && k < n, where, "k must be in [1, n - 1] = [1, ", n - 1, "], got ", k);
    for (std::size_t i = 0; i < features.size(); ++i)
        expects(std::isfinite(features[i]), where, "feature value ", i, " is not finite");
    std::vector<T> dist(static_cast<std::size_t>(n * k));
    std::vector<index_t> targets(static_cast<std::size_t>(n * k));
    parallel_for(backend, n, detail::knn_row<T>{features.data(), n, dim, k, dist.data(), targets.data()});
    std::vector<index_t> offsets(static_cast<std::size_t>(n + 1));
    for (index_t i = 0; i <= n; ++i) offsets[static_cast<std::size_t>(i)] = i * k;
    for (auto& d : dist) d = std::sqrt(d);
    return csr_graph<T>::from_csr(std::move(offsets), std::move(targets), std::move(dist));
}

/// The undirected closure of a directed graph: arc u->v whenever g has u->v or v->u. When both
/// exist the weight of u->v is kept for u->v and that of v->u for v->u; parallel arcs are merged
/// (the first, in row order, wins); self-loops are dropped.
template <class W>
csr_graph<W> make_symmetric(const csr_graph<W>& g) {
    const index_t n = g.num_nodes();
    std::vector<weighted_edge<W>> arcs;
    arcs.reserve(static_cast<std::size_t>(2 * g.num_arcs()));
    for (index_t u = 0; u < n; ++u) {
        const auto nb = g.neighbors(u);
        const auto wt = g.weights(u);
        for (std::size_t k = 0; k < nb.size(); ++k) {
            if (nb[k] == u) continue;
            if (k > 0 && nb[k] == nb[k - 1]) continue;
            arcs.push_back({u, nb[k], wt[k]});
            if (!g.has_arc(nb[k], u)) arcs.push_back({nb[k], u, wt[k]});
        }
    }
    return csr_graph<W>::from_arcs(n, arcs);
}

}  // namespace tessel
