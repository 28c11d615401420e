// tessel/solver/alpha_beta_swap.hpp: alpha-beta swap, the move-making graph-cut minimiser of
// Boykov, Veksler & Zabih ("Fast Approximate Energy Minimization via Graph Cuts", IEEE TPAMI
// 23(11), 2001).
//
// One move lets the sites labelled alpha or beta exchange those two labels freely; every other
// site keeps its label. The best move is a minimum cut over the alpha/beta sites (Boykov-
// Kolmogorov max-flow). Cycling over all label pairs until no move helps gives a local minimum.
// Needs only a semi-metric V. It is GraPL's default graph step (METHODS.md 5.5). CPU only.
#pragma once
#include <algorithm>
#include <span>
#include <type_traits>
#include <vector>

#include "tessel/solver/move_making.hpp"

namespace tessel {

/// Alpha-beta swap. Pairwise: potts or metric_pairwise (V a semi-metric; checked).
/// Order: order::sequential (alpha ascending, beta descending, alpha < beta). MaxFlow: maxflow::bk.
template <class Pairwise = potts, class Order = order::sequential, class MaxFlow = maxflow::bk>
class alpha_beta_swap {
    static_assert(std::is_same_v<Order, order::sequential>, "tessel::alpha_beta_swap: only order::sequential exists");

public:
    using config = move_config;

    alpha_beta_swap() = default;
    explicit alpha_beta_swap(move_config cfg) : m_cfg(std::move(cfg)) {}

    /// Minimises the energy of e over the edges of g, starting from and writing to `labels`.
    /// Returns the final energy; a move is accepted only when it strictly lowers the energy.
    template <EnergyModel E, Graph G>
    typename E::value_type minimize(const E& e, const G& g, std::span<label_t> labels) {
        using T = typename E::value_type;
        constexpr auto where = "tessel::alpha_beta_swap::minimize";
        detail::check_config(m_cfg, where);
        detail::check_labels(e, std::span<const label_t>(labels.data(), labels.size()), where);
        const auto edges = detail::collect_edges<T>(g, e.num_sites(), where);
        const auto V = detail::pairwise_table<Pairwise>(e, where, false);
        const index_t n = e.num_sites();
        const auto L = static_cast<label_t>(e.num_labels());

        std::vector<label_t> candidate(labels.begin(), labels.end());
        T energy = detail::energy_of(e, edges, std::span<const label_t>(labels.data(), labels.size()));
        m_stats = move_stats{};
        m_stats.initial_energy = static_cast<double>(energy);
        m_node.assign(static_cast<std::size_t>(n), -1);
        typename MaxFlow::template solver<T> flow;
        std::vector<T> cost_alpha, cost_beta;

        for (int cycle = 0; cycle < m_cfg.max_cycles; ++cycle) {
            ++m_stats.cycles;
            bool improved = false;
            for (label_t alpha = 0; alpha < L; ++alpha)
                for (label_t beta = static_cast<label_t>(L - 1); beta > alpha; --beta) {
                    if (!swap_move(e, edges, V, labels, alpha, beta, cost_alpha, cost_beta, flow)) continue;
                    for (std::size_t s = 0; s < m_sites.size(); ++s)
                        candidate[static_cast<std::size_t>(m_sites[s])] =
                            flow.on_source_side(static_cast<index_t>(s)) ? alpha : beta;
                    ++m_stats.moves_tried;
                    const T moved = detail::energy_of(e, edges, std::span<const label_t>(candidate));
                    if (moved < energy) {
                        std::copy(candidate.begin(), candidate.end(), labels.begin());
                        energy = moved;
                        ++m_stats.moves_accepted;
                        improved = true;
                    } else {
                        for (const index_t i : m_sites)
                            candidate[static_cast<std::size_t>(i)] = labels[static_cast<std::size_t>(i)];
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
    // The binary problem of one move over the sites labelled alpha or beta: x = 0 (source side)
    // gives alpha, x = 1 (sink side) beta. An edge to a site outside the move is a unary term; an
    // edge inside it costs w V(alpha, beta) when its ends differ, i.e. the two arcs u -> v and
    // v -> u with that capacity. Returns false when no site has alpha or beta (nothing to move).
    template <class E, class T, class Flow>
    bool swap_move(const E& e, const detail::pairwise_edges<T>& edges, const std::vector<T>& V,
                   std::span<const label_t> labels, label_t alpha, label_t beta, std::vector<T>& cost_alpha,
                   std::vector<T>& cost_beta, Flow& flow) {
        const index_t n = e.num_sites();
        const index_t L = e.num_labels();
        m_sites.clear();
        for (index_t i = 0; i < n; ++i) {
            const label_t l = labels[static_cast<std::size_t>(i)];
            if (l == alpha || l == beta) {
                m_node[static_cast<std::size_t>(i)] = static_cast<index_t>(m_sites.size());
                m_sites.push_back(i);
            } else {
                m_node[static_cast<std::size_t>(i)] = -1;
            }
        }
        if (m_sites.empty()) return false;
        const auto m = static_cast<std::size_t>(m_sites.size());
        cost_alpha.resize(m);
        cost_beta.resize(m);
        for (std::size_t s = 0; s < m; ++s) {
            cost_alpha[s] = e.data_cost(m_sites[s], alpha);
            cost_beta[s] = e.data_cost(m_sites[s], beta);
        }
        flow.reset(static_cast<index_t>(m));
        const T* vt = V.data();
        const T v_ab = vt[alpha * L + beta];
        for (index_t k = 0; k < edges.size(); ++k) {
            const index_t u = edges.u[k], v = edges.v[k];
            const index_t nu = m_node[static_cast<std::size_t>(u)], nv = m_node[static_cast<std::size_t>(v)];
            if (nu < 0 && nv < 0) continue;
            const T w = edges.w[k];
            if (nu >= 0 && nv >= 0) {
                if (w > 0 && v_ab > 0) flow.add_nlink(nu, nv, w * v_ab, w * v_ab);
            } else if (nu >= 0) {
                const label_t b = labels[static_cast<std::size_t>(v)];
                cost_alpha[static_cast<std::size_t>(nu)] += w * vt[alpha * L + b];
                cost_beta[static_cast<std::size_t>(nu)] += w * vt[beta * L + b];
            } else {
                const label_t a = labels[static_cast<std::size_t>(u)];
                cost_alpha[static_cast<std::size_t>(nv)] += w * vt[a * L + alpha];
                cost_beta[static_cast<std::size_t>(nv)] += w * vt[a * L + beta];
            }
        }
        for (std::size_t s = 0; s < m; ++s) {
            const T c0 = cost_alpha[s], c1 = cost_beta[s];
            const T lo = std::min(c0, c1);
            flow.add_tlink(static_cast<index_t>(s), c1 - lo, c0 - lo);
        }
        flow.solve();
        return true;
    }

    move_config m_cfg{};
    move_stats m_stats{};
    // Per-move scratch, kept between moves to avoid reallocating: site -> move node (-1 when the
    // site is not in the move) and move node -> site.
    std::vector<index_t> m_node, m_sites;
};

}  // namespace tessel
