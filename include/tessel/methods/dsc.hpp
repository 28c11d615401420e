// tessel/methods/dsc.hpp: Deep Superpixel Cut (Lin, Zhong & Lu, "Deep superpixel cut for
// unsupervised image segmentation", ICPR 2020; METHODS.md §7). No public code exists; every gap
// of the paper is filled by a marked proposal of METHODS.md §7.2.
//
// Stage 1, trained once (examples/train.cpp, `tessel-train superae`): the SuperAE, an encoder of
// three conv3x3 -> BN -> ReLU modules (64, 128, 256 channels; modules 2 and 3 stride 2) and a
// decoder of two transposed-conv3x3 -> BN -> ReLU modules that double the size (128, 64) and a
// conv3x3 64 -> 3 with a sigmoid, trained with the template reconstruction loss (Eq. 1-2,
// loss/superpixel_reconstruction.hpp). Its parameters live in a model file (io/model_file.hpp).
// Stage 2, per image, as a pipeline:
//   superae_reconstruction  x^R = SuperAE(x), eval-mode BN, reflect-padded to a multiple of 4;
//   dsc_superpixels         M superpixels of x^R: Felzenszwalb with its scale searched for the
//                           count closest to M (default), or SLIC with n = M;
//   self_train              the deep embedding F = conv1x1(hypercolumn(encoder)(x)) (451 -> K =
//                           32; nn/hypercolumn.hpp), its encoder loaded from the SuperAE,
//                           trained T = 128 steps with SGD (lr 5e-2, momentum 0.9) on
//                           alpha CE(F, superpixel-majority pseudo-labels) + beta soft cut
//                           (Eq. 3-9, loss/soft_cut.hpp), beta = 5 / M^2;
//   superpixel_vote         the final labels: per-superpixel majority of the per-pixel argmax
//                           after the last update, compacted to 0..k-1.
#pragma once
#include <algorithm>
#include <array>
#include <limits>
#include <memory>
#include <string>

#include "tessel/io/model_file.hpp"
#include "tessel/loss/cross_entropy.hpp"
#include "tessel/loss/soft_cut.hpp"
#include "tessel/methods/preset.hpp"
#include "tessel/nn/activation.hpp"
#include "tessel/nn/batch_norm.hpp"
#include "tessel/nn/conv2d.hpp"
#include "tessel/nn/conv_transpose2d.hpp"
#include "tessel/nn/hypercolumn.hpp"
#include "tessel/nn/relu.hpp"
#include "tessel/nn/sequential.hpp"
#include "tessel/ops/pad.hpp"
#include "tessel/pipeline/pipeline.hpp"
#include "tessel/pipeline/stages/self_train.hpp"
#include "tessel/superpixel/slic.hpp"
#include "tessel/superpixel/target_count.hpp"

namespace tessel::methods {

// ---- the networks ------------------------------------------------------------------------------

/// conv3x3 -> BN -> ReLU, the SuperAE's basic module.
using superae_module = nn::sequential<nn::conv2d, nn::batch_norm, nn::relu>;
/// transposed conv3x3 (stride 2, output padding 1: doubles the size) -> BN -> ReLU.
using superae_up_module = nn::sequential<nn::conv_transpose2d, nn::batch_norm, nn::relu>;
using superae_encoder = nn::sequential<superae_module, superae_module, superae_module>;
/// Layers 4-6 and the sigmoid; layer 6 has no BN and no ReLU (§7.2).
using superae_decoder = nn::sequential<superae_up_module, superae_up_module, nn::conv2d, nn::sigmoid>;
using superae_network = nn::sequential<superae_encoder, superae_decoder>;
/// Stage 2's deep embedding: image + upsampled encoder outputs (451 channels), conv1x1 to K.
using dsc_embedding = nn::sequential<nn::hypercolumn<superae_module, superae_module, superae_module>, nn::conv2d>;

inline constexpr std::array<index_t, 3> superae_widths{64, 128, 256};

inline superae_module::config superae_module_config(index_t in, index_t out, index_t stride) {
    return {nn::conv2d::config{.in_channels = in, .out_channels = out, .kernel = 3, .stride = stride, .padding = 1},
            {.channels = out},
            {}};
}
inline superae_encoder::config superae_encoder_config() {
    return {superae_module_config(3, 64, 1), superae_module_config(64, 128, 2), superae_module_config(128, 256, 2)};
}
inline superae_up_module::config superae_up_config(index_t in, index_t out) {
    return {nn::conv_transpose2d::config{.in_channels = in, .out_channels = out, .kernel = 3, .stride = 2,
                                         .padding = 1, .output_padding = 1},
            {.channels = out},
            {}};
}
inline superae_decoder::config superae_decoder_config() {
    return {superae_up_config(256, 128), superae_up_config(128, 64),
            nn::conv2d::config{.in_channels = 64, .out_channels = 3, .kernel = 3, .padding = 1}, {}};
}
inline superae_network::config superae_config() { return {superae_encoder_config(), superae_decoder_config()}; }
inline dsc_embedding::config dsc_embedding_config(index_t features = 32) {
    expects(features >= 2, "tessel::methods::dsc_embedding_config", "K must be >= 2, got ", features);
    const auto e = superae_encoder_config();
    return {{{std::get<0>(e), std::get<1>(e), std::get<2>(e)}, nn::upsample_mode::bilinear},
            nn::conv2d::config{.in_channels = 3 + 64 + 128 + 256, .out_channels = features, .kernel = 1}};
}

/// Writes a SuperAE's encoder and decoder (parameters and BN running statistics) into m.
template <Backend B>
void save_superae(io::model_file& m, typename superae_network::template bind<B>& net) {
    m.metadata["network"] = "superae";
    m.add_layer<B>("encoder", net.template layer<0>());
    m.add_layer<B>("decoder", net.template layer<1>());
}
/// Loads a SuperAE's encoder (and, with decoder, its decoder) from m; refuses other networks.
template <Backend B, class Encoder>
void load_superae_encoder(const io::model_file& m, Encoder& enc) {
    expects(m.metadata.count("network") && m.metadata.at("network") == "superae", "tessel::methods::dsc",
            "the model file does not hold a SuperAE (metadata 'network' is '",
            m.metadata.count("network") ? m.metadata.at("network") : std::string("missing"), "')");
    m.load_layer<B>("encoder", enc);
}
template <Backend B>
void load_superae(const io::model_file& m, typename superae_network::template bind<B>& net) {
    load_superae_encoder<B>(m, net.template layer<0>());
    m.load_layer<B>("decoder", net.template layer<1>());
}

// ---- stage-2 pipeline stages -----------------------------------------------------------------

/// The SuperAE a run uses: a loaded model file, or (only when asked) random weights.
struct superae_source {
    std::shared_ptr<const io::model_file> model;  ///< null: untrained
    bool allow_untrained = false;
    void check(std::string_view where) const {
        expects(model != nullptr || allow_untrained, where,
                "needs a trained SuperAE model (--model FILE, made by `tessel-train superae`); pass "
                "--untrained-superae to run with random encoder weights instead (results are then not the method's)");
    }
};

/// The reconstruction x^R of the input, [1, 3, H, W] in [0, 1], and as an 8-bit RGB image.
struct superae_output {
    static constexpr const char* name = "superae_output";
    image<std::uint8_t> reconstruction;
};

/// Stage: x^R = SuperAE(x) with eval-mode BN (running statistics of training), the input reflect-
/// padded to a multiple of 4 and the output cropped back (§7.2).
///   reads: state.input_tensor;  writes: superae_output
struct superae_reconstruction {
    using config = superae_source;
    template <Backend B>
    class bind {
    public:
        explicit bind(const config& cfg) : m_cfg(cfg) { cfg.check("tessel::methods::superae_reconstruction"); }
        void run(pipeline::state<B>& st) {
            pipeline::stage_timer timer(st, "superae_reconstruction");
            rng init(0);  // §7.2: fixed seed 0 for the (untrained) SuperAE
            typename superae_network::template bind<B> net(superae_config(), init);
            if (m_cfg.model) load_superae<B>(*m_cfg.model, net);
            nn::context<B> ctx;
            ctx.training = false;
            const tensor<float, B>& x = st.input_tensor;
            const index_t H = x.dim(2), W = x.dim(3);
            tensor<float, B> padded, cropped;
            ops::reflect_pad(x, ops::round_up(H, 4) - H, ops::round_up(W, 4) - W, padded);
            ops::crop(net.forward(ctx, padded), H, W, cropped);
            const std::vector<float> host = cropped.to_vector();
            image<std::uint8_t> out(W, H, 3);
            for (index_t c = 0; c < 3; ++c)
                for (index_t i = 0; i < H * W; ++i) {
                    const float v = host[static_cast<std::size_t>(c * H * W + i)] * 255.0f + 0.5f;
                    out.data()[i * 3 + c] = static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
                }
            st.template data<superae_output>().reconstruction = std::move(out);
        }

    private:
        config m_cfg;
    };
};

enum class dsc_superpixel_algorithm { felzenszwalb, slic };

/// Stage: M superpixels of the reconstruction (or, with on_input, of the photo itself).
///   reads: superae_output (state.input with on_input);  writes: state.superpixels
struct dsc_superpixels {
    struct config {
        dsc_superpixel_algorithm algorithm = dsc_superpixel_algorithm::felzenszwalb;
        index_t target = 100;            ///< M
        double felzenszwalb_sigma = 0.8;
        index_t felzenszwalb_min_size = 20;
        float slic_compactness = 10.0f;
    };
    template <Backend B>
    class bind {
    public:
        explicit bind(const config& cfg) : m_cfg(cfg) {
            expects(cfg.target >= 1, "tessel::methods::dsc_superpixels", "M must be >= 1, got ", cfg.target);
        }
        void run(pipeline::state<B>& st) {
            pipeline::stage_timer timer(st, "superpixels");
            const image<std::uint8_t>& img = st.template require<superae_output>("tessel::methods::dsc_superpixels")
                                                 .reconstruction;
            if (m_cfg.algorithm == dsc_superpixel_algorithm::felzenszwalb) {
                double scale = 0;
                st.superpixels = felzenszwalb_with_count(
                    B{}, img, m_cfg.target,
                    felzenszwalb::config{.sigma = m_cfg.felzenszwalb_sigma, .min_size = m_cfg.felzenszwalb_min_size}, {},
                    &scale);
                st.info.values["felzenszwalb_scale"] = scale;
            } else {
                st.superpixels = slic{{.n_segments = m_cfg.target, .compactness = m_cfg.slic_compactness}}(B{}, img);
            }
            st.info.values["superpixels"] = static_cast<double>(st.superpixels.count_labels());
        }

    private:
        config m_cfg;
    };
};

/// Network initialisation of stage 2: the encoder from the SuperAE (§7.2: restored before every
/// image); the 1x1 conv keeps its seeded PyTorch-default initialisation.
struct superae_encoder_init {
    using config = superae_source;
    template <class B, class Net>
    static void apply(const config& cfg, const pipeline::state<B>&, Net& net) {
        cfg.check("tessel::methods::superae_encoder_init");
        if (cfg.model) load_superae_encoder<B>(*cfg.model, net.template layer<0>());
    }
};

/// Deep Superpixel Cut's objective (Eq. 9): alpha CE(F, pseudo-labels) (mean over pixels) +
/// beta L2 (soft cut over state.superpixels), beta = cut_weight / M^2 with M the superpixel count.
struct dsc_loss {
    struct config {
        double ce_weight = 1.0;          ///< alpha
        double cut_weight = 5.0;         ///< beta * M^2 (paper: 5)
        double sigma = 10.0;             ///< affinity bandwidth
        double distance_factor = 2.0;    ///< d = distance_factor * sqrt(N / M)
        bool q_from_softmax_of_g = false;
    };
    template <Backend B>
    class bind {
    public:
        explicit bind(const config& cfg) : m_cfg(cfg), m_cut({.sigma = cfg.sigma, .q_from_softmax_of_g = cfg.q_from_softmax_of_g}) {
            constexpr auto where = "tessel::methods::dsc_loss";
            expects(std::isfinite(cfg.ce_weight) && cfg.ce_weight >= 0 && std::isfinite(cfg.cut_weight) &&
                        cfg.cut_weight >= 0,
                    where, "weights must be finite and >= 0, got ce ", cfg.ce_weight, ", cut ", cfg.cut_weight);
        }
        double value_and_grad(const tensor<float, B>& r, const tensor<label_t, B>& labels, tensor<float, B>& dr,
                              const pipeline::state<B>& st) {
            if (m_graph.regions == 0) {
                expects(!st.superpixels.empty(), "tessel::methods::dsc_loss", "needs superpixels in the pipeline state");
                m_graph = loss::soft_cut_graph::build(st.superpixels, m_cfg.distance_factor);
            }
            const double M = static_cast<double>(m_graph.regions);
            // The losses return their unweighted values; the objective is the weighted sum.
            const double beta = m_cfg.cut_weight / (M * M);
            const double ce = loss::cross_entropy{}.value_and_grad(r, labels, dr, {.weight = m_cfg.ce_weight});
            const double cut = m_cut.value_and_grad(r, m_graph, dr, {.weight = beta, .accumulate = true});
            return m_cfg.ce_weight * ce + beta * cut;
        }

    private:
        config m_cfg;
        loss::soft_cut::bind<B, float> m_cut;
        loss::soft_cut_graph m_graph;
    };
};

/// Stage: the final labels, the per-superpixel majority of state.labels (unless pixelwise),
/// compacted to 0..k-1 in raster order of first appearance.
struct superpixel_vote {
    struct config {
        bool pixelwise = false;
    };
    template <Backend B>
    class bind {
    public:
        explicit bind(const config& cfg) : m_cfg(cfg) {}
        void run(pipeline::state<B>& st) {
            expects(!st.labels.empty(), "tessel::methods::superpixel_vote", "no labels in the pipeline state");
            if (!m_cfg.pixelwise) {
                label_t classes = 0;
                for (label_t l : st.labels.values()) classes = std::max<label_t>(classes, l + 1);
                stages::superpixel_majority vote;
                vote.prepare(st, classes);
                vote(st, st.labels.data(), st.labels.size());
            }
            relabel_sequential(st.labels);
        }

    private:
        config m_cfg;
    };
};

// ---- the method ------------------------------------------------------------------------------

struct dsc_config {
    std::string model;                     ///< SuperAE model file (tessel-train superae)
    bool untrained_superae = false;        ///< run without a model (random SuperAE, seed 0)
    index_t features = 32;                 ///< K
    dsc_superpixels::config superpixels{};
    stages::self_train_options train{.max_iterations = 128, .min_labels = 0};  ///< T = 128
    dsc_loss::config loss{};
    optim::sgd::config optim{.lr = 5e-2, .momentum = 0.9};
    bool pixelwise_argmax = false;         ///< output the per-pixel argmax instead of the vote
};

template <Backend B>
class dsc {
public:
    using train_stage = stages::self_train<dsc_embedding, stages::superpixel_majority, dsc_loss, optim::sgd,
                                           superae_encoder_init>;
    using pipeline_type = pipeline::pipeline<B, superae_reconstruction, dsc_superpixels, train_stage, superpixel_vote>;

    explicit dsc(dsc_config cfg = {}) : m_cfg(std::move(cfg)) {
        if (!m_cfg.model.empty()) m_source.model = std::make_shared<io::model_file>(io::model_file::read(m_cfg.model));
        m_source.allow_untrained = m_cfg.untrained_superae;
        m_source.check("tessel::methods::dsc");
        expects(m_cfg.features >= 2, "tessel::methods::dsc", "K must be >= 2, got ", m_cfg.features);
    }
    /// With an already loaded model (shared by several runs or settings).
    dsc(dsc_config cfg, std::shared_ptr<const io::model_file> model) : m_cfg(std::move(cfg)) {
        m_source.model = std::move(model);
        m_source.allow_untrained = m_cfg.untrained_superae;
        m_source.check("tessel::methods::dsc");
    }

    label_map run(const image<std::uint8_t>& img, seed s = {}, pipeline::progress_fn progress = {}) {
        pipeline_type p(m_source, m_cfg.superpixels,
                        typename train_stage::config{.net = dsc_embedding_config(m_cfg.features),
                                                     .init = m_source,
                                                     .train = m_cfg.train,
                                                     .loss = m_cfg.loss,
                                                     .optim = m_cfg.optim},
                        superpixel_vote::config{.pixelwise = m_cfg.pixelwise_argmax});
        label_map out = p.run(img, s, std::move(progress));
        m_report = p.last_state().info;
        m_report.values["superae_trained"] = m_source.model ? 1.0 : 0.0;
        return out;
    }
    [[nodiscard]] const pipeline::report& last_report() const noexcept { return m_report; }
    [[nodiscard]] const dsc_config& config() const noexcept { return m_cfg; }

private:
    dsc_config m_cfg;
    superae_source m_source;
    pipeline::report m_report;
};

inline constexpr choice<dsc_superpixel_algorithm> dsc_superpixel_choices[] = {
    {"felzenszwalb", dsc_superpixel_algorithm::felzenszwalb}, {"slic", dsc_superpixel_algorithm::slic}};

/// Preset trait of Deep Superpixel Cut (methods/preset.hpp).
struct dsc_preset {
    static constexpr std::string_view name = "dsc";
    static constexpr std::string_view summary =
        "Lin, Zhong & Lu 2020 (Deep Superpixel Cut): a SuperAE embedding self-trained on a soft superpixel cut";
    using config = dsc_config;
    template <Backend B>
    using method = dsc<B>;

    template <class V>
    static void visit_options(config& c, V& v) {
        constexpr double inf = std::numeric_limits<double>::max();
        v(path_option{"model", c.model, "Deep Superpixel Cut: SuperAE model file (made by tessel-train superae)"});
        v(flag_option{"untrained-superae", c.untrained_superae,
                      "Deep Superpixel Cut without a model: random SuperAE weights (not the method's results)"});
        v(number_option<index_t>{"embedding-channels", c.features, "Deep Superpixel Cut: embedding channels K", 2, 4096});
        v(number_option<index_t>{"superpixel-count", c.superpixels.target, "Deep Superpixel Cut: superpixel count M", 1,
                                 1000000});
        v(choice_option<dsc_superpixel_algorithm>{"superpixel-algorithm", c.superpixels.algorithm,
                                                  dsc_superpixel_choices,
                                                  "Deep Superpixel Cut: superpixels of the reconstruction"});
        v(number_option<index_t>{"min-size", c.superpixels.felzenszwalb_min_size, "Felzenszwalb minimum segment size",
                                 0, inf});
        v(number_option<float>{"compactness", c.superpixels.slic_compactness, "SLIC compactness", 0, inf, true});
        v(number_option<index_t>{"max-iter", c.train.max_iterations, "Maximum training iterations", 0, inf});
        v(number_option<double>{"max-seconds", c.train.max_seconds, "Wall-clock budget of the training loop in seconds (0: none)", 0, inf});
        v(number_option<double>{"lr", c.optim.lr, "Learning rate (SGD for the DFC family, Adam for grapl)", 0, inf,
                                true});
        v(number_option<double>{"momentum", c.optim.momentum, "SGD momentum", 0, 1});
        v(number_option<double>{"similarity-weight", c.loss.ce_weight, "Weight of the cross-entropy on pseudo-labels",
                                0, inf});
        v(number_option<double>{"cut-weight", c.loss.cut_weight,
                                "Deep Superpixel Cut: soft-cut weight times M^2 (beta = cut-weight / M^2)", 0, inf});
        v(number_option<double>{"cut-sigma", c.loss.sigma, "Deep Superpixel Cut: affinity bandwidth sigma", 0, inf,
                                true});
        v(number_option<double>{"cut-distance", c.loss.distance_factor,
                                "Deep Superpixel Cut: neighbour distance d in units of sqrt(N/M)", 0, inf, true});
        v(flag_option{"q-from-softmax-of-g", c.loss.q_from_softmax_of_g,
                      "Deep Superpixel Cut: Q as the softmax of the region mean features"});
        v(flag_option{"pixelwise-argmax", c.pixelwise_argmax,
                      "Deep Superpixel Cut: output the per-pixel argmax instead of the superpixel vote"});
    }
    /// About 1.4 kB of activations and gradients per pixel at full resolution (docs/dsc.md).
    static double estimated_bytes(const config& c, index_t w, index_t h) {
        return static_cast<double>(w) * static_cast<double>(h) * (8000.0 + 16.0 * static_cast<double>(c.features));
    }
};

}  // namespace tessel::methods
