// tessel/solver/energy.hpp: energies of discrete labelling problems, and their evaluation.
//
// A model holds the data costs D (a dense sites x labels array) and the pairwise term V(l, m);
// the graph supplies which sites interact and a weight w_uv per edge. The energy is
//   E(labels) = sum_i D_i(l_i) + sum_{arcs u->v with u < v} w_uv * V(l_u, l_v).
// Each edge counts once: of an undirected csr_graph's two arcs only u->v with u < v is read, the
// convention of pyGCO that GraPL relies on (METHODS.md 5.5). The pairwise tags potts and
// metric_pairwise select the models and the solvers' move constructions (alpha_expansion<potts>).
#pragma once
#include <cmath>
#include <span>
#include <vector>

#include "tessel/core/tensor.hpp"
#include "tessel/solver/concepts.hpp"

namespace tessel {

/// Pairwise tag: V(l, m) = lambda * [l != m].
struct potts {};
/// Pairwise tag: V(l, m) from a labels x labels matrix (a semi-metric; a metric for expansion).
struct metric_pairwise {};

namespace detail {
template <class T>
std::vector<T> checked_data_costs(const char* where, index_t sites, index_t labels, std::span<const T> data) {
    expects(sites >= 0, where, "negative site count ", sites);
    expects(labels >= 1, where, "need at least one label, got ", labels);
    expects(static_cast<index_t>(data.size()) == sites * labels, where, "data costs hold ", data.size(),
            " values, expected sites x labels = ", sites, " x ", labels, " = ", sites * labels);
    for (std::size_t k = 0; k < data.size(); ++k)
        expects(std::isfinite(data[k]), where, "data cost of site ", static_cast<index_t>(k) / labels, ", label ",
                static_cast<index_t>(k) % labels, " is not finite (", data[k], ")");
    return std::vector<T>(data.begin(), data.end());
}
template <class T>
std::span<const T> tensor_costs(const char* where, const tensor<T>& t) {
    expects(t.rank() == 2, where, "data costs must be a [sites, labels] tensor, got shape ", t.shape().str());
    return {t.data(), static_cast<std::size_t>(t.numel())};
}
}  // namespace detail

/// Data costs plus a Potts pairwise term lambda * [l != m].
template <class T = double>
class potts_energy {
public:
    using value_type = T;
    using pairwise_tag = potts;

    /// data: row-major sites x labels, data[i * labels + l] = D_i(l).
    potts_energy(index_t sites, index_t labels, std::span<const T> data, T lambda)
        : m_sites(sites), m_labels(labels),
          m_data(detail::checked_data_costs("tessel::potts_energy", sites, labels, data)), m_lambda(lambda) {
        expects(std::isfinite(lambda) && lambda >= 0, "tessel::potts_energy", "lambda must be finite and >= 0, got ",
                lambda);
    }
    /// data: a [sites, labels] tensor.
    potts_energy(const tensor<T>& data, T lambda)
        : potts_energy(data.rank() == 2 ? data.dim(0) : 0, data.rank() == 2 ? data.dim(1) : 0,
                       detail::tensor_costs("tessel::potts_energy", data), lambda) {}

    [[nodiscard]] index_t num_sites() const noexcept { return m_sites; }
    [[nodiscard]] index_t num_labels() const noexcept { return m_labels; }
    [[nodiscard]] T data_cost(index_t site, label_t l) const noexcept { return m_data[site * m_labels + l]; }
    [[nodiscard]] T pairwise(label_t l, label_t m) const noexcept { return l == m ? T(0) : m_lambda; }
    [[nodiscard]] T lambda() const noexcept { return m_lambda; }
    /// The sites x labels cost array.
    [[nodiscard]] const T* data_costs() const noexcept { return m_data.data(); }

private:
    index_t m_sites, m_labels;
    std::vector<T> m_data;
    T m_lambda;
};

/// Data costs plus a general pairwise term V(l, m) given as a labels x labels matrix.
template <class T = double>
class metric_energy {
public:
    using value_type = T;
    using pairwise_tag = metric_pairwise;

    /// data: row-major sites x labels; v: row-major labels x labels, v[l * labels + m] = V(l, m).
    /// V must be a semi-metric: finite, V(l, l) = 0, V(l, m) = V(m, l) >= 0.
    metric_energy(index_t sites, index_t labels, std::span<const T> data, std::span<const T> v)
        : m_sites(sites), m_labels(labels),
          m_data(detail::checked_data_costs("tessel::metric_energy", sites, labels, data)) {
        constexpr auto where = "tessel::metric_energy";
        expects(static_cast<index_t>(v.size()) == labels * labels, where, "pairwise matrix holds ", v.size(),
                " values, expected labels x labels = ", labels * labels);
        for (index_t l = 0; l < labels; ++l)
            for (index_t m = 0; m < labels; ++m) {
                const T x = v[static_cast<std::size_t>(l * labels + m)];
                expects(std::isfinite(x) && x >= 0, where, "V(", l, ", ", m, ") = ", x, " must be finite and >= 0");
                expects(x == v[static_cast<std::size_t>(m * labels + l)], where, "V is not symmetric: V(", l, ", ", m,
                        ") = ", x, " but V(", m, ", ", l, ") = ", v[static_cast<std::size_t>(m * labels + l)]);
                if (l == m) expects(x == 0, where, "V(", l, ", ", l, ") = ", x, " must be 0");
            }
        m_v.assign(v.begin(), v.end());
    }
    metric_energy(const tensor<T>& data, std::span<const T> v)
        : metric_energy(data.rank() == 2 ? data.dim(0) : 0, data.rank() == 2 ? data.dim(1) : 0,
                        detail::tensor_costs("tessel::metric_energy", data), v) {}

    [[nodiscard]] index_t num_sites() const noexcept { return m_sites; }
    [[nodiscard]] index_t num_labels() const noexcept { return m_labels; }
    [[nodiscard]] T data_cost(index_t site, label_t l) const noexcept { return m_data[site * m_labels + l]; }
    [[nodiscard]] T pairwise(label_t l, label_t m) const noexcept { return m_v[l * m_labels + m]; }
    [[nodiscard]] const T* data_costs() const noexcept { return m_data.data(); }

    /// Whether V satisfies the triangle inequality V(a, c) <= V(a, b) + V(b, c) (up to rounding),
    /// which alpha-expansion needs for its moves to be graph-representable.
    [[nodiscard]] bool is_metric() const noexcept {
        for (index_t a = 0; a < m_labels; ++a)
            for (index_t b = 0; b < m_labels; ++b)
                for (index_t c = 0; c < m_labels; ++c) {
                    const T ac = m_v[a * m_labels + c], ab = m_v[a * m_labels + b], bc = m_v[b * m_labels + c];
                    if (ac > (ab + bc) * (T(1) + T(1e-12))) return false;
                }
        return true;
    }

private:
    index_t m_sites, m_labels;
    std::vector<T> m_data;
    std::vector<T> m_v;
};

static_assert(PottsEnergyModel<potts_energy<double>> && EnergyModel<metric_energy<float>>);
static_assert(!PottsEnergyModel<metric_energy<double>>);

namespace detail {
/// The pairwise edges a solver optimises: arcs u->v with u < v, weights checked finite, >= 0.
template <class T>
struct pairwise_edges {
    std::vector<index_t> u, v;
    std::vector<T> w;
    [[nodiscard]] index_t size() const noexcept { return static_cast<index_t>(u.size()); }
};

template <class T, Graph G>
pairwise_edges<T> collect_edges(const G& g, index_t sites, const char* where) {
    expects(static_cast<index_t>(g.num_nodes()) == sites, where, "graph has ", g.num_nodes(),
            " nodes but the energy has ", sites, " sites");
    pairwise_edges<T> out;
    for (index_t a = 0; a < sites; ++a) {
        const auto& nb = g.neighbors(a);
        const auto& wt = g.weights(a);
        expects(std::size(nb) == std::size(wt), where, "node ", a, " has ", std::size(nb), " neighbours but ",
                std::size(wt), " weights");
        for (std::size_t k = 0; k < std::size(nb); ++k) {
            const auto b = static_cast<index_t>(nb[k]);
            expects(b >= 0 && b < sites, where, "arc ", a, "->", b, " points outside [0, ", sites, ")");
            const auto w = static_cast<T>(wt[k]);
            expects(std::isfinite(w) && w >= 0, where, "arc ", a, "->", b, " has weight ", w,
                    "; graph-cut solvers need finite weights >= 0");
            if (b <= a) continue;
            out.u.push_back(a);
            out.v.push_back(b);
            out.w.push_back(w);
        }
    }
    return out;
}

template <EnergyModel E>
void check_labels(const E& e, std::span<const label_t> labels, const char* where) {
    expects(static_cast<index_t>(labels.size()) == e.num_sites(), where, "labels hold ", labels.size(),
            " sites, the energy has ", e.num_sites());
    for (std::size_t i = 0; i < labels.size(); ++i)
        expects(labels[i] >= 0 && labels[i] < e.num_labels(), where, "label ", labels[i], " of site ", i,
                " is outside [0, ", e.num_labels(), ")");
}

template <EnergyModel E>
typename E::value_type energy_of(const E& e, const pairwise_edges<typename E::value_type>& edges,
                                 std::span<const label_t> labels) {
    using T = typename E::value_type;
    T data = 0, pair = 0;
    for (index_t i = 0; i < e.num_sites(); ++i) data += e.data_cost(i, labels[static_cast<std::size_t>(i)]);
    for (index_t k = 0; k < edges.size(); ++k) {
        const label_t a = labels[static_cast<std::size_t>(edges.u[k])], b = labels[static_cast<std::size_t>(edges.v[k])];
        if (a != b) pair += edges.w[k] * e.pairwise(a, b);
    }
    return data + pair;
}
}  // namespace detail

/// E(labels) = sum_i D_i(l_i) + sum_{arcs u->v, u < v} w_uv V(l_u, l_v). Throws tessel::error when
/// the sizes disagree, a label is out of range or a weight is negative or not finite.
template <EnergyModel E, Graph G>
typename E::value_type total_energy(const E& e, const G& g, std::span<const label_t> labels) {
    constexpr auto where = "tessel::total_energy";
    detail::check_labels(e, labels, where);
    const auto edges = detail::collect_edges<typename E::value_type>(g, e.num_sites(), where);
    return detail::energy_of(e, edges, labels);
}

}  // namespace tessel
