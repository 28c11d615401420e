// tessel/graph/concepts.hpp: what a weighted graph must provide to tessel's graph stages.
//
// Graph stages (region adjacency, patch and pixel graphs, k-NN graphs) produce graphs, and the
// graph-cut solvers (solver/) consume them. They meet at this concept, so a user graph type that
// exposes its adjacency rows as spans works with the solvers without conversion.
#pragma once
#include <concepts>
#include <cstddef>
#include <ranges>

#include "tessel/core/shape.hpp"

namespace tessel {

/// Graph: a directed, weighted adjacency structure over nodes 0..num_nodes()-1.
///   requires: num_nodes() and num_arcs() return non-negative integers; for every node v in
///             [0, num_nodes()), neighbors(v) and weights(v) are sized random-access ranges of the
///             same length: neighbors(v)[k] is the head of v's k-th arc (a node index in range) and
///             weights(v)[k] its weight (an arithmetic value).
///   ensures:  the sum over v of neighbors(v).size() equals num_arcs(); the ranges stay valid and
///             unchanged while the graph is alive and not modified; calling them is O(1).
///   notes:    an undirected graph stores each edge {u, v} as the two arcs u->v and v->u with the
///             same weight (csr_graph::from_undirected_edges). Consumers that want each edge once
///             keep the arcs with u < v; the solvers do exactly that (docs/solver.md).
template <class G>
concept Graph = requires(const G& g, index_t v) {
    { g.num_nodes() } -> std::integral;
    { g.num_arcs() } -> std::integral;
    { g.neighbors(v) } -> std::ranges::random_access_range;
    { g.weights(v) } -> std::ranges::random_access_range;
    requires std::integral<std::ranges::range_value_t<decltype(g.neighbors(v))>>;
    requires std::is_arithmetic_v<std::ranges::range_value_t<decltype(g.weights(v))>>;
};

}  // namespace tessel
