// tessel/methods/kim2020.hpp: Kim, Kanezaki & Tanaka, "Unsupervised learning of image segmentation
// based on differentiable feature clustering", IEEE TIP 29, 2020 (DFC).
//
// A fully convolutional network is trained on one image against its own argmax labels with a
// cross-entropy (feature similarity) loss plus an L1 spatial-continuity loss; the label count
// falls as training proceeds and the run stops at min_labels or max_iterations. Settings follow
// the authors' code (kanezaki/pytorch-unsupervised-segmentation-tip, demo.py; METHODS.md §2):
//   q = 100 channels, M = 2 conv blocks (conv3x3 -> ReLU -> BN, BN *after* ReLU), head conv1x1 -> BN;
//   PyTorch default initialisation; SGD lr 0.1, momentum 0.9; mu = 1; max 1000 iterations;
//   stop at 3 labels; train-mode BN throughout; RGB input /255 (option bgr_input).
// Also: scribble mode (§2.6) and reference-image mode (train once, apply to new images, §2.7).
#pragma once
#include <limits>
#include <optional>
#include <vector>

#include "tessel/methods/preset.hpp"
#include "tessel/nn/batch_norm.hpp"
#include "tessel/nn/conv2d.hpp"
#include "tessel/nn/relu.hpp"
#include "tessel/nn/repeat.hpp"
#include "tessel/nn/sequential.hpp"
#include "tessel/ops/resize.hpp"
#include "tessel/pipeline/pipeline.hpp"
#include "tessel/pipeline/stages/self_train.hpp"

namespace tessel::methods {

/// conv3x3 -> ReLU -> BN: the repeated block of the DFC network.
using dfc_block = nn::sequential<nn::conv2d, nn::relu, nn::batch_norm>;
/// The DFC response-map network (METHODS.md §2.1): block, (M-1) blocks, conv1x1 -> BN.
using dfc_network = nn::sequential<nn::conv2d, nn::relu, nn::batch_norm, nn::repeat<dfc_block>, nn::conv2d, nn::batch_norm>;

/// The network's config for q channels and M conv blocks.
inline dfc_network::config dfc_network_config(index_t q = 100, index_t conv_blocks = 2, index_t in_channels = 3,
                                              nn::init::scheme init = nn::init::scheme::pytorch_default) {
    constexpr auto where = "tessel::methods::dfc_network_config";
    expects(q >= 2, where, "the number of channels q must be >= 2, got ", q);
    expects(conv_blocks >= 1, where, "the number of conv blocks M must be >= 1, got ", conv_blocks);
    const nn::conv2d::config c3{.in_channels = q, .out_channels = q, .kernel = 3, .padding = 1, .init = init};
    dfc_block::config block{c3, {}, {.channels = q}};
    return {nn::conv2d::config{.in_channels = in_channels, .out_channels = q, .kernel = 3, .padding = 1, .init = init},
            {},
            {.channels = q},
            {.count = conv_blocks - 1, .block = block},
            nn::conv2d::config{.in_channels = q, .out_channels = q, .kernel = 1, .padding = 0, .init = init},
            {.channels = q}};
}

/// Swaps the R and B channels (the authors read images with OpenCV, i.e. as BGR).
inline image<std::uint8_t> swap_red_blue(image<std::uint8_t> img) {
    if (img.channels() >= 3)
        for (index_t i = 0; i < img.num_pixels(); ++i) std::swap(img.data()[i * img.channels()], img.data()[i * img.channels() + 2]);
    return img;
}

struct kim2020_config {
    index_t channels = 100;                 ///< q (nChannel): upper bound on the number of segments
    index_t conv_blocks = 2;                ///< M (nConv)
    stages::self_train_options train{};     ///< demo.py defaults: 1000 iterations, stop at 3 labels
    stages::dfc_loss::config loss{};        ///< CE weight 1, continuity mu = 1, scribble weight 0.5
    optim::sgd::config optim = stages::self_train_optimiser_defaults<optim::sgd>();  ///< lr 0.1, momentum 0.9
    std::optional<label_map> scribbles{};   ///< scribble mode: class ids, 255 = unlabelled (§2.6)
    bool bgr_input = false;                 ///< feed B,G,R as the authors' OpenCV reader does
};

/// Reference-image mode settings (demo_ref.py, METHODS.md §2.7).
struct kim2020_reference_config {
    index_t size = 224;                 ///< training images are resized to size x size
    index_t batch_size = 1;
    index_t updates_per_batch = 1000;   ///< maxUpdate
    index_t passes = 1;                 ///< maxIter: passes over the batches
    double continuity_weight = 5.0;     ///< mu = 5 in this mode
    bool eval_mode_bn = false;          ///< test images use running statistics instead of their own
};

template <Backend B>
class kim2020 {
public:
    explicit kim2020(kim2020_config cfg = {}) : m_cfg(std::move(cfg)) {}

    /// Segments one RGB image; labels are channel indices in 0..q-1 (not compacted).
    label_map run(const image<std::uint8_t>& img, seed s = {}, pipeline::progress_fn progress = {}) {
        using stage = stages::self_train<dfc_network>;
        pipeline::pipeline<B, stage> p(typename stage::config{.net = dfc_network_config(m_cfg.channels, m_cfg.conv_blocks),
                                                              .train = m_cfg.train,
                                                              .loss = m_cfg.loss,
                                                              .optim = m_cfg.optim,
                                                              .scribbles = m_cfg.scribbles});
        label_map out = p.run(m_cfg.bgr_input ? swap_red_blue(img) : img, s, std::move(progress));
        m_report = p.last_state().info;
        return out;
    }
    [[nodiscard]] const pipeline::report& last_report() const noexcept { return m_report; }
    [[nodiscard]] const kim2020_config& config() const noexcept { return m_cfg; }

    /// Reference mode: trains one network on `images` (resized to ref.size, in batches), without
    /// the min_labels stop. The network is kept for apply().
    void fit_reference(const std::vector<image<std::uint8_t>>& images, const kim2020_reference_config& ref = {},
                       seed s = {}, pipeline::progress_fn progress = {}) {
        constexpr auto where = "tessel::methods::kim2020::fit_reference";
        expects(!images.empty(), where, "no training images");
        expects(ref.size >= 8 && ref.batch_size >= 1 && ref.updates_per_batch >= 1 && ref.passes >= 1, where,
                "invalid settings: size ", ref.size, ", batch_size ", ref.batch_size, ", updates_per_batch ",
                ref.updates_per_batch, ", passes ", ref.passes);
        const index_t batches = static_cast<index_t>(images.size()) / ref.batch_size;
        expects(batches >= 1, where, "need at least batch_size = ", ref.batch_size, " images, got ", images.size());
        m_ref = ref;
        rng init(s.value);
        stages::dfc_loss::config loss = m_cfg.loss;
        loss.continuity_weight = ref.continuity_weight;
        m_trainer.emplace(dfc_network_config(m_cfg.channels, m_cfg.conv_blocks), init, m_cfg.train, loss, m_cfg.optim);
        pipeline::state<B> st;
        stages::no_refinement none;
        const index_t total = ref.passes * batches * ref.updates_per_batch;
        index_t done = 0;
        for (index_t pass = 0; pass < ref.passes; ++pass)
            for (index_t b = 0; b < batches; ++b) {
                const tensor<float, B> x = make_batch(images, b * ref.batch_size, ref.batch_size, ref.size);
                for (index_t u = 0; u < ref.updates_per_batch; ++u) {
                    const auto r = m_trainer->step(x, st, none);
                    ++done;
                    if (progress && (done % 10 == 0 || done == total))
                        progress("reference_train", done, total, "labels " + std::to_string(r.labels_before));
                }
            }
    }

    /// Segments an image at full resolution with the network trained by fit_reference.
    label_map apply(const image<std::uint8_t>& img) {
        constexpr auto where = "tessel::methods::kim2020::apply";
        expects(m_trainer.has_value(), where, "no trained network: call fit_reference first");
        expects(!img.empty() && img.channels() == 3, where, "expects a non-empty RGB image");
        const tensor<float, B> x = to_nchw<B>(m_cfg.bgr_input ? swap_red_blue(img) : img);
        return label_map(img.width(), img.height(), m_trainer->predict(x, m_ref.eval_mode_bn));
    }

private:
    tensor<float, B> make_batch(const std::vector<image<std::uint8_t>>& images, index_t first, index_t n, index_t size) {
        tensor<float, cpu_serial> host(shape{n, 3, size, size});
        for (index_t k = 0; k < n; ++k) {
            const auto& src = images[static_cast<std::size_t>(first + k)];
            expects(src.channels() == 3, "tessel::methods::kim2020::fit_reference", "training image ", first + k,
                    " has ", src.channels(), " channels; expected RGB");
            const auto small = to_nchw(ops::resize_bilinear(m_cfg.bgr_input ? swap_red_blue(src) : src, size, size));
            std::copy(small.data(), small.data() + small.numel(), host.data() + k * small.numel());
        }
        if constexpr (std::is_same_v<B, cpu_serial>)
            return host;
        else
            return host.template to<B>();
    }

    kim2020_config m_cfg;
    kim2020_reference_config m_ref{};
    pipeline::report m_report;
    std::optional<stages::dfc_trainer<dfc_network, B>> m_trainer;
};

/// The network options of the DFC-family presets: q and the number of blocks.
template <class V>
void visit_dfc_network_options(index_t& channels, index_t& blocks, V& v) {
    v(number_option<index_t>{"channels", channels, "Response channels q, an upper bound on the segment count", 2, 4096});
    v(number_option<index_t>{"conv-blocks", blocks, "Conv blocks M (azad2025: Inception 3b blocks)", 1, 64});
}

/// Peak memory of a kim2020 or kanezaki2018 run: about 41 bytes per pixel and response channel
/// (docs/methods.md, "Memory").
inline double dfc_estimated_bytes(index_t channels, index_t w, index_t h) {
    return static_cast<double>(w) * static_cast<double>(h) * (250.0 + 41.0 * static_cast<double>(channels));
}

/// The options every DFC-family preset shares: stopping rules, loss weights, SGD.
template <class V>
void visit_dfc_training_options(stages::self_train_options& t, stages::dfc_loss::config& l, optim::sgd::config& o,
                                V& v) {
    constexpr double inf = std::numeric_limits<double>::max();
    v(number_option<index_t>{"max-iter", t.max_iterations, "Maximum training iterations", 0, inf});
    v(number_option<double>{"max-seconds", t.max_seconds, "Wall-clock budget of the training loop in seconds (0: none)", 0, inf});
    v(number_option<index_t>{"min-labels", t.min_labels, "Stop once this many labels or fewer remain", 0, inf});
    v(number_option<double>{"lr", o.lr, "Learning rate (SGD for the DFC family, Adam for grapl)", 0, inf, true});
    v(number_option<double>{"momentum", o.momentum, "SGD momentum", 0, 1});
    v(number_option<double>{"continuity-weight", l.continuity_weight, "Weight mu of the spatial continuity loss", 0, inf});
    v(number_option<double>{"similarity-weight", l.similarity_weight, "Weight of the cross-entropy on pseudo-labels", 0,
                            inf});
    v(flag_option{"label-from-last-iteration", t.label_from_last_iteration,
                  "Output the last training labelling instead of a fresh forward pass"});
}

/// Preset trait of Kim et al. 2020 (methods/preset.hpp).
struct kim2020_preset {
    static constexpr std::string_view name = "kim2020";
    static constexpr std::string_view summary =
        "Kim, Kanezaki & Tanaka 2020 (DFC): a CNN self-trained on its own argmax with a continuity loss";
    using config = kim2020_config;
    template <Backend B>
    using method = kim2020<B>;
    using reference_config = kim2020_reference_config;

    template <class V>
    static void visit_options(config& c, V& v) {
        visit_dfc_network_options(c.channels, c.conv_blocks, v);
        visit_dfc_training_options(c.train, c.loss, c.optim, v);
        v(label_file_option{"scribble", c.scribbles, "Scribble mode: 8-bit PNG of class ids, 255 = unlabelled"});
        v(number_option<double>{"scribble-weight", c.loss.scribble_weight, "Weight of the scribble cross-entropy", 0,
                                std::numeric_limits<double>::max()});
        v(flag_option{"bgr-input", c.bgr_input, "Feed B,G,R as the authors' OpenCV reader does"});
    }
    /// Reference-image mode (train once on a folder, apply to new images).
    template <class V>
    static void visit_reference_options(reference_config& r, V& v) {
        v(number_option<index_t>{"ref-size", r.size, "Reference mode training size", 8, 4096});
        v(number_option<index_t>{"ref-updates", r.updates_per_batch, "Reference mode updates per batch", 1, 1000000});
        v(number_option<index_t>{"ref-batch", r.batch_size, "Reference mode batch size", 1, 1024});
        v(number_option<double>{"continuity-weight", r.continuity_weight, "Weight mu of the spatial continuity loss", 0,
                                std::numeric_limits<double>::max()});
        v(flag_option{"eval-bn", r.eval_mode_bn, "Reference mode: use running BN statistics on new images"});
    }
    static double estimated_bytes(const config& c, index_t w, index_t h) { return dfc_estimated_bytes(c.channels, w, h); }
};

}  // namespace tessel::methods
