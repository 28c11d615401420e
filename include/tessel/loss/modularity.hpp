// tessel/loss/modularity.hpp: graph-clustering losses on a soft assignment S [N, K]: the DMoN
// modularity loss (Tsitsulin et al. 2023) and the normalised-cut loss of DeepCut, as UnSegGNet
// uses them (METHODS.md §6.4).
//
// With a dense adjacency A [N, N] (self-loops included), d = A 1 and m:
//   L_mod = -Tr(S^T B S) / (2m),  B = A - d d^T / (2m),
// so Tr(S^T B S) = sum_c S_c^T A S_c - (d^T S_c)^2 / (2m), and
//   dL_mod/dS = -((A + A^T) S - d (d^T S) / m) / (2m).
// dmon_form::coded is UnSegGNet's code: m = 1^T A 1 (half the textbook null model) and the collapse
// term (sqrt(k') / n) ||sum_c S[:, c]||_2 - 1 with k' = ||I_K||_F = sqrt(K), summed over the
// *cluster* axis: for a row-stochastic S it is the constant 2^(1/4)/sqrt(n) - 1 (K = 2) and has zero
// gradient there, but it is computed (value and gradient) for any S. dmon_form::paper is DMoN's
// definition: m = 1^T A 1 / 2 and (sqrt(K) / n) ||sum_i S[i, :]||_2 - 1 over the cluster sizes.
// normalized_cut: L = -Tr(S^T A S) / Tr(S^T D S) + ||S^T S / ||S^T S||_F - I_K / sqrt(K)||_F,
// D = diag(A 1). All sums are taken in double; the products A S are GEMMs.
#pragma once
#include <cmath>
#include <vector>

#include "tessel/backend/parallel.hpp"
#include "tessel/core/tensor.hpp"
#include "tessel/ops/gemm.hpp"

namespace tessel::loss {

enum class dmon_form { coded, paper };

namespace detail {
template <class T, Backend B>
void check_assignment(std::string_view where, const tensor<T, B>& s, const tensor<T, B>& a) {
    expects(s.rank() == 2 && s.numel() > 0, where, "expects a non-empty assignment S [N, K], got ", s.shape().str());
    expects(a.rank() == 2 && a.dim(0) == s.dim(0) && a.dim(1) == s.dim(0), where, "adjacency ", a.shape().str(),
            " does not match S ", s.shape().str());
}
/// out = (A + A^T) S (2 A S when A is symmetric).
template <class T, Backend B>
void sym_product(const tensor<T, B>& a, const tensor<T, B>& s, bool symmetric, tensor<T, B>& out) {
    const index_t N = s.dim(0), K = s.dim(1);
    out.resize(s.shape());
    ops::gemm(B{}, ops::gemm_args<T>{.m = N, .n = K, .k = N, .alpha = symmetric ? T(2) : T(1), .a = a.data(), .lda = N,
                                     .b = s.data(), .ldb = K, .c = out.data(), .ldc = K});
    if (!symmetric)
        ops::gemm(B{}, ops::gemm_args<T>{.trans_a = ops::op::trans, .m = N, .n = K, .k = N, .a = a.data(), .lda = N,
                                         .b = s.data(), .ldb = K, .beta = T(1), .c = out.data(), .ldc = K});
}
}  // namespace detail

/// The row sums d = A 1 and their total, computed once per graph (training calls the loss once per
/// epoch on the same A).
struct graph_degrees {
    std::vector<double> d;
    double total = 0;
    template <class T, Backend B>
    static graph_degrees of(const tensor<T, B>& a) {
        expects(a.rank() == 2 && a.dim(0) == a.dim(1), "tessel::loss::graph_degrees", "expects a square adjacency, got ",
                a.shape().str());
        const index_t N = a.dim(0);
        const std::vector<T> av = a.to_vector();
        graph_degrees g;
        g.d.assign(static_cast<std::size_t>(N), 0.0);
        for (index_t i = 0; i < N; ++i) {
            double r = 0;
            for (index_t j = 0; j < N; ++j) r += static_cast<double>(av[static_cast<std::size_t>(i * N + j)]);
            g.d[static_cast<std::size_t>(i)] = r;
            g.total += r;
        }
        return g;
    }
};

/// The DMoN loss; value_and_grad(S, A, dS) returns L_mod + L_col and overwrites dS.
struct dmon {
    dmon_form form = dmon_form::coded;
    bool symmetric = true;  ///< A == A^T (one GEMM instead of two)

    template <class T, Backend B>
    double value_and_grad(const tensor<T, B>& s, const tensor<T, B>& a, tensor<T, B>& ds) const {
        return value_and_grad(s, a, graph_degrees::of(a), ds);
    }
    /// With the degrees of A precomputed (graph_degrees::of(a)).
    template <class T, Backend B>
    double value_and_grad(const tensor<T, B>& s, const tensor<T, B>& a, const graph_degrees& deg, tensor<T, B>& ds) const {
        constexpr auto where = "tessel::loss::dmon";
        detail::check_assignment(where, s, a);
        const index_t N = s.dim(0), K = s.dim(1);
        const std::vector<T> sv = s.to_vector();
        const std::vector<double>& d = deg.d;
        const double total = deg.total;
        expects(static_cast<index_t>(d.size()) == N, where, "degrees of ", d.size(), " nodes for ", N);
        expects(std::isfinite(total) && total > 0, where, "the adjacency's entries sum to ", total, " (need > 0)");
        const double m = form == dmon_form::coded ? total : 0.5 * total;
        tensor<T, B> as;
        detail::sym_product(a, s, symmetric, as);  // (A + A^T) S
        const std::vector<T> asv = as.to_vector();
        std::vector<double> ds_c(static_cast<std::size_t>(K), 0.0);  // d^T S_c
        double tr = 0;
        for (index_t i = 0; i < N; ++i)
            for (index_t c = 0; c < K; ++c) {
                const double sic = static_cast<double>(sv[static_cast<std::size_t>(i * K + c)]);
                ds_c[static_cast<std::size_t>(c)] += d[static_cast<std::size_t>(i)] * sic;
                tr += 0.5 * sic * static_cast<double>(asv[static_cast<std::size_t>(i * K + c)]);  // S^T A S
            }
        double null_term = 0;
        for (double v : ds_c) null_term += v * v;
        const double mod = -(tr - null_term / (2 * m)) / (2 * m);

        // Collapse term: the norm of the row sums (coded) or of the column sums (paper).
        const bool rows = form == dmon_form::coded;
        const double factor = (rows ? std::sqrt(std::sqrt(static_cast<double>(K))) : std::sqrt(static_cast<double>(K))) /
                              static_cast<double>(N);
        std::vector<double> sums(static_cast<std::size_t>(rows ? N : K), 0.0);
        for (index_t i = 0; i < N; ++i)
            for (index_t c = 0; c < K; ++c)
                sums[static_cast<std::size_t>(rows ? i : c)] += static_cast<double>(sv[static_cast<std::size_t>(i * K + c)]);
        double norm = 0;
        for (double v : sums) norm += v * v;
        norm = std::sqrt(norm);
        const double col = factor * norm - 1.0;

        std::vector<T> g(static_cast<std::size_t>(N * K));
        for (index_t i = 0; i < N; ++i)
            for (index_t c = 0; c < K; ++c) {
                const auto k = static_cast<std::size_t>(i * K + c);
                double v = -(static_cast<double>(asv[k]) - d[static_cast<std::size_t>(i)] * ds_c[static_cast<std::size_t>(c)] / m) / (2 * m);
                if (norm > 0) v += factor * sums[static_cast<std::size_t>(rows ? i : c)] / norm;
                g[k] = static_cast<T>(v);
            }
        ds.assign(s.shape(), g.begin(), g.end());
        return mod + col;
    }
    template <class T, Backend B>
    double value(const tensor<T, B>& s, const tensor<T, B>& a) const {
        tensor<T, B> g;
        return value_and_grad(s, a, g);
    }
};

/// DeepCut's normalised-cut loss with its orthogonality term (METHODS.md §6.4, option "NCUT").
struct normalized_cut {
    bool symmetric = true;

    template <class T, Backend B>
    double value_and_grad(const tensor<T, B>& s, const tensor<T, B>& a, tensor<T, B>& ds) const {
        return value_and_grad(s, a, graph_degrees::of(a), ds);
    }
    template <class T, Backend B>
    double value_and_grad(const tensor<T, B>& s, const tensor<T, B>& a, const graph_degrees& deg, tensor<T, B>& ds) const {
        constexpr auto where = "tessel::loss::normalized_cut";
        detail::check_assignment(where, s, a);
        const index_t N = s.dim(0), K = s.dim(1);
        const std::vector<T> sv = s.to_vector();
        const std::vector<double>& d = deg.d;
        expects(static_cast<index_t>(d.size()) == N, where, "degrees of ", d.size(), " nodes for ", N);
        tensor<T, B> as;
        detail::sym_product(a, s, symmetric, as);
        const std::vector<T> asv = as.to_vector();
        double num = 0, den = 0;
        std::vector<double> p(static_cast<std::size_t>(K * K), 0.0);  // S^T S
        for (index_t i = 0; i < N; ++i)
            for (index_t c = 0; c < K; ++c) {
                const double sic = static_cast<double>(sv[static_cast<std::size_t>(i * K + c)]);
                num += 0.5 * sic * static_cast<double>(asv[static_cast<std::size_t>(i * K + c)]);
                den += d[static_cast<std::size_t>(i)] * sic * sic;
                for (index_t e = 0; e < K; ++e)
                    p[static_cast<std::size_t>(c * K + e)] += sic * static_cast<double>(sv[static_cast<std::size_t>(i * K + e)]);
            }
        expects(den > 0 && std::isfinite(den), where, "Tr(S^T D S) is ", den, " (need > 0)");
        double pn = 0;
        for (double v : p) pn += v * v;
        pn = std::sqrt(pn);
        expects(pn > 0, where, "S^T S is zero");
        const double inv_sqrt_k = 1.0 / std::sqrt(static_cast<double>(K));
        std::vector<double> q(p.size());
        double f = 0, pq = 0;
        for (index_t c = 0; c < K; ++c)
            for (index_t e = 0; e < K; ++e) {
                const auto k = static_cast<std::size_t>(c * K + e);
                q[k] = p[k] / pn - (c == e ? inv_sqrt_k : 0.0);
                f += q[k] * q[k];
                pq += p[k] * q[k];
            }
        f = std::sqrt(f);
        // dL_orth/dP = (Q / |P| - P <P, Q> / |P|^3) / f; dL/dS = S (G + G^T)
        std::vector<double> gp(p.size(), 0.0);
        if (f > 0)
            for (std::size_t k = 0; k < p.size(); ++k) gp[k] = (q[k] / pn - p[k] * pq / (pn * pn * pn)) / f;
        std::vector<T> g(static_cast<std::size_t>(N * K));
        for (index_t i = 0; i < N; ++i)
            for (index_t c = 0; c < K; ++c) {
                const auto k = static_cast<std::size_t>(i * K + c);
                const double sic = static_cast<double>(sv[k]);
                double v = -(static_cast<double>(asv[k]) * den - num * 2 * d[static_cast<std::size_t>(i)] * sic) / (den * den);
                for (index_t e = 0; e < K; ++e)
                    v += static_cast<double>(sv[static_cast<std::size_t>(i * K + e)]) *
                         (gp[static_cast<std::size_t>(e * K + c)] + gp[static_cast<std::size_t>(c * K + e)]);
                g[k] = static_cast<T>(v);
            }
        ds.assign(s.shape(), g.begin(), g.end());
        return -num / den + f;
    }
    template <class T, Backend B>
    double value(const tensor<T, B>& s, const tensor<T, B>& a) const {
        tensor<T, B> g;
        return value_and_grad(s, a, g);
    }
};

}  // namespace tessel::loss
