// tessel/pipeline/stages/segment_graph_cut.hpp: graph-cut post-processing of a finished
// segmentation over the region adjacency graph of its segments, a stage any method can end with.
//
// Self-training methods tend to over-segment: small regions keep labels of their own although
// the network gives them almost the probability of a neighbour's label. This stage treats each
// segment of state.labels as one site of a Potts problem (METHODS.md 8.2, "graph-cut
// post-processing"):
//   unary   D_r(l) = -ln max(mean over the pixels of r of P(l), 1e-10), l among the labels present
//   pairwise lambda * b_rs * exp(-|c_r - c_s|^2 / (2 s_c^2)) [l_r != l_s]
// with b_rs the shared boundary length over its maximum, c the mean colour (RGB in [0, 1]) and
// s_c the median colour distance of neighbouring segments. The probabilities come from the
// class_probabilities state data, which self_train writes when keep_probabilities is set. The
// minimiser is any GraphSolver on a potts_energy (alpha-expansion by default, started from each
// segment's own label), and the result can be compacted to labels 0..K-1.
#pragma once
#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

#include "tessel/graph/region_adjacency.hpp"
#include "tessel/solver/alpha_expansion.hpp"
#include "tessel/solver/concepts.hpp"
#include "tessel/solver/energy.hpp"
#include "tessel/pipeline/state.hpp"

namespace tessel::stages {

struct segment_graph_cut_options {
    double lambda = 1.0;        ///< Potts weight (METHODS.md 8.2: 1)
    bool compact = true;        ///< relabel the result to 0..K-1
    int max_cycles = 100;       ///< solver cycles over all labels
    double min_probability = 1e-10;  ///< clamp before the log
};

/// The stage. Solver is a move-making solver constructible from move_config (alpha_expansion<potts>,
/// alpha_beta_swap<potts>) that models GraphSolver for potts_energy<double> on csr_graph<double>.
///   reads:  state.labels, state.input, class_probabilities
///   writes: state.labels, info.values["graph_cut_regions"], ["graph_cut_labels_before"],
///           ["graph_cut_labels_after"], ["graph_cut_energy_before"] (of each segment at its own
///           label), ["graph_cut_energy"] (after), info.seconds["segment_graph_cut"]
template <class Solver = alpha_expansion<potts>>
    requires GraphSolver<Solver, potts_energy<double>, csr_graph<double>>
struct segment_graph_cut {
    using config = segment_graph_cut_options;

    template <Backend B>
    class bind {
    public:
        explicit bind(const config& cfg) : m_cfg(cfg) {
            constexpr auto where = "tessel::stages::segment_graph_cut";
            expects(std::isfinite(cfg.lambda) && cfg.lambda >= 0, where, "lambda must be finite and >= 0, got ",
                    cfg.lambda);
            expects(cfg.max_cycles >= 1, where, "max_cycles must be >= 1, got ", cfg.max_cycles);
            expects(cfg.min_probability > 0 && cfg.min_probability < 1, where,
                    "min_probability must lie in (0, 1), got ", cfg.min_probability);
        }

        void run(pipeline::state<B>& st) {
            constexpr auto where = "tessel::stages::segment_graph_cut";
            pipeline::stage_timer timer(st, "segment_graph_cut");
            expects(!st.labels.empty(), where, "needs labels from an earlier stage");
            expects(st.input != nullptr && st.input->channels() == 3, where, "needs the RGB input image");
            const auto& prob = st.template require<pipeline::class_probabilities>(where).probabilities;
            const index_t W = st.labels.width(), H = st.labels.height(), P = W * H;
            expects(prob.rank() == 3 && prob.dim(1) == H && prob.dim(2) == W, where, "class probabilities of shape ",
                    prob.shape().str(), " do not match the ", W, "x", H, " label map");
            const index_t q = prob.dim(0);

            // Sites: the segments of the current map; candidate labels: the classes present.
            label_map regions = st.labels;
            const index_t R = relabel_sequential(regions);
            std::vector<label_t> present;  // class of each candidate label
            std::vector<label_t> site_label(static_cast<std::size_t>(R), 0);
            {
                std::vector<label_t> cls(static_cast<std::size_t>(R), 0);
                for (index_t i = 0; i < P; ++i) cls[static_cast<std::size_t>(regions.data()[i])] = st.labels.data()[i];
                present = cls;
                std::sort(present.begin(), present.end());
                present.erase(std::unique(present.begin(), present.end()), present.end());
                for (index_t r = 0; r < R; ++r) {
                    const label_t c = cls[static_cast<std::size_t>(r)];
                    expects(c >= 0 && c < q, where, "label ", c, " is not a class of the ", q, " probabilities");
                    site_label[static_cast<std::size_t>(r)] =
                        static_cast<label_t>(std::lower_bound(present.begin(), present.end(), c) - present.begin());
                }
            }
            const auto L = static_cast<index_t>(present.size());
            st.info.values["graph_cut_regions"] = static_cast<double>(R);
            st.info.values["graph_cut_labels_before"] = static_cast<double>(L);
            if (R < 2 || L < 2) return;

            // Mean probability of each candidate class and mean colour over every region.
            std::vector<double> mean_p(static_cast<std::size_t>(R * L), 0.0), colour(static_cast<std::size_t>(R * 3), 0.0);
            std::vector<double> size(static_cast<std::size_t>(R), 0.0);
            const std::uint8_t* px = st.input->data();
            for (index_t i = 0; i < P; ++i) {
                const auto r = static_cast<std::size_t>(regions.data()[i]);
                size[r] += 1;
                for (index_t c = 0; c < 3; ++c) colour[r * 3 + static_cast<std::size_t>(c)] += px[i * 3 + c] / 255.0;
                for (index_t l = 0; l < L; ++l)
                    mean_p[r * static_cast<std::size_t>(L) + static_cast<std::size_t>(l)] +=
                        prob.data()[static_cast<index_t>(present[static_cast<std::size_t>(l)]) * P + i];
            }
            std::vector<double> unary(mean_p.size());
            for (index_t r = 0; r < R; ++r) {
                const double inv = 1.0 / size[static_cast<std::size_t>(r)];
                for (index_t c = 0; c < 3; ++c) colour[static_cast<std::size_t>(r * 3 + c)] *= inv;
                for (index_t l = 0; l < L; ++l) {
                    const auto k = static_cast<std::size_t>(r * L + l);
                    unary[k] = -std::log(std::max(mean_p[k] * inv, m_cfg.min_probability));
                }
            }

            // Pairwise weights on the region adjacency graph.
            const region_adjacency_graph rag = region_adjacency(regions);
            auto edges = rag.graph.upper_edges();
            double max_b = 0;
            std::vector<double> dist2;
            for (const auto& e : edges) {
                max_b = std::max(max_b, e.weight);
                double d2 = 0;
                for (index_t c = 0; c < 3; ++c) {
                    const double t = colour[static_cast<std::size_t>(e.source * 3 + c)] - colour[static_cast<std::size_t>(e.target * 3 + c)];
                    d2 += t * t;
                }
                dist2.push_back(d2);
            }
            std::vector<double> sorted = dist2;
            double s2 = 1.0;
            if (!sorted.empty()) {
                std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() / 2), sorted.end());
                const double median_distance = std::sqrt(sorted[sorted.size() / 2]);
                if (median_distance > 0) s2 = median_distance * median_distance;
            }
            for (std::size_t k = 0; k < edges.size(); ++k)
                edges[k].weight = (max_b > 0 ? edges[k].weight / max_b : 0.0) * std::exp(-dist2[k] / (2 * s2));
            const csr_graph<double> graph = csr_graph<double>::from_undirected_edges(R, edges);

            const potts_energy<double> energy(R, L, std::span<const double>(unary), m_cfg.lambda);
            // The start labelling's energy, so callers can see that the moves never raise it.
            st.info.values["graph_cut_energy_before"] =
                static_cast<double>(total_energy(energy, graph, std::span<const label_t>(site_label)));
            Solver solver(move_config{.max_cycles = m_cfg.max_cycles});
            st.info.values["graph_cut_energy"] =
                static_cast<double>(solver.minimize(energy, graph, std::span<label_t>(site_label)));

            for (index_t i = 0; i < P; ++i)
                st.labels.data()[i] = present[static_cast<std::size_t>(site_label[static_cast<std::size_t>(regions.data()[i])])];
            if (m_cfg.compact) relabel_sequential(st.labels);
            st.info.values["graph_cut_labels_after"] = static_cast<double>(st.labels.count_labels());
        }

    private:
        config m_cfg;
    };
};

}  // namespace tessel::stages
