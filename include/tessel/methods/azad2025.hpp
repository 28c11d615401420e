// tessel/methods/azad2025.hpp: A. Azad and W. Hamid, "Multi-Scale Unsupervised Image Segmentation
// with Inception-Based Feature Clustering", 2025.
//
// Kim 2020's self-training loop (CE against the argmax + continuity, SGD lr 0.1 momentum 0.9,
// stop at 3 labels) with an Inception backbone (METHODS.md §4):
//   stem conv1x1 3->15 -> BN -> ReLU (paper order; option stem_relu_before_bn = the code's order)
//   Inception 3a (160 | 96->64 | 16->16 | pool->16 = 256) -> ReLU -> BN(256)
//   nConv x Inception 3b (96 | 32->16 | 16->8 | pool->8 = 128), first 256->128, each -> ReLU -> BN(128)
//   head conv1x1 128->q -> BN(q)
// Every conv unit inside a block is conv -> BN -> ReLU. Defaults: q = 100, nConv = 2,
// 150 iterations (the paper's runs), Xavier-uniform conv weights (paper; option pytorch_default).
#pragma once
#include "tessel/methods/kim2020.hpp"
#include "tessel/nn/conv_bn_relu.hpp"
#include "tessel/nn/inception_fused.hpp"

namespace tessel::methods {

/// Inception block followed by ReLU -> BN, as the authors' blocks are. The block is built from
/// fused conv -> BN -> ReLU units with the trailing ReLU -> BN folded in per branch
/// (nn::inception_fused with post_bn): the same function as sequential<inception, relu,
/// batch_norm> at about a third of the memory (docs/nn_blocks.md, "Recomputation").
using azad_block = nn::inception_fused;
/// Stem in the paper's order (conv -> BN -> ReLU, one fused unit) and in the code's (conv -> ReLU -> BN).
using azad_stem_paper = nn::conv_bn_relu;
using azad_stem_code = nn::sequential<nn::conv2d, nn::relu, nn::batch_norm>;
/// Head: conv 1x1 -> BN, no activation (a fused unit with relu = false).
using azad_head = nn::conv_bn_relu;

template <class Stem>
using azad_network = nn::sequential<Stem, azad_block, azad_block, nn::repeat<azad_block>, azad_head>;

struct azad2025_config {
    index_t channels = 100;             ///< q
    index_t stem_channels = 15;         ///< intermediate_channels
    index_t inception_blocks = 2;       ///< nConv: number of 3b blocks (>= 1)
    bool stem_relu_before_bn = false;   ///< the code's stem order instead of the paper's
    nn::init::scheme init = nn::init::scheme::xavier_uniform;
    stages::self_train_options train{.max_iterations = 150};
    stages::dfc_loss::config loss{};   ///< Kim 2020's: CE + continuity mu = 1
    optim::sgd::config optim = stages::self_train_optimiser_defaults<optim::sgd>();  ///< lr 0.1, momentum 0.9
};

template <class Stem>
typename azad_network<Stem>::config azad_network_config(const azad2025_config& c) {
    constexpr auto where = "tessel::methods::azad2025";
    expects(c.channels >= 2, where, "channels must be >= 2, got ", c.channels);
    expects(c.stem_channels >= 1, where, "stem_channels must be >= 1, got ", c.stem_channels);
    expects(c.inception_blocks >= 1, where, "inception_blocks must be >= 1, got ", c.inception_blocks);
    const auto init = c.init;
    const nn::conv2d::config stem_conv{.in_channels = 3, .out_channels = c.stem_channels, .kernel = 1, .init = init};
    typename Stem::config stem;
    if constexpr (std::is_same_v<Stem, azad_stem_paper>)
        // The stem reads 3 channels: recomputing its conv in backward costs nothing worth keeping z for.
        stem = {.conv = stem_conv, .recompute_front = true};
    else
        stem = {stem_conv, {}, {.channels = c.stem_channels}};
    const nn::inception::config i3a{.in_channels = c.stem_channels, .branch1 = 160, .branch2_reduce = 96, .branch2 = 64,
                                    .branch3_reduce = 16, .branch3 = 16, .branch4 = 16, .init = init};
    nn::inception::config i3b{.in_channels = 256, .branch1 = 96, .branch2_reduce = 32, .branch2 = 16,
                              .branch3_reduce = 16, .branch3 = 8, .branch4 = 8, .init = init};
    // Block 3a reads the 15-channel stem output: its 1x1 convs are cheap to recompute in backward
    // (15 multiply-adds per output value) and would otherwise keep 288 channels of z.
    const azad_block::config block3a{.block = i3a, .post_bn = true, .recompute_input_convs = c.stem_channels <= 32};
    const azad_block::config first3b{.block = i3b, .post_bn = true};
    i3b.in_channels = 128;
    const azad_block::config later3b{.block = i3b, .post_bn = true};
    return {stem,
            block3a,
            first3b,
            {.count = c.inception_blocks - 1, .block = later3b},
            azad_head::config{.conv = {.in_channels = 128, .out_channels = c.channels, .kernel = 1, .init = init},
                              .relu = false}};
}

template <Backend B>
class azad2025 {
public:
    explicit azad2025(azad2025_config cfg = {}) : m_cfg(std::move(cfg)) {}

    label_map run(const image<std::uint8_t>& img, seed s = {}, pipeline::progress_fn progress = {}) {
        return m_cfg.stem_relu_before_bn ? run_with<azad_stem_code>(img, s, std::move(progress))
                                         : run_with<azad_stem_paper>(img, s, std::move(progress));
    }
    [[nodiscard]] const pipeline::report& last_report() const noexcept { return m_report; }

private:
    template <class Stem>
    label_map run_with(const image<std::uint8_t>& img, seed s, pipeline::progress_fn progress) {
        using stage = stages::self_train<azad_network<Stem>>;
        pipeline::pipeline<B, stage> p(typename stage::config{.net = azad_network_config<Stem>(m_cfg),
                                                              .train = m_cfg.train,
                                                              .loss = m_cfg.loss,
                                                              .optim = m_cfg.optim});
        label_map out = p.run(img, s, std::move(progress));
        m_report = p.last_state().info;
        return out;
    }

    azad2025_config m_cfg;
    pipeline::report m_report;
};

/// Preset trait of Azad & Hamid 2025 (methods/preset.hpp).
struct azad2025_preset {
    static constexpr std::string_view name = "azad2025";
    static constexpr std::string_view summary =
        "Azad & Hamid 2025: Kim 2020's self-training with an Inception backbone";
    using config = azad2025_config;
    template <Backend B>
    using method = azad2025<B>;
    static constexpr choice<nn::init::scheme> inits[] = {{"xavier", nn::init::scheme::xavier_uniform},
                                                         {"pytorch", nn::init::scheme::pytorch_default}};

    template <class V>
    static void visit_options(config& c, V& v) {
        visit_dfc_network_options(c.channels, c.inception_blocks, v);
        visit_dfc_training_options(c.train, c.loss, c.optim, v);
        v(flag_option{"stem-relu-before-bn", c.stem_relu_before_bn, "The code's stem order (conv-ReLU-BN)"});
        v(choice_option<nn::init::scheme>{"init", c.init, inits, "Weight initialisation"});
    }
    /// About 6 KB per pixel (docs/methods.md, "Memory").
    static double estimated_bytes(const config& c, index_t w, index_t h) {
        return static_cast<double>(w) * static_cast<double>(h) * (4800.0 + 12.0 * static_cast<double>(c.channels));
    }
};

}  // namespace tessel::methods
