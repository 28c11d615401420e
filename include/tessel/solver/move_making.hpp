// tessel/solver/move_making.hpp: what alpha-expansion and alpha-beta swap share: the policy tags
// that choose their parts, their configuration and their statistics.
//
// Defaults by tag, CUTLASS style: alpha_expansion<potts> is
// alpha_expansion<potts, order::sequential, maxflow::bk>; a user overrides one tag without
// restating the others (docs/solver.md).
#pragma once
#include <algorithm>
#include <cmath>
#include <functional>
#include <type_traits>
#include <vector>
#include <span>

#include "tessel/core/shape.hpp"
#include "tessel/solver/energy.hpp"
#include "tessel/solver/maxflow_bk.hpp"

namespace tessel {

namespace order {
/// Labels in increasing order each cycle (alpha-beta swap: alpha ascending and, for each alpha,
/// beta descending from the last label down to alpha + 1, the order GCO uses; METHODS.md 5.5).
struct sequential {};
}  // namespace order

namespace maxflow {
/// The max-flow algorithm that solves each binary move: Boykov-Kolmogorov.
struct bk {
    template <class Cap>
    using solver = bk_maxflow<Cap>;
};
}  // namespace maxflow

/// Settings of the move-making solvers.
struct move_config {
    /// A cycle tries every label (expansion) or every label pair (swap) once. The solver stops
    /// after a cycle in which no move lowered the energy, or after max_cycles cycles.
    int max_cycles = 100;
    /// Called after every move with the energy and labels then current (the move's result when it
    /// was accepted, the unchanged labels when it was rejected). For tests and progress reports.
    std::function<void(double energy, std::span<const label_t> labels)> on_move{};
};

/// What the last minimize() call did.
struct move_stats {
    int cycles = 0;          ///< cycles run (including the final one without improvement)
    int moves_tried = 0;     ///< max-flow problems solved
    int moves_accepted = 0;  ///< moves that strictly lowered the energy
    double initial_energy = 0;
    double final_energy = 0;
};

namespace detail {
/// V(l, m) of the model as a dense labels x labels table, checked: a Potts tag needs a Potts model;
/// every V must be a semi-metric; need_metric (alpha-expansion) also demands the triangle
/// inequality, without which an expansion move is not graph-representable (Kolmogorov & Zabih).
template <class Pairwise, EnergyModel E>
std::vector<typename E::value_type> pairwise_table(const E& e, const char* where, bool need_metric) {
    using T = typename E::value_type;
    static_assert(std::is_same_v<Pairwise, potts> || std::is_same_v<Pairwise, metric_pairwise>,
                  "tessel: the pairwise tag must be tessel::potts or tessel::metric_pairwise");
    if constexpr (std::is_same_v<Pairwise, potts>)
        static_assert(PottsEnergyModel<E>,
                      "tessel: a solver with the potts tag needs a Potts energy (tessel::potts_energy or a model "
                      "with lambda()); use the metric_pairwise tag for a general V(l, m)");
    const index_t L = e.num_labels();
    expects(L >= 1, where, "the energy has no labels");
    std::vector<T> v(static_cast<std::size_t>(L * L));
    for (index_t l = 0; l < L; ++l)
        for (index_t m = 0; m < L; ++m) {
            const T x = e.pairwise(static_cast<label_t>(l), static_cast<label_t>(m));
            expects(std::isfinite(x) && x >= 0, where, "V(", l, ", ", m, ") = ", x, " must be finite and >= 0");
            if (l == m) expects(x == 0, where, "V(", l, ", ", l, ") = ", x, " must be 0");
            v[static_cast<std::size_t>(l * L + m)] = x;
        }
    for (index_t l = 0; l < L; ++l)
        for (index_t m = 0; m < l; ++m)
            expects(v[static_cast<std::size_t>(l * L + m)] == v[static_cast<std::size_t>(m * L + l)], where,
                    "V is not symmetric: V(", l, ", ", m, ") = ", v[static_cast<std::size_t>(l * L + m)], " but V(", m,
                    ", ", l, ") = ", v[static_cast<std::size_t>(m * L + l)]);
    if (need_metric)
        for (index_t a = 0; a < L; ++a)
            for (index_t b = 0; b < L; ++b)
                for (index_t c = 0; c < L; ++c) {
                    const T ac = v[static_cast<std::size_t>(a * L + c)];
                    const T abc = v[static_cast<std::size_t>(a * L + b)] + v[static_cast<std::size_t>(b * L + c)];
                    expects(ac <= abc * (T(1) + T(1e-9)), where, "V violates the triangle inequality: V(", a, ", ", c,
                            ") = ", ac, " > V(", a, ", ", b, ") + V(", b, ", ", c, ") = ", abc,
                            "; alpha-expansion needs a metric (use alpha_beta_swap for a semi-metric)");
                }
    return v;
}

/// Adds the pairwise term E(x_u, x_v) = [[A, B], [C, D]] (rows x_u = 0, 1; columns x_v = 0, 1) of
/// a binary move to a max-flow problem, with x = 0 the source side. It needs B + C >= A + D
/// (regular, Kolmogorov & Zabih 2004). The diagonal goes to u's unary costs (A for x_u = 0, D for
/// x_u = 1); what remains, R(0,1) = B - A and R(1,0) = C - D, becomes the two arcs u -> v and
/// v -> u. When one of those is negative, it is moved into the unary terms of both ends (adding
/// r x_v - r x_u leaves a pure arc on the other side). Compared with folding the whole term into
/// one arc plus opposite unary terms, this keeps t-links small where they would cancel, which
/// matters on dense graphs: fewer augmenting paths share the same capacity.
template <class T, class Flow>
inline void add_binary_term(Flow& flow, index_t u, index_t v, T A, T B, T C, T D, T* cost0, T* cost1) {
    cost0[u] += A;
    cost1[u] += D;
    T p = B - A, q = C - D;
    if (p < 0) {
        cost1[v] += p;
        cost1[u] -= p;
        q += p;
        p = 0;
    } else if (q < 0) {
        cost1[u] += q;
        cost1[v] -= q;
        p += q;
        q = 0;
    }
    // Rounding can leave a regular term a hair below zero; the term is then zero.
    flow.add_nlink(u, v, std::max(p, T(0)), std::max(q, T(0)));
}

inline void check_config(const move_config& cfg, const char* where) {
    expects(cfg.max_cycles >= 0, where, "max_cycles must be >= 0, got ", cfg.max_cycles);
}
}  // namespace detail

}  // namespace tessel
