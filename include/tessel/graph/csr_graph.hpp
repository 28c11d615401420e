// tessel/graph/csr_graph.hpp: a weighted graph in compressed sparse row (CSR) form.
//
// csr_graph<W> is the graph vocabulary type of tessel: superpixel, patch and pixel graphs are built
// into it (graph/region_adjacency.hpp, graph/grid_graph.hpp) and the graph-cut solvers read it
// (solver/). Rows are sorted by head node, so a graph built from the same edges in any order is
// identical (up to the order of parallel arcs), which keeps everything downstream deterministic. It lives in host memory: the solvers
// that read it are CPU algorithms.
#pragma once
#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>
#include <vector>

#include "tessel/core/error.hpp"
#include "tessel/core/shape.hpp"
#include "tessel/graph/concepts.hpp"

namespace tessel {

/// One weighted arc or edge, as passed to the builders.
template <class W = float>
struct weighted_edge {
    index_t source = 0;
    index_t target = 0;
    W weight{};
};

template <class W = float>
class csr_graph {
public:
    using weight_type = W;

    csr_graph() : m_offsets(1, 0) {}

    /// A graph with the arcs exactly as given (directed). Parallel arcs are kept; self-loops are
    /// kept too (the solvers ignore them, since they cannot be cut).
    static csr_graph from_arcs(index_t num_nodes, std::span<const weighted_edge<W>> arcs) {
        check_input("tessel::csr_graph::from_arcs", num_nodes, arcs);
        return build(num_nodes, arcs, false);
    }
    /// An undirected graph: each edge {source, target} given once becomes the two arcs
    /// source->target and target->source with the same weight. Self-loops are rejected, since an
    /// undirected self-loop has no meaning for cuts or adjacency.
    static csr_graph from_undirected_edges(index_t num_nodes, std::span<const weighted_edge<W>> edges) {
        check_input("tessel::csr_graph::from_undirected_edges", num_nodes, edges);
        for (const auto& e : edges)
            expects(e.source != e.target, "tessel::csr_graph::from_undirected_edges", "self-loop at node ",
                    e.source, " (an undirected edge needs two distinct ends)");
        return build(num_nodes, edges, true);
    }
    /// Takes ownership of CSR arrays (offsets of size num_nodes + 1, targets and weights of size
    /// offsets.back()), checking them. Rows are sorted by target, ties keeping their order.
    static csr_graph from_csr(std::vector<index_t> offsets, std::vector<index_t> targets, std::vector<W> weights) {
        constexpr auto where = "tessel::csr_graph::from_csr";
        expects(!offsets.empty() && offsets.front() == 0, where, "offsets must start with 0 and hold num_nodes + 1 entries");
        const auto n = static_cast<index_t>(offsets.size()) - 1;
        for (index_t v = 0; v < n; ++v)
            expects(offsets[v + 1] >= offsets[v], where, "offsets decrease at node ", v, ": ", offsets[v], " then ",
                    offsets[v + 1]);
        expects(static_cast<index_t>(targets.size()) == offsets.back() &&
                    static_cast<index_t>(weights.size()) == offsets.back(),
                where, "offsets end at ", offsets.back(), " but there are ", targets.size(), " targets and ",
                weights.size(), " weights");
        for (std::size_t k = 0; k < targets.size(); ++k) {
            expects(targets[k] >= 0 && targets[k] < n, where, "arc ", k, " points to node ", targets[k],
                    ", outside [0, ", n, ")");
            expects(std::isfinite(static_cast<double>(weights[k])), where, "arc ", k, " has a non-finite weight");
        }
        csr_graph g;
        g.m_num_nodes = n;
        g.m_offsets = std::move(offsets);
        g.m_targets = std::move(targets);
        g.m_weights = std::move(weights);
        g.sort_rows();
        return g;
    }

    [[nodiscard]] index_t num_nodes() const noexcept { return m_num_nodes; }
    /// Number of stored arcs (twice the edge count for an undirected graph).
    [[nodiscard]] index_t num_arcs() const noexcept { return static_cast<index_t>(m_targets.size()); }
    [[nodiscard]] index_t degree(index_t v) const noexcept { return m_offsets[v + 1] - m_offsets[v]; }
    [[nodiscard]] std::span<const index_t> neighbors(index_t v) const noexcept {
        return {m_targets.data() + m_offsets[v], static_cast<std::size_t>(degree(v))};
    }
    [[nodiscard]] std::span<const W> weights(index_t v) const noexcept {
        return {m_weights.data() + m_offsets[v], static_cast<std::size_t>(degree(v))};
    }
    [[nodiscard]] const std::vector<index_t>& offsets() const noexcept { return m_offsets; }
    [[nodiscard]] const std::vector<index_t>& targets() const noexcept { return m_targets; }
    [[nodiscard]] const std::vector<W>& all_weights() const noexcept { return m_weights; }

    /// Weight of the first arc u->v, or `absent` when there is none (binary search in u's row).
    [[nodiscard]] W weight_or(index_t u, index_t v, W absent) const noexcept {
        const auto row = neighbors(u);
        const auto it = std::lower_bound(row.begin(), row.end(), v);
        if (it == row.end() || *it != v) return absent;
        return m_weights[static_cast<std::size_t>(m_offsets[u] + (it - row.begin()))];
    }
    [[nodiscard]] bool has_arc(index_t u, index_t v) const noexcept {
        const auto row = neighbors(u);
        return std::binary_search(row.begin(), row.end(), v);
    }

    /// The edges {u, v} with u < v, once each, with the weight of arc u->v: the undirected view
    /// the solvers use (arcs u->v with u > v are not read).
    [[nodiscard]] std::vector<weighted_edge<W>> upper_edges() const {
        std::vector<weighted_edge<W>> out;
        for (index_t u = 0; u < m_num_nodes; ++u)
            for (index_t k = m_offsets[u]; k < m_offsets[u + 1]; ++k)
                if (m_targets[k] > u) out.push_back({u, m_targets[k], m_weights[k]});
        return out;
    }

private:
    static void check_input(const char* where, index_t num_nodes, std::span<const weighted_edge<W>> edges) {
        expects(num_nodes >= 0, where, "negative node count ", num_nodes);
        for (std::size_t k = 0; k < edges.size(); ++k) {
            const auto& e = edges[k];
            expects(e.source >= 0 && e.source < num_nodes && e.target >= 0 && e.target < num_nodes, where, "edge ", k,
                    " (", e.source, ", ", e.target, ") has an end outside [0, ", num_nodes, ")");
            expects(std::isfinite(static_cast<double>(e.weight)), where, "edge ", k, " (", e.source, ", ", e.target,
                    ") has a non-finite weight");
        }
    }

    static csr_graph build(index_t n, std::span<const weighted_edge<W>> edges, bool both_ways) {
        csr_graph g;
        g.m_num_nodes = n;
        g.m_offsets.assign(static_cast<std::size_t>(n + 1), 0);
        for (const auto& e : edges) {
            ++g.m_offsets[static_cast<std::size_t>(e.source + 1)];
            if (both_ways) ++g.m_offsets[static_cast<std::size_t>(e.target + 1)];
        }
        std::partial_sum(g.m_offsets.begin(), g.m_offsets.end(), g.m_offsets.begin());
        g.m_targets.resize(static_cast<std::size_t>(g.m_offsets.back()));
        g.m_weights.resize(static_cast<std::size_t>(g.m_offsets.back()));
        std::vector<index_t> fill(g.m_offsets.begin(), g.m_offsets.end() - 1);
        for (const auto& e : edges) {
            auto k = static_cast<std::size_t>(fill[static_cast<std::size_t>(e.source)]++);
            g.m_targets[k] = e.target;
            g.m_weights[k] = e.weight;
            if (both_ways) {
                k = static_cast<std::size_t>(fill[static_cast<std::size_t>(e.target)]++);
                g.m_targets[k] = e.source;
                g.m_weights[k] = e.weight;
            }
        }
        g.sort_rows();
        return g;
    }

    // Sorting each row by head makes the graph independent of the input order (determinism) and
    // enables the binary searches above. Stable, so parallel arcs keep their input order.
    void sort_rows() {
        std::vector<std::pair<index_t, W>> row;
        for (index_t v = 0; v < m_num_nodes; ++v) {
            const auto b = static_cast<std::size_t>(m_offsets[v]), e = static_cast<std::size_t>(m_offsets[v + 1]);
            bool sorted = true;
            for (std::size_t k = b + 1; k < e; ++k)
                if (m_targets[k] < m_targets[k - 1]) sorted = false;
            if (sorted) continue;
            row.clear();
            for (std::size_t k = b; k < e; ++k) row.emplace_back(m_targets[k], m_weights[k]);
            std::stable_sort(row.begin(), row.end(), [](const auto& a, const auto& c) { return a.first < c.first; });
            for (std::size_t k = b; k < e; ++k) {
                m_targets[k] = row[k - b].first;
                m_weights[k] = row[k - b].second;
            }
        }
    }

    index_t m_num_nodes = 0;
    std::vector<index_t> m_offsets;
    std::vector<index_t> m_targets;
    std::vector<W> m_weights;
};

static_assert(Graph<csr_graph<float>> && Graph<csr_graph<double>>);

}  // namespace tessel
