// tessel/methods/grapl.hpp: Wasserman & Farias, "GraPL: Patch-Based Deep Unsupervised Image
// Segmentation using Graph Cuts" (arXiv 2311.01475, VISAPP 2025).
//
// The image is resized to a square S x S and cut into a d x d grid of p x p patches. A small CNN
// with shared weights classifies each patch; it is trained for a few rounds against patch labels
// (initially from a low-compactness SLIC), and between rounds a Potts graph cut over the patch
// grid (Eq. 4 colour affinities, alpha-beta swap) regularises its predictions into the next
// targets. Prediction applies the same network densely (stride 1) to the whole image. Defaults
// follow METHODS.md 5 (profile best_miou, with the paper's choices where 5.8 says so); each
// field's comment names its source. docs/grapl.md has the details.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Eigenvalues>

#include "tessel/graph/grid_graph.hpp"
#include "tessel/loss/cross_entropy.hpp"
#include "tessel/loss/spatial_continuity.hpp"
#include "tessel/methods/grapl_cnn.hpp"
#include "tessel/methods/preset.hpp"
#include "tessel/nn/activation.hpp"
#include "tessel/nn/bn_tanh_dropout.hpp"
#include "tessel/nn/conv2d.hpp"
#include "tessel/nn/dropout.hpp"
#include "tessel/nn/sequential.hpp"
#include "tessel/ops/argmax.hpp"
#include "tessel/ops/resize.hpp"
#include "tessel/optim/adam.hpp"
#include "tessel/pipeline/pipeline.hpp"
#include "tessel/pipeline/state.hpp"
#include "tessel/pipeline/stages/patch_grid.hpp"
#include "tessel/pipeline/stages/potts_refine.hpp"
#include "tessel/superpixel/slic.hpp"

namespace tessel::methods {

/// GraPLNet with num_layers = 3 (METHODS.md 5.3): input dropout, two conv3x3 -> BN -> tanh ->
/// dropout blocks (the fused nn::bn_tanh_dropout), and a (p-4) x (p-4) head conv giving one logit
/// vector per p x p patch. No padding anywhere, so on a whole image the same stack is the dense
/// (stride-1) classifier. grapl_patch_cnn (grapl_cnn.hpp) runs the same network with a schedule of
/// its own for batches of patches; this composition is its parity reference in the tests.
using grapl_network = nn::sequential<nn::dropout, nn::conv2d, nn::bn_tanh_dropout, nn::conv2d, nn::bn_tanh_dropout,
                                     nn::conv2d>;

/// The network's config for p x p patches and K classes; `engine` selects the conv engine of the
/// two 3x3 layers (the parity test holds the direct kernels to im2col + GEMM).
inline grapl_network::config grapl_network_config(index_t patch, index_t classes, index_t filters = 32,
                                                  index_t bottleneck = 8, double dropout = 0.2,
                                                  double input_dropout = -1,
                                                  nn::conv_engine engine = nn::conv_engine::automatic) {
    constexpr auto where = "tessel::methods::grapl_network_config";
    expects(patch >= 5, where, "patches must be at least 5 px (two 3x3 convs and a head), got ", patch);
    expects(classes >= 2 && filters >= 1 && bottleneck >= 1, where, "need classes >= 2, filters >= 1, bottleneck >= 1, got ",
            classes, ", ", filters, ", ", bottleneck);
    // The code's input dropout: the patch perimeter over its area, (4p - 4) / p^2.
    const double in_p = input_dropout >= 0 ? input_dropout
                                           : static_cast<double>(4 * patch - 4) / static_cast<double>(patch * patch);
    return {{.p = in_p},
            {.in_channels = 3, .out_channels = filters, .kernel = 3, .engine = engine},
            {.channels = filters, .p = dropout},
            {.in_channels = filters, .out_channels = bottleneck, .kernel = 3, .engine = engine},
            {.channels = bottleneck, .p = dropout},
            {.in_channels = bottleneck, .out_channels = classes, .kernel = patch - 4}};
}

enum class grapl_initialiser {
    slic,    ///< SLIC, compactness 0.1, sigma 10, no connectivity (paper + code default)
    random,  ///< patchwise random labels (paper Table 1)
    knn,     ///< K0 random seed patches, every patch takes its nearest seed's label ("seedwise random")
    kmeans   ///< k-means on the grid coordinates ("spatial clustering")
};
enum class grapl_solver { alpha_beta_swap, alpha_expansion };
enum class grapl_affinity {
    colour,           ///< Eq. 4 on patch mean colours, kernel-PCA projected x 32 (code; paper Tables 2, 4)
    raw_mean_colour,  ///< Eq. 4 on the unprojected mean colours (x colour_scale)
    position,         ///< all features equal: w = 1/distance, pruned, with lambda / d (paper Table 2)
    uniform4,         ///< 4-neighbour grid, weight 1 (the code's graph without an affinity flag)
    features,         ///< Eq. 4 on user patch features (e.g. patch embeddings): patch_features
    callback          ///< w_ij from a user function: affinity_fn (then pruned)
};
enum class grapl_epoch_schedule {
    paper,  ///< 40, 32, 22, 12: the code's formula with the last round at min_epochs (paper)
    code    ///< 40, then min(round(5 n / x + 12), 40): 40, 32, 22, 19 (code)
};

struct grapl_config {
    index_t rounds = 4;          ///< training rounds ("iterations"; paper, code)
    index_t k0 = 14;             ///< initial segments K0 (paper, code)
    index_t grid = 32;           ///< patch grid d (paper, code)
    index_t side = 0;            ///< square side S; 0: ceil(max(H, W) * training_scale / d) * d (code), capped
    double training_scale = 1.0; ///< (code)
    /// Cap on the automatic side (0: none). The work grows as S^4 (patches of S/d px under a head
    /// conv of (S/d - 4)^2 taps, at S^2 positions), so an uncapped 4000 px image would train for
    /// hours; the cap keeps BSDS500-sized inputs (S = 512) as the code has them (PROPOSAL). The
    /// cap is rounded down to a multiple of d, and raised to 5 d when the grid needs it.
    index_t max_side = 1024;
    double lambda = 64.0;        ///< Potts weight (paper, code)
    double mu = 3.0;             ///< continuity weight (paper, code)
    index_t filters = 32;        ///< (paper, code)
    index_t bottleneck = 8;      ///< (paper, code)
    double dropout = 0.2;        ///< after each hidden block (paper, code)
    double input_dropout = -1;   ///< < 0: perimeter / area = 60/256 for p = 16 (code)
    double subset = 0.5;         ///< minibatch fraction of the d^2 patches (code)
    double lr = 0.01;            ///< Adam (code)
    index_t max_epochs = 40;     ///< steps of round 0 and cap of the schedule (code)
    index_t min_epochs = 12;     ///< floor of the schedule (code; the paper's last round)
    grapl_epoch_schedule schedule = grapl_epoch_schedule::paper;  ///< paper (5.8)
    double early_stop = 1.0;     ///< end round 0 once the loss falls below this (paper, code)
    bool early_stop_on_total_loss = false;  ///< code: CE + mu C; paper (default): CE only
    bool hard_initial_labels = false;       ///< code: majority label; paper (default): soft fractions
    bool reserve_label_zero = true;         ///< K = max label + 1 with labels from 1 (code)
    bool cold_start = false;                ///< re-initialise net and Adam after each graph step
    grapl_initialiser initialiser = grapl_initialiser::slic;
    float slic_compactness = 0.1f;  ///< (code)
    double slic_sigma = 10.0;       ///< (code)
    grapl_solver solver = grapl_solver::alpha_beta_swap;  ///< code (paper allows either)
    grapl_affinity affinity = grapl_affinity::colour;
    double prune_threshold = 0.2;   ///< keep edges with w >= 0.2, all if none passes (code)
    double colour_scale = 32.0;     ///< factor on the projected colours (code)
    bool gco_integer_energies = true;  ///< pyGCO's integer conversion (5.5.6)
    /// affinity == features: count = d^2 rows of feature_dim values (row-major, patch order).
    std::vector<float> patch_features{};
    index_t feature_dim = 0;
    /// affinity == callback: w(i, j) for patches i < j (finite, >= 0).
    std::function<double(index_t, index_t)> affinity_fn{};
    index_t progress_every = 1;  ///< progress callback period in steps (0: none; the caller throttles)
};

/// Steps of round x (0-based) of n rounds.
inline index_t grapl_round_steps(const grapl_config& c, index_t x) {
    if (x == 0) return c.max_epochs;
    if (c.schedule == grapl_epoch_schedule::paper && x == c.rounds - 1) return std::min(c.min_epochs, c.max_epochs);
    const double v = std::round(5.0 * static_cast<double>(c.rounds) / static_cast<double>(x) + static_cast<double>(c.min_epochs));
    return std::min(static_cast<index_t>(v), c.max_epochs);
}

/// The side S of the square working image for a W x H input (METHODS.md 5.2, with max_side).
inline index_t grapl_side(const grapl_config& c, index_t width, index_t height) {
    if (c.side > 0) return c.side;
    const double longest = static_cast<double>(std::max(width, height)) * c.training_scale;
    index_t S = static_cast<index_t>(std::ceil(longest / static_cast<double>(c.grid))) * c.grid;
    // The cap never leaves patches below the network's 5 px minimum.
    if (c.max_side > 0 && S > c.max_side) S = std::max(c.max_side / c.grid, index_t{5}) * c.grid;
    return S;
}

/// Throws tessel::error naming the first invalid field.
inline void validate(const grapl_config& c) {
    constexpr auto where = "tessel::methods::grapl";
    expects(c.rounds >= 1, where, "rounds must be >= 1, got ", c.rounds);
    expects(c.k0 >= 2, where, "k0 must be >= 2, got ", c.k0);
    expects(c.grid >= 1, where, "grid must be >= 1, got ", c.grid);
    expects(c.side >= 0, where, "side must be >= 0 (0: automatic), got ", c.side);
    expects(c.side == 0 || c.side % c.grid == 0, where, "the grid ", c.grid, " does not divide the side ", c.side);
    expects(c.side == 0 || c.side / c.grid >= 5, where, "patches of ", c.side / c.grid, " px are too small (need >= 5)");
    expects(std::isfinite(c.training_scale) && c.training_scale > 0, where, "training_scale must be > 0, got ",
            c.training_scale);
    expects(c.max_side >= 0, where, "max_side must be >= 0 (0: no cap), got ", c.max_side);
    expects(std::isfinite(c.lambda) && c.lambda >= 0, where, "lambda must be finite and >= 0, got ", c.lambda);
    expects(std::isfinite(c.mu) && c.mu >= 0, where, "mu must be finite and >= 0, got ", c.mu);
    expects(c.subset > 0 && c.subset <= 1, where, "subset must lie in (0, 1], got ", c.subset);
    expects(std::isfinite(c.lr) && c.lr > 0, where, "lr must be > 0, got ", c.lr);
    expects(c.max_epochs >= 1 && c.min_epochs >= 0, where, "need max_epochs >= 1 and min_epochs >= 0, got ",
            c.max_epochs, " and ", c.min_epochs);
    expects(c.dropout >= 0 && c.dropout < 1, where, "dropout must lie in [0, 1), got ", c.dropout);
    expects(c.input_dropout < 1, where, "input_dropout must be < 1, got ", c.input_dropout);
    expects(std::isfinite(c.prune_threshold), where, "prune_threshold must be finite");
    expects(std::isfinite(c.colour_scale) && c.colour_scale > 0, where, "colour_scale must be > 0, got ", c.colour_scale);
    expects(c.slic_compactness > 0 && c.slic_sigma >= 0, where, "invalid SLIC settings: compactness ",
            c.slic_compactness, ", sigma ", c.slic_sigma);
    if (c.affinity == grapl_affinity::features)
        expects(c.feature_dim >= 1 && static_cast<index_t>(c.patch_features.size()) == c.grid * c.grid * c.feature_dim,
                where, "affinity=features needs grid^2 x feature_dim = ", c.grid * c.grid, " x ", c.feature_dim,
                " values, got ", c.patch_features.size());
    if (c.affinity == grapl_affinity::callback) expects(static_cast<bool>(c.affinity_fn), where, "affinity=callback needs affinity_fn");
    expects(c.progress_every >= 0, where, "progress_every must be >= 0 (0: no progress), got ", c.progress_every);
}

namespace detail {

/// Kernel PCA with sklearn's poly kernel (gamma x.y + coef0)^degree on n points of dim 3 to
/// `components` dimensions; rows are eigenvectors x sqrt(eigenvalue) of the centred kernel.
/// The kernel has an explicit feature map (the monomials of degree <= 3, scaled by the square
/// roots of the multinomial coefficients), so the centred kernel's leading eigenpairs come from
/// the 20 x 20 covariance of the mapped points instead of an n x n eigenproblem. Signs are
/// arbitrary, which the distance-based affinities never see.
inline std::vector<double> poly_kernel_pca3(const std::vector<double>& x, index_t n, index_t components,
                                            double gamma = 1.0 / 3.0, double coef0 = 1.0) {
    constexpr int F = 20;  // multi-indices (a0..a3) with sum 3 over {1, x0, x1, x2}
    int powers[F][4];
    double coef[F];
    int f = 0;
    const double fact[4] = {1, 1, 2, 6};
    for (int a1 = 0; a1 <= 3; ++a1)
        for (int a2 = 0; a2 <= 3 - a1; ++a2)
            for (int a3 = 0; a3 <= 3 - a1 - a2; ++a3) {
                const int a0 = 3 - a1 - a2 - a3;
                powers[f][0] = a0, powers[f][1] = a1, powers[f][2] = a2, powers[f][3] = a3;
                coef[f] = std::sqrt(6.0 / (fact[a0] * fact[a1] * fact[a2] * fact[a3]) * std::pow(coef0, a0) *
                                    std::pow(gamma, a1 + a2 + a3));
                ++f;
            }
    Eigen::MatrixXd phi(n, F);
    for (index_t i = 0; i < n; ++i)
        for (int k = 0; k < F; ++k) {
            double v = coef[k];
            for (int d = 0; d < 3; ++d)
                for (int e = 0; e < powers[k][d + 1]; ++e) v *= x[static_cast<std::size_t>(i * 3 + d)];
            phi(i, k) = v;
        }
    phi.rowwise() -= phi.colwise().mean();
    const Eigen::MatrixXd cov = phi.transpose() * phi;
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(cov);
    std::vector<double> out(static_cast<std::size_t>(n * components), 0.0);
    for (index_t c = 0; c < components; ++c) {
        const Eigen::VectorXd proj = phi * eig.eigenvectors().col(F - 1 - c);
        for (index_t i = 0; i < n; ++i) out[static_cast<std::size_t>(i * components + c)] = proj(i);
    }
    return out;
}

/// Eq. 4 over all patch pairs of a d x d grid: w_ij = exp(-a_ij^2 / (2 sigma)) / |c_i - c_j|, a
/// the feature distance, sigma the population std of all a (1 if 0); pruned at `threshold`
/// (every edge kept if none passes).
inline csr_graph<double> eq4_graph(const std::vector<double>& f, index_t dim, index_t grid, double threshold) {
    const index_t n = grid * grid;
    std::vector<double> a(static_cast<std::size_t>(n * (n - 1) / 2));
    double sum = 0, sum2 = 0;
    std::size_t k = 0;
    for (index_t i = 0; i < n; ++i)
        for (index_t j = i + 1; j < n; ++j, ++k) {
            double s = 0;
            for (index_t c = 0; c < dim; ++c) {
                const double t = f[static_cast<std::size_t>(i * dim + c)] - f[static_cast<std::size_t>(j * dim + c)];
                s += t * t;
            }
            a[k] = std::sqrt(s);
            sum += a[k];
            sum2 += a[k] * a[k];
        }
    const double cnt = static_cast<double>(std::max<std::size_t>(a.size(), 1));
    const double mean = sum / cnt;
    double sigma = std::sqrt(std::max(0.0, sum2 / cnt - mean * mean));
    if (!(sigma > 0)) sigma = 1.0;
    // a holds the pairs i < j in row order: pair (i, j) sits after the i (2n - i - 1) / 2 pairs of
    // the rows before i.
    auto weight = [&](index_t i, index_t j) {
        const double ak = a[static_cast<std::size_t>(i * (2 * n - i - 1) / 2 + (j - i - 1))];
        const double dr = static_cast<double>(i / grid - j / grid), dc = static_cast<double>(i % grid - j % grid);
        return std::exp(-ak * ak / (2 * sigma)) / std::sqrt(dr * dr + dc * dc);
    };
    csr_graph<double> kept = similarity_threshold_graph(n, weight, threshold);
    return kept.num_arcs() > 0 ? kept : fully_connected_graph(n, weight);
}

}  // namespace detail

/// Everything one GraPL run keeps from stage to stage, as pipeline state data: the patch grid and
/// the network input, the patch targets, the network and its optimiser, and the affinity graph.
/// B is a host backend (cpu_serial, cpu_omp): the graph cut is host code and the patch network
/// is the batched host implementation of methods/grapl_cnn.hpp.
template <Backend B>
class grapl_workspace {
public:
    static constexpr const char* name = "grapl_workspace";
    using net_type = grapl_patch_cnn<B>;

    // ---- the three stages' work ----
    /// Resize to the square, scale to [-1, 1], initial labels and targets, network and Adam, all
    /// drawn from the state's random stream (METHODS.md 5.2-5.3).
    void prepare(const grapl_config& cfg, pipeline::state<B>& st) {
        m_cfg = cfg;
        m_state = &st;
        prepare(*st.input, st.gen);
    }
    /// The training rounds with a Potts graph cut after every round but the last (5.4-5.5).
    void train(pipeline::state<B>& st) {
        m_state = &st;
        train_rounds();
    }
    /// Dense prediction at stride 1, resized back to the input (5.6).
    label_map predict(index_t width, index_t height) { return predict_dense(width, height); }

    // ---- pieces exposed for tests and tools (valid after a run) ----
    [[nodiscard]] index_t classes() const noexcept { return m_classes; }
    [[nodiscard]] const stages::patch_grid& grid() const noexcept { return m_grid; }
    net_type& network() { return *m_net; }
    [[nodiscard]] const std::vector<float>& network_input() const noexcept { return m_planar; }
    [[nodiscard]] const std::vector<float>& initial_targets() const noexcept { return m_initial_targets; }
    const csr_graph<double>& affinity_graph() {
        if (!m_edges) m_edges = build_affinity();
        return *m_edges;
    }
    std::vector<float> patch_logits(const std::vector<index_t>& idx) {
        const auto n = static_cast<index_t>(idx.size());
        const index_t K = m_classes;
        m_grid.gather(B{}, std::span<const float>(m_planar), 3, std::span<const index_t>(idx), m_host_batch);
        const auto& y = m_net->forward_patches(m_host_batch.data(), n, false, 0);
        std::vector<float> out(static_cast<std::size_t>(n * K));
        for (index_t i = 0; i < n; ++i)
            for (index_t k = 0; k < K; ++k) out[static_cast<std::size_t>(i * K + k)] = y[static_cast<std::size_t>(k * n + i)];
        return out;
    }
    tensor<float, B> dense_logits() {
        const index_t o = m_grid.side() - m_grid.patch + 1;
        const auto& y = m_net->forward_dense(m_planar.data(), m_grid.side());
        return tensor<float, B>(shape{1, m_classes, o, o}, std::span<const float>(y.data(), y.size()));
    }

private:
    using host_backend = B;
    using clock = std::chrono::steady_clock;
    static double seconds_since(clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); }

    void notify(std::string_view stage, index_t step, index_t total, const std::string& msg) const {
        m_state->notify(stage, step, total, msg);
    }

    // ---- preprocessing and initial labels (METHODS.md 5.2) ----
    void prepare(const image<std::uint8_t>& img, const rng& gen) {
        const index_t d = m_cfg.grid;
        const index_t S = grapl_side(m_cfg, img.width(), img.height());
        expects(S / d >= 5, "tessel::methods::grapl::run", "patches of ", S / d, " px (side ", S, ", grid ", d,
                ") are too small; need >= 5 px");
        m_grid = stages::patch_grid{.grid = d, .patch = S / d};
        const image<std::uint8_t> sq = ops::resize_nearest(img, S, S);

        // Network input: min-max over all pixels and channels to [-1, 1].
        const auto& v = sq.values();
        const auto [lo_it, hi_it] = std::minmax_element(v.begin(), v.end());
        const float lo = *lo_it, range = static_cast<float>(*hi_it) - lo;
        m_planar.assign(static_cast<std::size_t>(3 * S * S), 0.0f);
        for (index_t c = 0; c < 3; ++c)
            for (index_t y = 0; y < S; ++y)
                for (index_t x = 0; x < S; ++x)
                    m_planar[static_cast<std::size_t>((c * S + y) * S + x)] =
                        range > 0 ? 2.0f * (static_cast<float>(sq(x, y, c)) - lo) / range - 1.0f : 0.0f;

        m_gen = gen;
        const std::vector<label_t> patch_or_pixel = initial_labels(sq);
        build_targets(patch_or_pixel);

        // Network, dropout stream and optimiser: all from the one seed.
        m_init_state = m_gen;
        build_network();
        m_dropout_gen.reseed(m_gen.next());
        m_edges.reset();
    }

    void build_network() {
        rng init = m_init_state;
        const double in_p = m_cfg.input_dropout >= 0
                                ? m_cfg.input_dropout
                                : static_cast<double>(4 * m_grid.patch - 4) / static_cast<double>(m_grid.patch * m_grid.patch);
        m_net.emplace(typename net_type::config{.patch = m_grid.patch, .classes = m_classes, .filters = m_cfg.filters,
                                                .bottleneck = m_cfg.bottleneck, .dropout = m_cfg.dropout,
                                                .input_dropout = in_p},
                      init);
        m_adam.emplace(m_net->parameters(), optim::adam::config{.lr = m_cfg.lr});
    }

    /// SLIC: a pixel map of S x S (flattened, then counted per patch); others: one label per patch.
    std::vector<label_t> initial_labels(const image<std::uint8_t>& sq) {
        const index_t n = m_grid.count(), d = m_grid.grid, k0 = m_cfg.k0;
        const label_t base = m_cfg.reserve_label_zero ? 1 : 0;
        std::vector<label_t> labels;
        m_pixel_init = false;
        switch (m_cfg.initialiser) {
        case grapl_initialiser::slic: {
            slic spec{{.n_segments = k0, .compactness = m_cfg.slic_compactness, .sigma = m_cfg.slic_sigma,
                       .enforce_connectivity = false, .start_label = base}};
            label_map sp = spec(host_backend{}, sq);
            m_pixel_init = true;
            return sp.values();
        }
        case grapl_initialiser::random:
            labels.resize(static_cast<std::size_t>(n));
            for (auto& l : labels) l = base + static_cast<label_t>(m_gen.below(static_cast<std::uint64_t>(k0)));
            return labels;
        case grapl_initialiser::knn: {
            std::vector<index_t> perm(static_cast<std::size_t>(n));
            for (index_t i = 0; i < n; ++i) perm[static_cast<std::size_t>(i)] = i;
            const index_t seeds = std::min(k0, n);
            for (index_t i = 0; i < seeds; ++i)
                std::swap(perm[static_cast<std::size_t>(i)],
                          perm[static_cast<std::size_t>(i + static_cast<index_t>(m_gen.below(static_cast<std::uint64_t>(n - i))))]);
            labels.resize(static_cast<std::size_t>(n));
            for (index_t i = 0; i < n; ++i) {
                index_t best = 0, best_d = -1;
                for (index_t s = 0; s < seeds; ++s) {
                    const index_t q = perm[static_cast<std::size_t>(s)];
                    const index_t dr = i / d - q / d, dc = i % d - q % d, dist = dr * dr + dc * dc;
                    if (best_d < 0 || dist < best_d) best = s, best_d = dist;
                }
                labels[static_cast<std::size_t>(i)] = base + static_cast<label_t>(best);
            }
            return labels;
        }
        case grapl_initialiser::kmeans:
            return kmeans_grid(base);
        }
        return labels;
    }

    /// k-means (k-means++ seeding, Lloyd iterations) on the patch grid coordinates.
    std::vector<label_t> kmeans_grid(label_t base) {
        const index_t n = m_grid.count(), d = m_grid.grid, k = std::min(m_cfg.k0, n);
        std::vector<double> cx, cy;
        auto px = [d](index_t i) { return static_cast<double>(i % d); };
        auto py = [d](index_t i) { return static_cast<double>(i / d); };
        const index_t first = static_cast<index_t>(m_gen.below(static_cast<std::uint64_t>(n)));
        cx.push_back(px(first)), cy.push_back(py(first));
        std::vector<double> dist(static_cast<std::size_t>(n));
        while (static_cast<index_t>(cx.size()) < k) {
            double total = 0;
            for (index_t i = 0; i < n; ++i) {
                double best = 1e300;
                for (std::size_t c = 0; c < cx.size(); ++c)
                    best = std::min(best, (px(i) - cx[c]) * (px(i) - cx[c]) + (py(i) - cy[c]) * (py(i) - cy[c]));
                total += (dist[static_cast<std::size_t>(i)] = best);
            }
            double r = m_gen.uniform01() * total;
            index_t pick = n - 1;
            for (index_t i = 0; i < n; ++i) {
                r -= dist[static_cast<std::size_t>(i)];
                if (r < 0) {
                    pick = i;
                    break;
                }
            }
            cx.push_back(px(pick)), cy.push_back(py(pick));
        }
        std::vector<label_t> a(static_cast<std::size_t>(n), 0);
        for (int it = 0; it < 300; ++it) {
            bool changed = false;
            for (index_t i = 0; i < n; ++i) {
                index_t best = 0;
                double bd = 1e300;
                for (index_t c = 0; c < k; ++c) {
                    const auto cu = static_cast<std::size_t>(c);
                    const double dd = (px(i) - cx[cu]) * (px(i) - cx[cu]) + (py(i) - cy[cu]) * (py(i) - cy[cu]);
                    if (dd < bd) bd = dd, best = c;
                }
                if (a[static_cast<std::size_t>(i)] != static_cast<label_t>(best) || it == 0) changed = true;
                a[static_cast<std::size_t>(i)] = static_cast<label_t>(best);
            }
            if (!changed) break;
            std::vector<double> sx(static_cast<std::size_t>(k), 0), sy(static_cast<std::size_t>(k), 0), cnt(static_cast<std::size_t>(k), 0);
            for (index_t i = 0; i < n; ++i) {
                const auto c = static_cast<std::size_t>(a[static_cast<std::size_t>(i)]);
                sx[c] += px(i), sy[c] += py(i), cnt[c] += 1;
            }
            for (std::size_t c = 0; c < cx.size(); ++c)
                if (cnt[c] > 0) cx[c] = sx[c] / cnt[c], cy[c] = sy[c] / cnt[c];
        }
        for (auto& l : a) l += base;
        return a;
    }

    /// Patch targets (soft fractions or majority one-hot), K, and the continuity buffer Z.
    void build_targets(const std::vector<label_t>& labels) {
        const index_t n = m_grid.count();
        const label_t top = *std::max_element(labels.begin(), labels.end());
        m_classes = std::max<index_t>(static_cast<index_t>(top) + 1, 2);
        const index_t K = m_classes;
        std::vector<float> soft;
        if (m_pixel_init) {
            label_map lm(m_grid.side(), m_grid.side(), labels);
            soft = m_grid.label_fractions(lm, K);
        } else {
            soft.assign(static_cast<std::size_t>(n * K), 0.0f);
            for (index_t i = 0; i < n; ++i) soft[static_cast<std::size_t>(i * K + labels[static_cast<std::size_t>(i)])] = 1.0f;
        }
        // Majority label, ties to the smallest (the code's argmax).
        std::vector<float> hard(soft.size(), 0.0f);
        for (index_t i = 0; i < n; ++i) {
            const float* row = soft.data() + i * K;
            const index_t best = std::max_element(row, row + K) - row;
            hard[static_cast<std::size_t>(i * K + best)] = 1.0f;
        }
        m_targets = m_cfg.hard_initial_labels ? hard : soft;
        m_initial_targets = m_targets;
        // Continuity buffer [1, K, d, d] of the latest logits: it starts as the initial targets
        // (one-hot in the code; the soft ones for soft targets: PROPOSAL).
        const index_t d = m_grid.grid;
        m_z.resize(shape{1, K, d, d});
        for (index_t i = 0; i < n; ++i)
            for (index_t k = 0; k < K; ++k) m_z.data()[k * n + i] = m_targets[static_cast<std::size_t>(i * K + k)];
    }

    // ---- training (METHODS.md 5.4) ----
    void train_rounds() {
        const index_t n = m_grid.count(), K = m_classes;
        const index_t batch = std::max<index_t>(1, static_cast<index_t>(m_cfg.subset * static_cast<double>(n)));
        const index_t spacing = std::max<index_t>(1, n / batch);
        std::vector<index_t> idx(static_cast<std::size_t>(batch));
        index_t t = 0, total_steps = 0;
        for (index_t x = 0; x < m_cfg.rounds; ++x) {
            const auto t_train = clock::now();
            const index_t steps = grapl_round_steps(m_cfg, x);
            for (index_t e = 0; e < steps; ++e, ++t) {
                for (index_t j = 0; j < batch; ++j) idx[static_cast<std::size_t>(j)] = (t % n + spacing * j) % n;
                const auto [ce, cont] = train_step(idx);
                ++total_steps;
                const double total = ce + m_cfg.mu * cont;
                m_state->info.values["final_loss"] = total;
                if (m_cfg.progress_every > 0 && (e + 1) % m_cfg.progress_every == 0)
                    notify("grapl_train", e + 1, steps,
                           "round " + std::to_string(x) + ", ce " + std::to_string(ce) + ", continuity " + std::to_string(cont));
                if (x == 0 && (m_cfg.early_stop_on_total_loss ? total : ce) < m_cfg.early_stop) {
                    ++t;
                    break;
                }
            }
            m_state->info.seconds["cnn_training"] += seconds_since(t_train);
            if (x + 1 < m_cfg.rounds) {
                const auto t_cut = clock::now();
                graph_step(x);
                m_state->info.seconds["graph_cut"] += seconds_since(t_cut);
                if (m_cfg.cold_start) {
                    build_network();
                }
            }
        }
        m_state->info.iterations = total_steps;
        (void)K;
    }

    /// One Adam step on the patches idx; returns (CE, continuity C). The loss is composed from
    /// the library's blocks: soft cross-entropy on the minibatch logits, and the spatial
    /// continuity of the softmax of the d x d grid of latest logits (fresh minibatch entries
    /// carry gradient), both on class-major tensors as the network produces them.
    std::pair<double, double> train_step(const std::vector<index_t>& idx) {
        const index_t K = m_classes, d = m_grid.grid, n = m_grid.count();
        const auto bn = static_cast<index_t>(idx.size());
        m_grid.gather(B{}, std::span<const float>(m_planar), 3, std::span<const index_t>(idx), m_host_batch);
        const auto& y = m_net->forward_patches(m_host_batch.data(), bn, true, m_dropout_gen.next());
        // Logits arrive class-major [K][bn], which is [1, K, bn] in the losses' NC... layout.
        m_logits.resize(shape{1, K, bn});
        m_batch_targets.resize(shape{1, K, bn});
        std::copy(y.begin(), y.begin() + K * bn, m_logits.data());
        float* zbuf = m_z.data();
        for (index_t b = 0; b < bn; ++b) {
            const index_t i = idx[static_cast<std::size_t>(b)];
            for (index_t k = 0; k < K; ++k) {
                m_batch_targets.data()[k * bn + b] = m_targets[static_cast<std::size_t>(i * K + k)];
                zbuf[k * n + i] = m_logits.data()[k * bn + b];
            }
        }
        const double ce = loss::soft_cross_entropy{}.value_and_grad(m_logits, m_batch_targets, m_dlogits);
        double cont = 0;
        if (m_cfg.mu > 0 && d >= 2) {
            // GraPL's C is the sum of |differences| over the grid divided by d^2; the library's
            // continuity averages each direction over its K d (d - 1) differences.
            const double to_grapl = static_cast<double>(K * (d - 1)) / static_cast<double>(d);
            const auto& prob = m_softmax.forward(m_ctx, m_z);
            cont = to_grapl * loss::spatial_continuity{}.value_and_grad(prob, m_dprob, {.weight = m_cfg.mu * to_grapl});
            const auto& dz = m_softmax.backward(m_ctx, m_dprob);
            for (index_t b = 0; b < bn; ++b) {
                const index_t i = idx[static_cast<std::size_t>(b)];
                for (index_t k = 0; k < K; ++k) m_dlogits.data()[k * bn + b] += dz.data()[k * n + i];
            }
        }
        m_dzt.assign(m_dlogits.data(), m_dlogits.data() + K * bn);
        m_net->backward(m_dzt);
        m_adam->step();
        return {ce, cont};
    }

    // ---- graph step (METHODS.md 5.5) ----
    csr_graph<double> build_affinity() {
        const index_t d = m_grid.grid, n = m_grid.count();
        const double t = m_cfg.prune_threshold;
        switch (m_cfg.affinity) {
        case grapl_affinity::uniform4:
            return grid_graph(d, d, 4, [](index_t, index_t) { return 1.0; });
        case grapl_affinity::position:
            return detail::eq4_graph(std::vector<double>(static_cast<std::size_t>(n), 0.0), 1, d, t);
        case grapl_affinity::features: {
            std::vector<double> f(m_cfg.patch_features.begin(), m_cfg.patch_features.end());
            return detail::eq4_graph(f, m_cfg.feature_dim, d, t);
        }
        case grapl_affinity::callback: {
            auto g = similarity_threshold_graph(n, [&](index_t i, index_t j) { return m_cfg.affinity_fn(i, j); }, t);
            if (g.num_arcs() == 0) g = fully_connected_graph(n, [&](index_t i, index_t j) { return m_cfg.affinity_fn(i, j); });
            return g;
        }
        case grapl_affinity::raw_mean_colour:
        case grapl_affinity::colour: {
            std::vector<double> f = m_grid.channel_means(std::span<const float>(m_planar), 3);
            if (m_cfg.affinity == grapl_affinity::colour) f = detail::poly_kernel_pca3(f, n, 3);
            for (auto& v : f) v *= m_cfg.colour_scale;
            return detail::eq4_graph(f, 3, d, t);
        }
        }
        return {};
    }

    void graph_step(index_t round) {
        const index_t n = m_grid.count(), K = m_classes;
        if (!m_edges) m_edges = build_affinity();
        std::vector<index_t> all(static_cast<std::size_t>(n));
        for (index_t i = 0; i < n; ++i) all[static_cast<std::size_t>(i)] = i;
        const std::vector<float> z = patch_logits(all);
        // Rows of K logits per patch are [n, K] with the classes along axis 1.
        const tensor<float, B> logits(shape{n, K}, std::span<const float>(z));
        const auto& prob = m_softmax.forward(m_ctx, logits);
        const std::vector<float> p(prob.data(), prob.data() + prob.numel());
        stages::potts_refine_options o{.lambda = m_cfg.lambda, .integer_energies = m_cfg.gco_integer_energies};
        if (m_cfg.affinity == grapl_affinity::position) o.lambda /= static_cast<double>(m_grid.grid);
        std::vector<label_t> labels(static_cast<std::size_t>(n), 0);  // GCO starts from all zeros
        stages::potts_refine_result r;
        if (m_cfg.solver == grapl_solver::alpha_expansion)
            r = stages::potts_refine<alpha_expansion<potts>>{o}(p, n, K, *m_edges, labels);
        else
            r = stages::potts_refine<alpha_beta_swap<potts>>{o}(p, n, K, *m_edges, labels);
        m_targets.assign(static_cast<std::size_t>(n * K), 0.0f);
        for (index_t i = 0; i < n; ++i) m_targets[static_cast<std::size_t>(i * K + labels[static_cast<std::size_t>(i)])] = 1.0f;
        m_state->info.values["graph_edges"] = static_cast<double>(r.edges);
        m_state->info.values["energy_round_" + std::to_string(round)] = r.final_energy;
        m_state->info.values["graph_moves_round_" + std::to_string(round)] = static_cast<double>(r.moves_tried);
        notify("grapl_graph_cut", round + 1, m_cfg.rounds - 1, "energy " + std::to_string(r.final_energy));
    }

    // ---- prediction (METHODS.md 5.6) ----
    label_map predict_dense(index_t W, index_t H) {
        const index_t side = m_grid.side() - m_grid.patch + 1, K = m_classes;
        const auto& y = m_net->forward_dense(m_planar.data(), m_grid.side());
        // Argmax over the class-major planes (ties to the smallest class, as torch.argmax).
        const tensor<float, B> logits(shape{1, K, side, side}, std::span<const float>(y.data(), static_cast<std::size_t>(K * side * side)));
        tensor<label_t, B> labels;
        std::vector<std::uint8_t> seen;
        ops::argmax_channels(logits, labels, seen);
        label_map small(side, side, labels.to_vector());
        // Nearest upsampling of the (S-p+1)^2 map to S x S, then nearest to the input size.
        return ops::resize_nearest_labels(ops::resize_nearest_labels(small, m_grid.side(), m_grid.side()), W, H);
    }

    grapl_config m_cfg;
    pipeline::state<B>* m_state = nullptr;  // the state of the stage running now
    stages::patch_grid m_grid{};
    index_t m_classes = 0;
    bool m_pixel_init = false;
    rng m_gen{0}, m_init_state{0};
    std::vector<float> m_planar, m_targets, m_initial_targets, m_host_batch, m_dzt;
    tensor<float, B> m_z, m_logits, m_batch_targets, m_dlogits, m_dprob;
    nn::softmax::bind<B, float> m_softmax;
    nn::context<B> m_ctx;
    std::optional<net_type> m_net;
    std::optional<optim::adam::bind<B, float>> m_adam;
    rng m_dropout_gen{0};
    std::optional<csr_graph<double>> m_edges;
};

/// GraPL's stages. Each reads and writes the run's grapl_workspace<B> in the pipeline state.
namespace grapl_stages {
/// Square resize, network input, initial patch targets, network.
///   reads: state.input, state.gen; writes: grapl_workspace, info.seconds["initialisation"]
struct prepare {
    using config = grapl_config;
    template <Backend B>
    struct bind {
        config cfg;
        explicit bind(const config& c) : cfg(c) { validate(cfg); }
        void run(pipeline::state<B>& st) {
            pipeline::stage_timer t(st, "initialisation");
            st.template data<grapl_workspace<B>>().prepare(cfg, st);
        }
    };
};
/// Training rounds with Potts graph cuts (stages::potts_refine) between them.
///   reads/writes: grapl_workspace; writes info.seconds["cnn_training"], ["graph_cut"], iterations
struct train {
    using config = grapl_config;
    template <Backend B>
    struct bind {
        explicit bind(const config&) {}
        void run(pipeline::state<B>& st) { st.template require<grapl_workspace<B>>("tessel::grapl_stages::train").train(st); }
    };
};
/// Dense prediction, resized to the input.
///   reads: grapl_workspace; writes: state.labels, info.seconds["inference"], values classes, side
struct predict {
    using config = grapl_config;
    template <Backend B>
    struct bind {
        explicit bind(const config&) {}
        void run(pipeline::state<B>& st) {
            pipeline::stage_timer t(st, "inference");
            auto& w = st.template require<grapl_workspace<B>>("tessel::grapl_stages::predict");
            st.labels = w.predict(st.input->width(), st.input->height());
            st.info.values["classes"] = static_cast<double>(w.classes());
            st.info.values["side"] = static_cast<double>(w.grid().side());
        }
    };
};
}  // namespace grapl_stages

/// The preset: pipeline<B, grapl_stages::prepare, train, predict>. B is a host backend.
template <Backend B>
class grapl {
public:
    using net_type = grapl_patch_cnn<B>;
    using pipeline_type = pipeline::pipeline<B, grapl_stages::prepare, grapl_stages::train, grapl_stages::predict>;

    explicit grapl(grapl_config cfg = {}) : m_cfg(std::move(cfg)), m_pipeline(m_cfg, m_cfg, m_cfg) {}

    /// Segments one RGB image; labels are raw class ids in 0..K-1 (not compacted).
    label_map run(const image<std::uint8_t>& img, seed s = {}, pipeline::progress_fn progress = {}) {
        return m_pipeline.run(img, s, std::move(progress));
    }
    [[nodiscard]] const pipeline::report& last_report() const noexcept { return m_pipeline.last_state().info; }
    [[nodiscard]] const grapl_config& config() const noexcept { return m_cfg; }

    // ---- pieces exposed for tests and tools (valid after run()) ----
    [[nodiscard]] index_t classes() const { return workspace().classes(); }
    [[nodiscard]] const stages::patch_grid& grid() const { return workspace().grid(); }
    net_type& network() { return workspace().network(); }
    /// The [-1, 1]-scaled S x S image the network sees, planar [3, S, S].
    [[nodiscard]] const std::vector<float>& network_input() const { return workspace().network_input(); }
    /// The initial patch targets (d^2 x K).
    [[nodiscard]] const std::vector<float>& initial_targets() const { return workspace().initial_targets(); }
    /// The affinity graph of the graph step (after run(), or built on demand).
    const csr_graph<double>& affinity_graph() { return workspace().affinity_graph(); }
    /// Eval-mode logits of the patches `idx` (n x K, row-major).
    std::vector<float> patch_logits(const std::vector<index_t>& idx) { return workspace().patch_logits(idx); }
    /// Eval-mode dense logits [1, K, S-p+1, S-p+1] of the whole resized image.
    tensor<float, B> dense_logits() { return workspace().dense_logits(); }

private:
    grapl_workspace<B>& workspace() const {
        return m_pipeline.last_state().template require<grapl_workspace<B>>("tessel::methods::grapl (call run() first)");
    }
    grapl_config m_cfg;
    pipeline_type m_pipeline;
};

/// Preset trait of GraPL (methods/preset.hpp).
struct grapl_preset {
    static constexpr std::string_view name = "grapl";
    static constexpr std::string_view summary =
        "Wasserman & Farias 2025 (GraPL): a patch CNN trained in rounds under Potts graph cuts";
    using config = grapl_config;
    template <Backend B>
    using method = grapl<B>;
    static constexpr choice<grapl_solver> solvers[] = {{"swap", grapl_solver::alpha_beta_swap},
                                                      {"expansion", grapl_solver::alpha_expansion}};
    static constexpr choice<grapl_initialiser> initialisers[] = {{"slic", grapl_initialiser::slic},
                                                                {"random", grapl_initialiser::random},
                                                                {"knn", grapl_initialiser::knn},
                                                                {"kmeans", grapl_initialiser::kmeans}};
    static constexpr choice<grapl_affinity> affinities[] = {{"colour", grapl_affinity::colour},
                                                           {"raw_colour", grapl_affinity::raw_mean_colour},
                                                           {"position", grapl_affinity::position},
                                                           {"uniform4", grapl_affinity::uniform4}};
    static constexpr choice<grapl_epoch_schedule> schedules[] = {{"paper", grapl_epoch_schedule::paper},
                                                                {"code", grapl_epoch_schedule::code}};

    template <class V>
    static void visit_options(config& c, V& v) {
        constexpr double inf = std::numeric_limits<double>::max();
        v(number_option<index_t>{"rounds", c.rounds, "Training rounds", 1, 1000});
        v(number_option<index_t>{"k0", c.k0, "Initial segments K0", 2, 100000});
        v(number_option<index_t>{"grid", c.grid, "Patch grid d", 1, 4096});
        v(number_option<double>{"lambda", c.lambda, "Potts weight", 0, inf});
        v(number_option<double>{"mu", c.mu, "Continuity weight", 0, inf});
        v(number_option<double>{"lr", c.lr, "Learning rate (SGD for the DFC family, Adam for grapl)", 0, inf, true});
        v(number_option<index_t>{"max-side", c.max_side, "Cap on the square working side S (0: none)", 0, 1000000});
        v(number_option<double>{"subset", c.subset, "Minibatch fraction of the patches", 0, 1, true});
        v(choice_option<grapl_solver>{"solver", c.solver, solvers, "Graph-cut moves"});
        v(choice_option<grapl_initialiser>{"initialiser", c.initialiser, initialisers, "Initial labels"});
        v(choice_option<grapl_affinity>{"affinity", c.affinity, affinities, "Graph affinities"});
        v(choice_option<grapl_epoch_schedule>{"epoch-schedule", c.schedule, schedules,
                                              "Steps per round: paper 40,32,22,12 or code 40,32,22,19"});
        v(flag_option{"hard-initial-labels", c.hard_initial_labels, "Majority patch labels (code) instead of soft ones"});
        v(flag_option{"early-stop-on-total-loss", c.early_stop_on_total_loss,
                      "Round-0 stop on CE + mu C (code) instead of CE"});
        v(flag_option{"cold-start", c.cold_start, "Re-initialise the network after every graph step"});
        v(flag_option{"float-energies", c.gco_integer_energies, "Skip pyGCO's integer conversion of the energies", true});
    }
    /// About 840 bytes per pixel of the square working image (docs/methods.md, "Memory").
    static double estimated_bytes(const config& c, index_t w, index_t h) {
        const auto side = static_cast<double>(grapl_side(c, w, h));
        return side * side * 840.0 + static_cast<double>(w) * static_cast<double>(h) * 16.0;
    }
};

}  // namespace tessel::methods
