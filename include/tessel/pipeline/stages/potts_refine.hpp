// tessel/pipeline/stages/potts_refine.hpp: a Potts graph cut over the class probabilities of a
// set of sites (pixels, patches, superpixels), the refinement step between training rounds.
//
//   E(l) = sum_i -ln max(P_i(l_i), p_min) + lambda * sum_{edges i<j} w_ij [l_i != l_j]
// minimised by a move-making solver (alpha-beta swap by default, as GraPL's code; alpha-expansion
// as an option). GraPL (METHODS.md 5.5) runs it on its 32 x 32 patch grid with the colour
// affinities of its Eq. 4; any stage that has per-site probabilities and an affinity graph can
// reuse it. pyGCO's integer conversion (5.5.6) is an option, on by default for GraPL's parity.
#pragma once
#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

#include "tessel/graph/csr_graph.hpp"
#include "tessel/solver/alpha_beta_swap.hpp"
#include "tessel/solver/alpha_expansion.hpp"
#include "tessel/solver/energy.hpp"

namespace tessel::stages {

struct potts_refine_options {
    double lambda = 64.0;               ///< pairwise weight (GraPL: 64)
    bool integer_energies = true;       ///< pyGCO's conversion: trunc(1e5 U/D), trunc(1e3 w/D), trunc(1e2 lambda)
    double min_probability = 1e-10;     ///< clamp before the log (PROPOSAL on every path, METHODS.md 5.5.1)
    int max_cycles = 100;
};

struct potts_refine_result {
    double initial_energy = 0;  ///< energy of the starting labelling, in the solver's units
    double final_energy = 0;
    index_t edges = 0;
    int cycles = 0;       ///< solver cycles (when the solver reports move_stats)
    int moves_tried = 0;  ///< max-flow moves solved: K per cycle for expansion, K(K-1)/2 for swap
};

/// The energy the refinement minimises: data costs (sites x labels) and the scaled graph.
struct potts_problem {
    std::vector<double> data;
    csr_graph<double> graph;
    double lambda = 0;
};

/// Builds the (optionally pyGCO-scaled) energy from probabilities P (sites x labels, row-major).
inline potts_problem make_potts_problem(std::span<const float> probabilities, index_t sites, index_t labels,
                                        const csr_graph<double>& affinity, const potts_refine_options& o) {
    constexpr auto where = "tessel::stages::potts_refine";
    expects(sites > 0 && labels >= 1, where, "need sites > 0 and labels >= 1, got ", sites, " and ", labels);
    expects(static_cast<index_t>(probabilities.size()) == sites * labels, where, "probabilities hold ",
            probabilities.size(), " values, expected ", sites, " x ", labels);
    expects(affinity.num_nodes() == sites, where, "affinity graph has ", affinity.num_nodes(), " nodes, expected ",
            sites);
    expects(std::isfinite(o.lambda) && o.lambda >= 0, where, "lambda must be finite and >= 0, got ", o.lambda);
    expects(o.min_probability > 0 && o.min_probability < 1, where, "min_probability must lie in (0, 1), got ",
            o.min_probability);
    potts_problem p;
    p.data.resize(probabilities.size());
    double max_u = 0;
    for (std::size_t k = 0; k < p.data.size(); ++k) {
        const double pr = static_cast<double>(probabilities[k]);
        expects(!std::isnan(pr), where, "probability ", k, " is NaN");
        p.data[k] = -std::log(std::max(pr, o.min_probability));
        max_u = std::max(max_u, p.data[k]);
    }
    auto edges = affinity.upper_edges();
    if (!o.integer_energies) {
        p.lambda = o.lambda;
        p.graph = csr_graph<double>::from_undirected_edges(sites, edges);
        return p;
    }
    double max_w = 0;
    for (const auto& e : edges) max_w = std::max(max_w, e.weight * o.lambda);
    const double D = std::max(max_u, max_w) + 1e-10;
    for (auto& u : p.data) u = std::trunc(1e5 * u / D);
    for (auto& e : edges) e.weight = std::trunc(1e3 * e.weight / D);
    p.lambda = std::trunc(1e2 * o.lambda);
    p.graph = csr_graph<double>::from_undirected_edges(sites, edges);
    return p;
}

/// Potts refinement with a move-making Solver (alpha_beta_swap<potts> or alpha_expansion<potts>).
///   labels: the starting labelling on entry (GCO starts from all zeros), the result on exit.
///   ensures: result.final_energy <= result.initial_energy (the solvers accept strict decreases only).
template <class Solver = alpha_beta_swap<potts>>
struct potts_refine {
    potts_refine_options options{};

    potts_refine_result operator()(std::span<const float> probabilities, index_t sites, index_t labels_count,
                                   const csr_graph<double>& affinity, std::span<label_t> labels) const {
        const potts_problem p = make_potts_problem(probabilities, sites, labels_count, affinity, options);
        const potts_energy<double> e(sites, labels_count, std::span<const double>(p.data), p.lambda);
        Solver solver(move_config{.max_cycles = options.max_cycles});
        potts_refine_result r;
        r.initial_energy = total_energy(e, p.graph, std::span<const label_t>(labels.data(), labels.size()));
        r.final_energy = static_cast<double>(solver.minimize(e, p.graph, labels));
        r.edges = p.graph.num_arcs() / 2;
        if constexpr (requires { solver.stats().moves_tried; }) {
            r.cycles = solver.stats().cycles;
            r.moves_tried = solver.stats().moves_tried;
        }
        return r;
    }
};

}  // namespace tessel::stages
