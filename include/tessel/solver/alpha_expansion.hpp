// tessel/solver/alpha_expansion.hpp: alpha-expansion, the move-making graph-cut minimiser of
// Boykov, Veksler & Zabih ("Fast Approximate Energy Minimization via Graph Cuts", IEEE TPAMI
// 23(11), 2001).
//
// One move lets every site either keep its label or switch to alpha; the best such move is a
// minimum cut, built here with the construction of Kolmogorov & Zabih ("What Energy Functions
// Can Be Minimized via Graph Cuts?", IEEE TPAMI 26(2), 2004) and solved by Boykov-Kolmogorov
// max-flow. Cycling alpha over all labels until no move helps gives a local minimum within a
// factor 2 max(V)/min(V != 0) of the optimum (2 for Potts). Needs V to be a metric.
// GraPL's graph step (METHODS.md 5.5) offers it as solver=alpha_expansion. CPU only.
#pragma once
#include <algorithm>
#include <span>
#include <type_traits>
#include <vector>

#include "tessel/solver/move_making.hpp"

namespace tessel {

/// Alpha-expansion. Pairwise: potts (needs a PottsEnergyModel) or metric_pairwise (any model whose
/// V is a metric; checked). Order: order::sequential. MaxFlow: maxflow::bk.
template <class Pairwise = potts, class Order = order::sequential, class MaxFlow = maxflow::bk>
class alpha_expansion {
    static_assert(std::is_same_v<Order, order::sequential>, "tessel::alpha_expansion: only order::sequential exists");

public:
    using config = move_config;

    alpha_expansion() = default;
    explicit alpha_expansion(move_config cfg) : m_cfg(std::move(cfg)) {}

    /// Minimises the energy of e over the edges of g, starting from and writing to `labels`.
    /// Returns the final energy. A move is accepted only when it strictly lowers the energy
    /// (evaluated exactly, not from the flow value), so the energy never increases.
    template <EnergyModel E, Graph G>
    typename E::value_type minimize(const E& e, const G& g, std::span<label_t> labels) {
        using T = typename E::value_type;
        constexpr auto where = "tessel::alpha_expansion::minimize";
        detail::check_config(m_cfg, where);
        detail::check_labels(e, std::span<const label_t>(labels.data(), labels.size()), where);
        const auto edges = detail::collect_edges<T>(g, e.num_sites(), where);
        const auto V = detail::pairwise_table<Pairwise>(e, where, true);
        const index_t n = e.num_sites();
        const auto L = static_cast<label_t>(e.num_labels());

        std::vector<label_t> candidate(labels.begin(), labels.end());
        T energy = detail::energy_of(e, edges, std::span<const label_t>(labels.data(), labels.size()));
        m_stats = move_stats{};
        m_stats.initial_energy = static_cast<double>(energy);
        std::vector<T> cost_keep(static_cast<std::size_t>(n)), cost_alpha(static_cast<std::size_t>(n));
        typename MaxFlow::template solver<T> flow;

        for (int cycle = 0; cycle < m_cfg.max_cycles; ++cycle) {
            ++m_stats.cycles;
            bool improved = false;
            for (label_t alpha = 0; alpha < L; ++alpha) {
                expansion_move(e, edges, V, labels, alpha, cost_keep, cost_alpha, flow);
                for (index_t i = 0; i < n; ++i)
                    candidate[static_cast<std::size_t>(i)] =
                        flow.on_source_side(i) ? labels[static_cast<std::size_t>(i)] : alpha;
                ++m_stats.moves_tried;
                const T moved = detail::energy_of(e, edges, std::span<const label_t>(candidate));
                if (moved < energy) {
                    std::copy(candidate.begin(), candidate.end(), labels.begin());
                    energy = moved;
                    ++m_stats.moves_accepted;
                    improved = true;
                }
                if (m_cfg.on_move)
                    m_cfg.on_move(static_cast<double>(energy), std::span<const label_t>(labels.data(), labels.size()));
            }
            if (!improved) break;
        }
        m_stats.final_energy = static_cast<double>(energy);
        return energy;
    }

    [[nodiscard]] const move_stats& stats() const noexcept { return m_stats; }
    [[nodiscard]] const move_config& settings() const noexcept { return m_cfg; }

private:
    // The binary problem of one move: x_i = 0 (source side) keeps l_i, x_i = 1 (sink side) takes
    // alpha. The pairwise term of edge (u, v) has the values A = E(0,0) = w V(l_u, l_v),
    // B = E(0,1) = w V(l_u, alpha), C = E(1,0) = w V(alpha, l_v), D = E(1,1) = 0; it is graph-
    // representable because B + C >= A + D is the triangle inequality of V (Kolmogorov & Zabih
    // 2004). An end already labelled alpha cannot change, so its edge is a unary term of the other
    // end. Unary costs become t-links after subtracting their minimum, so all capacities are >= 0.
    template <class E, class T, class Flow>
    static void expansion_move(const E& e, const detail::pairwise_edges<T>& edges, const std::vector<T>& V,
                               std::span<const label_t> labels, label_t alpha, std::vector<T>& cost_keep,
                               std::vector<T>& cost_alpha, Flow& flow) {
        const index_t n = e.num_sites();
        const index_t L = e.num_labels();
        for (index_t i = 0; i < n; ++i) {
            const label_t l = labels[static_cast<std::size_t>(i)];
            cost_keep[static_cast<std::size_t>(i)] = e.data_cost(i, l);
            cost_alpha[static_cast<std::size_t>(i)] = e.data_cost(i, alpha);
        }
        flow.reset(n, edges.size());
        const T* vt = V.data();
        for (index_t k = 0; k < edges.size(); ++k) {
            const index_t u = edges.u[k], v = edges.v[k];
            const T w = edges.w[k];
            const label_t a = labels[static_cast<std::size_t>(u)], b = labels[static_cast<std::size_t>(v)];
            if (a == alpha && b == alpha) continue;
            if (a == alpha) {  // u is alpha whatever the move does
                cost_keep[static_cast<std::size_t>(v)] += w * vt[alpha * L + b];
                continue;
            }
            if (b == alpha) {
                cost_keep[static_cast<std::size_t>(u)] += w * vt[a * L + alpha];
                continue;
            }
            detail::add_binary_term(flow, u, v, w * vt[a * L + b], w * vt[a * L + alpha], w * vt[alpha * L + b], T(0),
                                    cost_keep.data(), cost_alpha.data());
        }
        for (index_t i = 0; i < n; ++i) {
            const T c0 = cost_keep[static_cast<std::size_t>(i)], c1 = cost_alpha[static_cast<std::size_t>(i)];
            const T lo = std::min(c0, c1);
            flow.add_tlink(i, c1 - lo, c0 - lo);  // cut source->i when i takes alpha, i->sink when it keeps
        }
        flow.solve();
    }

    move_config m_cfg{};
    move_stats m_stats{};
};

}  // namespace tessel
