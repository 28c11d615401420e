// tessel/loss/soft_cut.hpp: the soft superpixel cut of Deep Superpixel Cut (Lin, Zhong & Lu 2020,
// Eq. 5-8; METHODS.md §7.1-7.2).
//
// For a feature map F ([1, K, H, W]) and a superpixel map S with M regions:
//   P = softmax_K(F) per pixel;
//   G_j = mean of F over region j (features before the softmax, Eq. 5);
//   Q_j = mean of P over region j (Eq. 6), or with q_from_softmax_of_g, Q_j = softmax(G_j)
//         (the form Section III-C differentiates);
//   W_ij = exp(-|G_i - G_j|^2 / sigma^2) when |l(i) - l(j)| < d, else 0 (Eq. 7), l = the region's
//         pixel centroid, d = d_factor * sqrt(N / M) (paper: 2), diagonal included (w_ii = 1);
//   L2 = sum_k Q_k^T W (1 - Q_k)   (Eq. 8).
// W is held constant in the gradient (Eq. 11 of the paper, dL2/dQ_k = W 1 - 2 W Q_k for the
// symmetric W), so dL2/dF flows through Q only: to every pixel of region j through the mean and
// the pixel softmax, or, with q_from_softmax_of_g, through the region softmax and the mean of F.
//
// soft_cut_graph holds what depends on S alone (region of each pixel, sizes, the neighbour
// pairs within d), built once per image; soft_cut::bind holds the per-step workspaces (the
// softmax layers come from nn/activation.hpp). Host backends only: the region sums are scatters.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "tessel/core/image.hpp"
#include "tessel/loss/concepts.hpp"
#include "tessel/nn/activation.hpp"

namespace tessel::loss {

/// The superpixel graph of the soft cut: regions, their sizes and the centroid pairs within d.
struct soft_cut_graph {
    index_t width = 0, height = 0, regions = 0;
    double distance = 0;                 ///< d
    std::vector<label_t> region;         ///< per pixel, 0..regions-1
    std::vector<index_t> size;           ///< pixels per region
    std::vector<double> cx, cy;          ///< centroids (pixels)
    std::vector<index_t> pair_i, pair_j; ///< ordered pairs (i, j) with |l(i) - l(j)| < d, i == j included

    /// From a superpixel map (any labels; relabelled 0..M-1 in order of first appearance).
    static soft_cut_graph build(const label_map& sp, double d_factor = 2.0) {
        constexpr auto where = "tessel::loss::soft_cut_graph";
        expects(!sp.empty(), where, "empty superpixel map");
        expects(std::isfinite(d_factor) && d_factor > 0, where, "d_factor must be positive and finite, got ", d_factor);
        soft_cut_graph g;
        g.width = sp.width();
        g.height = sp.height();
        label_map m = sp;
        g.regions = relabel_sequential(m);
        g.region.assign(m.values().begin(), m.values().end());
        const auto M = static_cast<std::size_t>(g.regions);
        g.size.assign(M, 0);
        g.cx.assign(M, 0.0);
        g.cy.assign(M, 0.0);
        for (index_t y = 0; y < g.height; ++y)
            for (index_t x = 0; x < g.width; ++x) {
                const auto r = static_cast<std::size_t>(g.region[static_cast<std::size_t>(y * g.width + x)]);
                ++g.size[r];
                g.cx[r] += static_cast<double>(x);
                g.cy[r] += static_cast<double>(y);
            }
        for (std::size_t r = 0; r < M; ++r) {
            g.cx[r] /= static_cast<double>(g.size[r]);
            g.cy[r] /= static_cast<double>(g.size[r]);
        }
        g.distance = d_factor * std::sqrt(static_cast<double>(sp.size()) / static_cast<double>(g.regions));
        const double d2 = g.distance * g.distance;
        for (std::size_t i = 0; i < M; ++i)
            for (std::size_t j = 0; j < M; ++j) {
                const double dx = g.cx[i] - g.cx[j], dy = g.cy[i] - g.cy[j];
                if (dx * dx + dy * dy < d2) {
                    g.pair_i.push_back(static_cast<index_t>(i));
                    g.pair_j.push_back(static_cast<index_t>(j));
                }
            }
        return g;
    }
};

struct soft_cut {
    static constexpr const char* name = "tessel::loss::soft_cut";
    struct config {
        double sigma = 10.0;              ///< affinity bandwidth of Eq. 7
        bool q_from_softmax_of_g = false; ///< Q = softmax(G) instead of the mean of P
    };

    template <HostBackend B, class T = float>
    class bind {
    public:
        explicit bind(const config& cfg = {}) : m_cfg(cfg) {
            expects(std::isfinite(cfg.sigma) && cfg.sigma > 0, name, "sigma must be positive and finite, got ",
                    cfg.sigma);
        }

        /// L2 of F on graph g; writes weight * dL2/dF into dF (accumulating when asked).
        double value_and_grad(const tensor<T, B>& F, const soft_cut_graph& g, tensor<T, B>& dF,
                              const grad_options& o = {}) {
            const auto target = detail::prepare_grad(name, F, dF, o);
            return run(F, g, target.data, o);
        }
        double value(const tensor<T, B>& F, const soft_cut_graph& g) { return run(F, g, nullptr, {}); }

        /// W of the last call, as (pair index) -> weight, for tests and reports.
        [[nodiscard]] const std::vector<double>& last_weights() const noexcept { return m_w; }

    private:
        double run(const tensor<T, B>& F, const soft_cut_graph& g, T* dF, const grad_options& o) {
            expects(F.rank() == 4 && F.dim(0) == 1 && F.numel() > 0, name,
                    "expects features of shape [1, K, H, W], got ", F.shape().str());
            expects(F.dim(2) == g.height && F.dim(3) == g.width, name, "features are ", F.dim(3), "x", F.dim(2),
                    " but the superpixel graph is ", g.width, "x", g.height);
            const index_t K = F.dim(1), P = g.width * g.height, M = g.regions;
            const auto MK = static_cast<std::size_t>(M * K);
            // G: region means of F; Q: region means of P (or softmax of G).
            m_G.assign(MK, 0.0);
            for (index_t k = 0; k < K; ++k) {
                const T* f = F.data() + k * P;
                for (index_t i = 0; i < P; ++i) m_G[static_cast<std::size_t>(g.region[static_cast<std::size_t>(i)] * K + k)] += static_cast<double>(f[i]);
            }
            for (index_t j = 0; j < M; ++j)
                for (index_t k = 0; k < K; ++k) m_G[static_cast<std::size_t>(j * K + k)] /= static_cast<double>(g.size[static_cast<std::size_t>(j)]);
            m_Q.resize(shape{M, K});
            if (m_cfg.q_from_softmax_of_g) {
                m_Gt.resize(shape{M, K});
                for (std::size_t e = 0; e < MK; ++e) m_Gt.data()[e] = static_cast<T>(m_G[e]);
                const tensor<T, B>& q = m_region_softmax.forward(m_ctx, m_Gt);
                std::copy(q.data(), q.data() + q.numel(), m_Q.data());
            } else {
                const tensor<T, B>& p = m_pixel_softmax.forward(m_ctx, F);
                std::vector<double> acc(MK, 0.0);
                for (index_t k = 0; k < K; ++k) {
                    const T* pk = p.data() + k * P;
                    for (index_t i = 0; i < P; ++i) acc[static_cast<std::size_t>(g.region[static_cast<std::size_t>(i)] * K + k)] += static_cast<double>(pk[i]);
                }
                for (index_t j = 0; j < M; ++j)
                    for (index_t k = 0; k < K; ++k)
                        m_Q.data()[j * K + k] = static_cast<T>(acc[static_cast<std::size_t>(j * K + k)] / static_cast<double>(g.size[static_cast<std::size_t>(j)]));
            }
            // W over the neighbour pairs, from G (a constant of the gradient).
            const double inv_s2 = 1.0 / (m_cfg.sigma * m_cfg.sigma);
            const std::size_t pairs = g.pair_i.size();
            m_w.resize(pairs);
            for (std::size_t e = 0; e < pairs; ++e) {
                const std::size_t a = static_cast<std::size_t>(g.pair_i[e] * K), b = static_cast<std::size_t>(g.pair_j[e] * K);
                double d = 0;
                for (index_t k = 0; k < K; ++k) {
                    const double t = m_G[a + static_cast<std::size_t>(k)] - m_G[b + static_cast<std::size_t>(k)];
                    d += t * t;
                }
                m_w[e] = std::exp(-d * inv_s2);
            }
            // L2 = sum_e w_e sum_k Q_ik (1 - Q_jk); dL2/dQ_ik = sum_j W_ij (1 - 2 Q_jk).
            double L = 0;
            std::vector<double> dQ(dF != nullptr ? MK : 0, 0.0);
            const T* Q = m_Q.data();
            for (std::size_t e = 0; e < pairs; ++e) {
                const index_t i = g.pair_i[e], j = g.pair_j[e];
                double s = 0;
                for (index_t k = 0; k < K; ++k) {
                    const double qi = static_cast<double>(Q[i * K + k]), qj = static_cast<double>(Q[j * K + k]);
                    s += qi * (1.0 - qj);
                    if (dF != nullptr) dQ[static_cast<std::size_t>(i * K + k)] += m_w[e] * (1.0 - 2.0 * qj);
                }
                L += m_w[e] * s;
            }
            if (dF == nullptr) return L;
            // Back to F.
            m_dpix.resize(F.shape());
            if (m_cfg.q_from_softmax_of_g) {
                m_dQt.resize(shape{M, K});
                for (std::size_t e = 0; e < MK; ++e) m_dQt.data()[e] = static_cast<T>(dQ[e]);
                const tensor<T, B>& dG = m_region_softmax.backward(m_ctx, m_dQt);
                for (index_t k = 0; k < K; ++k)
                    for (index_t i = 0; i < P; ++i) {
                        const auto j = g.region[static_cast<std::size_t>(i)];
                        m_dpix.data()[k * P + i] = static_cast<T>(static_cast<double>(dG.data()[j * K + k]) /
                                                                  static_cast<double>(g.size[static_cast<std::size_t>(j)]));
                    }
                write(m_dpix, dF, o);
            } else {
                for (index_t k = 0; k < K; ++k)
                    for (index_t i = 0; i < P; ++i) {
                        const auto j = g.region[static_cast<std::size_t>(i)];
                        m_dpix.data()[k * P + i] = static_cast<T>(dQ[static_cast<std::size_t>(j * K + k)] /
                                                                  static_cast<double>(g.size[static_cast<std::size_t>(j)]));
                    }
                write(m_pixel_softmax.backward(m_ctx, m_dpix), dF, o);
            }
            return L;
        }
        static void write(const tensor<T, B>& g, T* dF, const grad_options& o) {
            const T w = static_cast<T>(o.weight);
            for (index_t i = 0; i < g.numel(); ++i) dF[i] = o.accumulate ? dF[i] + w * g.data()[i] : w * g.data()[i];
        }

        config m_cfg;
        nn::context<B> m_ctx;
        typename nn::softmax::template bind<B, T> m_pixel_softmax, m_region_softmax;
        std::vector<double> m_G, m_w;
        tensor<T, B> m_Q, m_Gt, m_dQt, m_dpix;
    };
};

}  // namespace tessel::loss
