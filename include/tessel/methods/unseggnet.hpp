// tessel/methods/unseggnet.hpp: UnSegGNet (arXiv 2405.06057): foreground segmentation from ViT
// features, a thresholded similarity graph, a GCN and a modularity loss, trained per image
// (METHODS.md §6; authors' code ksgr5566/UnSegGNet at f4bfdce).
//
// A pipeline of library stages:
//   vit_features      DINO ViT-S/8 at stride 4 on the 224 x 224 LANCZOS-resized image, keys of
//                     block 11 (3,025 x 384); or a precomputed feature file
//   similarity_graph  A = [cos >= tau] dense, diagonal 1 (NCUT: thresholded dot products)
//   self_train        the GNNpool network below on the node features, graph_cluster_loss
//                     (softmax, then DMoN as coded by default), AdamW with weight decay 0 (= Adam)
//                     or 0.01 (the code's AdamW), labels of the last training forward pass (dropout
//                     active, before the last update), as the code takes them
//   foreground_mask   the corner rule, then nearest-neighbour resize to the image
// GNNpool: GCNConv 384 -> 64, act, (GCNConv 64 -> 64, act) x (gcn_layers - 1), Linear 64 -> 32, act,
// Dropout 0.25, Linear 32 -> 2; GCN weights Glorot, biases 0, linears PyTorch's default.
// Defaults follow METHODS.md §6.5's preset column: tau 0.5 (PROPOSAL, inside the paper's 0.4-0.6),
// 2 GCN layers (paper; PROPOSAL for the widths 384 -> 64 -> 64), 100 epochs (paper; code: 20),
// Adam lr 1e-3 (paper; code: AdamW wd 0.01), SELU (code). The cluster count is 2, as in the code.
// The polarity oracle of the authors' evaluation (flip when it raises the IoU) is not here: it
// belongs to the evaluator (METRICS.md §10). The bilateral solver (§6.6) is not implemented.
#pragma once
#include <limits>
#include <string>

#include "tessel/methods/preset.hpp"
#include "tessel/nn/activation.hpp"
#include "tessel/nn/dropout.hpp"
#include "tessel/nn/gcn_conv.hpp"
#include "tessel/nn/linear.hpp"
#include "tessel/nn/repeat.hpp"
#include "tessel/nn/sequential.hpp"
#include "tessel/optim/adam.hpp"
#include "tessel/pipeline/pipeline.hpp"
#include "tessel/pipeline/stages/graph_cluster.hpp"
#include "tessel/pipeline/stages/self_train.hpp"
#include "tessel/pipeline/stages/vit_features.hpp"

namespace tessel::methods {

/// UnSegGNet's GNNpool network (see the top of the file).
using gnn_pool_network =
    nn::sequential<nn::gcn_conv, nn::activation, nn::repeat<nn::sequential<nn::gcn_conv, nn::activation>>, nn::linear,
                   nn::activation, nn::dropout, nn::linear>;

/// The activations UnSegGNet's code offers; deepcut is ELU after the GCN and ReLU in the MLP.
enum class unseggnet_activation { selu, silu, gelu, relu, deepcut };
/// The optimiser: Adam (the paper) or AdamW with weight decay 0.01 (the code).
enum class unseggnet_optimizer { adam, adamw };

struct unseggnet_config {
    stages::vit_features::config features{};
    double tau = 0.5;                                             ///< PROPOSAL (paper: 0.4-0.6; code CLI: 0)
    stages::cluster_objective loss = stages::cluster_objective::dmon;
    index_t gcn_layers = 2;                                       ///< paper; code: 1
    index_t gcn_hidden = 64;
    index_t mlp_hidden = 32;
    index_t clusters = 2;                                         ///< hard-coded in the code
    double dropout = 0.25;
    unseggnet_activation activation = unseggnet_activation::selu;
    index_t epochs = 100;                                         ///< paper; code: 20
    unseggnet_optimizer optimizer = unseggnet_optimizer::adam;
    double lr = 1e-3;
    double weight_decay = 0.01;                                   ///< AdamW's (used with optimizer adamw)
    bool corner_rule = true;
};

/// The GNNpool config for D input features.
inline gnn_pool_network::config gnn_pool_config(const unseggnet_config& c, index_t in_features) {
    constexpr auto where = "tessel::methods::unseggnet";
    expects(c.gcn_layers >= 1 && c.gcn_hidden >= 1 && c.mlp_hidden >= 1 && c.clusters >= 2, where,
            "invalid network sizes: gcn_layers ", c.gcn_layers, ", gcn_hidden ", c.gcn_hidden, ", mlp_hidden ",
            c.mlp_hidden, ", clusters ", c.clusters);
    using nn::activation_kind;
    activation_kind gcn_act = activation_kind::selu, mlp_act = activation_kind::selu;
    switch (c.activation) {
        case unseggnet_activation::selu: gcn_act = mlp_act = activation_kind::selu; break;
        case unseggnet_activation::silu: gcn_act = mlp_act = activation_kind::silu; break;
        case unseggnet_activation::gelu: gcn_act = mlp_act = activation_kind::gelu; break;
        case unseggnet_activation::relu: gcn_act = mlp_act = activation_kind::relu; break;
        case unseggnet_activation::deepcut: gcn_act = activation_kind::elu, mlp_act = activation_kind::relu; break;
    }
    const nn::gcn_conv::config inner{.in_features = c.gcn_hidden, .out_features = c.gcn_hidden};
    return {nn::gcn_conv::config{.in_features = in_features, .out_features = c.gcn_hidden},
            {.kind = gcn_act},
            {.count = c.gcn_layers - 1, .block = {inner, {.kind = gcn_act}}},
            nn::linear::config{.in_features = c.gcn_hidden, .out_features = c.mlp_hidden},
            {.kind = mlp_act},
            {.p = c.dropout},
            nn::linear::config{.in_features = c.mlp_hidden, .out_features = c.clusters}};
}

/// The GCN training stage of UnSegGNet: self_train on graph nodes.
using unseggnet_train = stages::self_train<gnn_pool_network, stages::no_refinement, stages::graph_cluster_loss,
                                           optim::adamw, stages::default_network_init, stages::graph_node_input>;

template <Backend B>
class unseggnet {
public:
    explicit unseggnet(unseggnet_config cfg = {}) : m_cfg(std::move(cfg)) {
        constexpr auto where = "tessel::methods::unseggnet";
        expects(m_cfg.epochs >= 1, where, "epochs must be >= 1, got ", m_cfg.epochs);
        expects(std::isfinite(m_cfg.lr) && m_cfg.lr > 0, where, "lr must be positive, got ", m_cfg.lr);
        expects(m_cfg.dropout >= 0 && m_cfg.dropout < 1, where, "dropout must lie in [0, 1), got ", m_cfg.dropout);
        expects(std::isfinite(m_cfg.tau), where, "tau must be finite, got ", m_cfg.tau);
        expects(m_cfg.clusters == 2 || !m_cfg.corner_rule, where, "the corner rule needs 2 clusters");
    }

    /// Segments one RGB image into a 0/1 foreground mask of its size.
    label_map run(const image<std::uint8_t>& img, seed s = {}, pipeline::progress_fn progress = {}) {
        if (!m_pipe) {
            // The features stage holds the ViT (read once); the feature width fixes the GCN input.
            const index_t in = feature_width();
            m_pipe.emplace(m_cfg.features,
                           stages::similarity_graph::config{.tau = m_cfg.tau,
                                                            .form = m_cfg.loss == stages::cluster_objective::ncut
                                                                        ? stages::graph_form::dot_threshold
                                                                        : stages::graph_form::cosine_threshold},
                           typename unseggnet_train::config{
                               .net = gnn_pool_config(m_cfg, in),
                               .train = {.max_iterations = m_cfg.epochs, .min_labels = 0,
                                         .label_from_last_iteration = true},
                               .loss = {.objective = m_cfg.loss},
                               .optim = {.lr = m_cfg.lr,
                                         .weight_decay = m_cfg.optimizer == unseggnet_optimizer::adamw ? m_cfg.weight_decay : 0.0}},
                           stages::foreground_mask::config{.corner_rule = m_cfg.corner_rule});
        }
        label_map out = m_pipe->run(img, s, std::move(progress));
        m_report = m_pipe->last_state().info;
        return out;
    }
    [[nodiscard]] const pipeline::report& last_report() const noexcept { return m_report; }
    [[nodiscard]] const unseggnet_config& config() const noexcept { return m_cfg; }

private:
    using pipeline_type = pipeline::pipeline<B, stages::vit_features, stages::similarity_graph, unseggnet_train,
                                             stages::foreground_mask>;
    index_t feature_width() const {
        const auto& f = m_cfg.features;
        if (!f.features.empty()) return stages::read_feature_file(f.features, f.feature_dim).features.dim(1);
        expects(!f.weights.empty(), "tessel::methods::unseggnet",
                "needs a ViT weights file (--weights, safetensors; docs/unseggnet.md says where to get DINO's "
                "checkpoint and how to convert it) or a features file (--features)");
        io::safetensors_options opt;
        const auto m = io::read_safetensors(f.weights, opt);
        if (m.contains("patch_embed.proj.weight")) return m.require("patch_embed.proj.weight").dim(0);
        opt.select_prefix = f.network == stages::dino_network::teacher ? "teacher." : "student.";
        return io::read_safetensors(f.weights, opt).require("patch_embed.proj.weight").dim(0);
    }

    unseggnet_config m_cfg;
    std::optional<pipeline_type> m_pipe;
    pipeline::report m_report;
};

/// Preset trait of UnSegGNet (methods/preset.hpp).
struct unseggnet_preset {
    static constexpr std::string_view name = "unseggnet";
    static constexpr std::string_view summary =
        "UnSegGNet (2024): ViT keys, a cosine-similarity graph, a GCN trained per image with a modularity loss; a "
        "binary foreground mask";
    using config = unseggnet_config;
    template <Backend B>
    using method = unseggnet<B>;

    template <class V>
    static void visit_options(config& c, V& v) {
        constexpr double inf = std::numeric_limits<double>::max();
        static constexpr choice<unseggnet_activation> acts[] = {{"selu", unseggnet_activation::selu},
                                                               {"silu", unseggnet_activation::silu},
                                                               {"gelu", unseggnet_activation::gelu},
                                                               {"relu", unseggnet_activation::relu},
                                                               {"deepcut", unseggnet_activation::deepcut}};
        static constexpr choice<unseggnet_optimizer> opts[] = {{"adam", unseggnet_optimizer::adam},
                                                              {"adamw", unseggnet_optimizer::adamw}};
        static constexpr choice<stages::cluster_objective> losses[] = {
            {"dmon", stages::cluster_objective::dmon},
            {"dmon-paper", stages::cluster_objective::dmon_paper},
            {"ncut", stages::cluster_objective::ncut}};
        static constexpr choice<stages::dino_network> nets[] = {{"any", stages::dino_network::any},
                                                               {"student", stages::dino_network::student},
                                                               {"teacher", stages::dino_network::teacher}};
        v(path_option{"weights", c.features.weights, "ViT weights as safetensors (tools/convert_dino.py); never downloaded"});
        v(path_option{"features", c.features.features, "Precomputed N x D float32 features instead of the ViT"});
        v(number_option<index_t>{"feature-dim", c.features.feature_dim, "D of a raw --features file", 1, 1 << 20});
        v(choice_option<stages::dino_network>{"dino-weights", c.features.network, nets,
                                              "Network of a file holding a DINO student and teacher"});
        v(number_option<index_t>{"resolution", c.features.resolution, "Square ViT input side (grid (side-8)/4+1)", 8, 4096});
        v(number_option<index_t>{"vit-stride", c.features.stride, "ViT patch stride (DINO ViT-S/8 trained at 8)", 1, 64});
        v(number_option<index_t>{"vit-layer", c.features.layer, "Block whose keys are the features (-1: last)", -1, 1000});
        v(number_option<index_t>{"vit-heads", c.features.heads, "ViT attention heads (0: width / 64)", 0, 1024});
        v(number_option<double>{"tau", c.tau, "Edge threshold on cosine similarity (NCUT: on dot products)", -inf, inf});
        v(choice_option<stages::cluster_objective>{"loss", c.loss, losses, "Graph objective (dmon: as the code)"});
        v(number_option<index_t>{"gcn-layers", c.gcn_layers, "GCN layers (paper 2, code 1)", 1, 16});
        v(number_option<index_t>{"gcn-hidden", c.gcn_hidden, "GCN width", 1, 4096});
        v(number_option<index_t>{"mlp-hidden", c.mlp_hidden, "Width of the MLP after the GCN", 1, 4096});
        v(number_option<double>{"dropout", c.dropout, "Dropout in the MLP (kept active: train mode throughout)", 0, 0.99});
        v(choice_option<unseggnet_activation>{"activation", c.activation, acts,
                                              "Activation (selu: code default; silu for medical images)"});
        v(number_option<index_t>{"epochs", c.epochs, "Training epochs per image (paper 100, code 20)", 1, 1000000});
        v(choice_option<unseggnet_optimizer>{"optimizer", c.optimizer, opts, "adam (paper) or adamw (code)"});
        v(number_option<double>{"lr", c.lr, "Learning rate (SGD for the DFC family, Adam for grapl and unseggnet)", 0, inf,
                                true});
        v(number_option<double>{"weight-decay", c.weight_decay, "AdamW weight decay (with --optimizer adamw)", 0, inf});
        v(flag_option{"no-corner-rule", c.corner_rule, "Keep the cluster labels as they are (no corner inversion)", true});
    }
    /// ViT weights and workspaces (~0.3 GB at 224 px, stride 4) plus the dense N x N graph
    /// (adjacency, propagation operator, a host copy: 3 x 36.6 MB at 3,025 nodes); the image's size
    /// only enters through the final mask.
    static double estimated_bytes(const config& c, index_t w, index_t h) {
        const double grid = static_cast<double>((c.features.resolution - 8) / std::max<index_t>(c.features.stride, 1) + 1);
        const double n = grid * grid;
        return 9.0e7 + n * 384 * 4 * 12 + 512.0 * n * 4 + 3 * n * n * 4 + static_cast<double>(w) * static_cast<double>(h) * 16;
    }
};

}  // namespace tessel::methods
