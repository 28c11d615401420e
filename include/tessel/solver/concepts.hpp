// tessel/solver/concepts.hpp: the contracts between energies, graphs and graph-cut solvers.
//
// A labelling problem is an EnergyModel (data costs per site and label, and a pairwise term
// V(l, m)) over a Graph (which sites interact, with a weight per edge). A GraphSolver minimises
//   E(labels) = sum_i D_i(l_i) + sum_{arcs u->v of the graph with u < v} w_uv * V(l_u, l_v)
// in place. solver/energy.hpp has the models, solver/alpha_expansion.hpp and
// solver/alpha_beta_swap.hpp the solvers; docs/solver.md the algorithms.
#pragma once
#include <concepts>
#include <span>

#include "tessel/core/shape.hpp"
#include "tessel/graph/concepts.hpp"

namespace tessel {

/// EnergyModel: data costs and a pairwise label cost for a discrete labelling problem.
///   requires: num_sites() >= 0 and num_labels() >= 1; data_cost(i, l) and pairwise(l, m) are
///             defined for sites i in [0, num_sites()) and labels l, m in [0, num_labels()), and
///             return finite values of E::value_type; pairwise(l, l) == 0 and
///             pairwise(l, m) == pairwise(m, l) >= 0 (a semi-metric; alpha-expansion also needs the
///             triangle inequality and checks it).
///   ensures:  the calls are pure and O(1).
template <class E>
concept EnergyModel = requires(const E& e, index_t site, label_t l, label_t m) {
    typename E::value_type;
    requires std::floating_point<typename E::value_type>;
    { e.num_sites() } -> std::convertible_to<index_t>;
    { e.num_labels() } -> std::convertible_to<index_t>;
    { e.data_cost(site, l) } -> std::same_as<typename E::value_type>;
    { e.pairwise(l, m) } -> std::same_as<typename E::value_type>;
};

/// PottsEnergyModel: an EnergyModel with pairwise(l, m) == lambda() * [l != m].
///   requires: lambda() >= 0, finite.
template <class E>
concept PottsEnergyModel = EnergyModel<E> && requires(const E& e) {
    { e.lambda() } -> std::same_as<typename E::value_type>;
};

/// GraphSolver<S, E, G>: a move-making minimiser of the energy of E over the edges of G.
///   requires: g.num_nodes() == e.num_sites(); labels.size() == e.num_sites(), every label in
///             [0, e.num_labels()); every edge weight of g finite and >= 0. Violations throw
///             tessel::error before anything is changed.
///   ensures:  labels holds the final labelling and minimize returns its energy; that energy is
///             never above the energy of the initial labels; the result depends only on the inputs
///             (deterministic).
template <class S, class E, class G>
concept GraphSolver = EnergyModel<E> && Graph<G> && requires(S& s, const E& e, const G& g, std::span<label_t> labels) {
    { s.minimize(e, g, labels) } -> std::floating_point;
};

}  // namespace tessel
