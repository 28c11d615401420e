// tessel/methods/picnet.hpp: C. M. Hoang and B. Kang, "Pixel-level clustering network for
// unsupervised image segmentation", Engineering Applications of Artificial Intelligence, 2024
// (arXiv 2310.16234), PiCNet.
//
// No code exists and only a structured summary of the paper is available
// (papers/000_ea1617b28a568a4f.txt). From it: feature embedding modules with ECA and a fused
// ReLU/tanh activation, fused across two scales (methods/picnet_network.hpp); a cluster head R;
// reconstruction heads G1, G2 with L_rec = MS-SSIM + L2; L_local, a pixel-wise cross-entropy
// against superpixel pseudo-labels; L_global, agreement of neighbouring superpixels weighted by
// feature affinity; MCG superpixels; graph-cut post-processing. Every number is a PROPOSAL of
// METHODS.md §8.2, each exposed as an option:
//   C = 64, q = 100, fused a = 0.5 fixed (option: learnable), ECA k from the adaptive rule;
//   L = L_local + 1 * L_global + 1 * L_rec, L_rec = sum over G1, G2 of (1 - MS-SSIM) + MSE;
//   pseudo-labels: Kanezaki's superpixel majority of the argmax; SLIC n = 1000, compactness 10,
//   once per image (option: the user's own superpixel map, e.g. MCG's);
//   SGD lr 0.1, momentum 0.9, 1000 iterations, stop at 3 labels; PyTorch initialisation;
//   post-processing: stages::segment_graph_cut (RAG Potts, alpha-expansion, lambda 1).
// The method is a pipeline: superpixels -> self_train<picnet_network, superpixel_majority,
// picnet_loss> -> segment_graph_cut. picnet_loss composes library losses (cross_entropy,
// ms_ssim, mse, region_agreement on the autograd tape) and reads the network's extra outputs
// through stages::NetworkSelfTrainLoss.
#pragma once
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tessel/autograd/tape.hpp"
#include "tessel/loss/cross_entropy.hpp"
#include "tessel/loss/ms_ssim.hpp"
#include "tessel/loss/mse.hpp"
#include "tessel/loss/region_agreement.hpp"
#include "tessel/methods/picnet_network.hpp"
#include "tessel/methods/preset.hpp"
#include "tessel/nn/activation.hpp"
#include "tessel/pipeline/pipeline.hpp"
#include "tessel/pipeline/stages/segment_graph_cut.hpp"
#include "tessel/pipeline/stages/self_train.hpp"
#include "tessel/pipeline/stages/superpixels.hpp"
#include "tessel/superpixel/slic.hpp"

namespace tessel::methods {

/// PiCNet's objective, a SelfTrainLoss that reads the network (stages::NetworkSelfTrainLoss):
///   w_local * CE(R, pseudo-labels)
/// + w_global * region_agreement(softmax(R)) on the superpixel graph, affinities from F4's
///   per-superpixel means (recomputed every step, treated as constants)
/// + w_rec * sum over (G1, x), (G2, avgpool2(x)) of w_ms_ssim * (1 - MS-SSIM) + w_mse * MSE.
/// Needs state.superpixels (for L_global) and an image of at least 22 x 22 (MS-SSIM's 11 x 11
/// window on G2's half resolution).
struct picnet_loss {
    struct config {
        double local_weight = 1.0;    ///< L_local (CE against the superpixel-majority labels)
        double global_weight = 1.0;   ///< L_global
        double rec_weight = 1.0;      ///< L_rec
        double ms_ssim_weight = 1.0;  ///< weight of (1 - MS-SSIM) inside L_rec
        double mse_weight = 1.0;      ///< weight of the MSE inside L_rec
        loss::ms_ssim ms_ssim{};      ///< standard MS-SSIM, fewer scales on small images
    };

    template <Backend B>
    class bind {
    public:
        static constexpr bool reads_network = true;

        explicit bind(const config& cfg) : m_cfg(cfg) {
            constexpr auto where = "tessel::methods::picnet_loss";
            for (double w : {cfg.local_weight, cfg.global_weight, cfg.rec_weight, cfg.ms_ssim_weight, cfg.mse_weight})
                expects(std::isfinite(w) && w >= 0, where,
                        "loss weights must be finite and >= 0, got local ", cfg.local_weight, ", global ",
                        cfg.global_weight, ", rec ", cfg.rec_weight, ", ms-ssim ", cfg.ms_ssim_weight, ", mse ",
                        cfg.mse_weight);
            cfg.ms_ssim.validate();
        }

        template <class Net>
        double value_and_grad(const tensor<float, B>& r, const tensor<label_t, B>& labels, tensor<float, B>& dr,
                              const pipeline::state<B>& st, Net& net) {
            constexpr auto where = "tessel::methods::picnet_loss";
            const tensor<float, B>& x = st.input_tensor;
            expects(x.dim(2) >= 22 && x.dim(3) >= 22, where, "the image is ", x.dim(3), "x", x.dim(2),
                    "; PiCNet needs at least 22 x 22 (MS-SSIM's 11 x 11 window at half resolution)");
            // Library losses return their unweighted value; the weights scale the gradients.
            m_parts.local =
                m_cfg.local_weight * loss::cross_entropy{}.value_and_grad(r, labels, dr, {.weight = m_cfg.local_weight});
            m_parts.global = m_cfg.global_weight > 0 ? global_term(r, dr, st, net) : 0.0;
            m_parts.rec = 0;
            if (m_cfg.rec_weight > 0) {
                m_parts.rec += reconstruction_term(net.reconstruction(0), x, net.reconstruction_grad(0), m_ws[0]);
                m_parts.rec += reconstruction_term(net.reconstruction(1), net.half_input(), net.reconstruction_grad(1),
                                                   m_ws[1]);
            }
            return m_parts.local + m_parts.global + m_parts.rec;
        }

        /// The weighted parts of the last step's loss.
        struct parts {
            double local = 0, global = 0, rec = 0;
        };
        [[nodiscard]] const parts& last_parts() const noexcept { return m_parts; }
        void report(std::map<std::string, double>& values) const {
            values["loss_local"] = m_parts.local;
            values["loss_global"] = m_parts.global;
            values["loss_rec"] = m_parts.rec;
        }

    private:
        template <class Net>
        double global_term(const tensor<float, B>& r, tensor<float, B>& dr, const pipeline::state<B>& st, Net& net) {
            constexpr auto where = "tessel::methods::picnet_loss";
            if (!m_graph_ready) {
                expects(!st.superpixels.empty(), where,
                        "L_global needs superpixels in the pipeline state (put a superpixels stage before self_train)");
                expects(st.superpixels.width() == r.dim(3) && st.superpixels.height() == r.dim(2), where,
                        "superpixels are ", st.superpixels.width(), "x", st.superpixels.height(), " but the image is ",
                        r.dim(3), "x", r.dim(2));
                m_graph = loss::region_graph::from_labels(st.superpixels);
                m_graph_ready = true;
            }
            const tensor<float, B>& f = net.features();
            loss::region_means(f, m_graph, m_mu);
            m_graph.set_feature_affinities(m_mu, f.dim(1));
            m_tape.reset();
            auto rv = m_tape.input(r);
            auto p = m_tape.layer(m_softmax, m_ctx, rv);
            auto l = autograd::scale(loss::region_agreement(p, m_graph), m_cfg.global_weight);
            m_tape.backward(l);
            const tensor<float, B>& g = rv.grad();
            parallel_for(B{}, dr.numel(), nn::detail::elementwise_sum_fn<float>{dr.data(), g.data(), dr.data()});
            return static_cast<double>(l.value().to_vector()[0]);
        }
        double reconstruction_term(const tensor<float, B>& g, const tensor<float, B>& target, tensor<float, B>& dg,
                                   loss::ms_ssim::workspace<float, B>& ws) {
            dg.resize(g.shape());
            const double w1 = m_cfg.rec_weight * m_cfg.ms_ssim_weight, w2 = m_cfg.rec_weight * m_cfg.mse_weight;
            const double v = w1 * m_cfg.ms_ssim.value_and_grad(g, target, dg, {.weight = w1}, ws);
            return v + w2 * loss::mse{}.value_and_grad(g, target, dg, {.weight = w2, .accumulate = true});
        }

        config m_cfg;
        loss::region_graph m_graph;
        bool m_graph_ready = false;
        std::vector<double> m_mu;
        autograd::tape<B> m_tape;
        nn::softmax::bind<B, float> m_softmax;
        nn::context<B> m_ctx;
        loss::ms_ssim::workspace<float, B> m_ws[2];
        parts m_parts;
    };
};

struct picnet_config {
    picnet_network::config net{};          ///< C = 64, q = 100, fused a = 0.5 fixed, adaptive ECA
    stages::self_train_options train{};    ///< 1000 iterations, stop at 3 labels (as DFC)
    picnet_loss::config loss{};            ///< all weights 1
    optim::sgd::config optim = stages::self_train_optimiser_defaults<optim::sgd>();  ///< lr 0.1, momentum 0.9
    slic::config superpixels{.n_segments = 1000, .compactness = 10.0f};
    std::optional<label_map> user_superpixels{};  ///< the user's own map (e.g. MCG) instead of SLIC
    bool graph_cut = true;                  ///< the post-processing stage
    stages::segment_graph_cut_options post{};  ///< lambda 1, compact labels
};

template <Backend B>
class picnet {
public:
    using train_stage = stages::self_train<picnet_network, stages::superpixel_majority, picnet_loss>;

    explicit picnet(picnet_config cfg = {}) : m_cfg(std::move(cfg)) {}

    /// Segments one RGB image. With graph_cut the labels are compacted to 0..K-1 (unless
    /// post.compact is off); without it they are response channels in 0..q-1.
    label_map run(const image<std::uint8_t>& img, seed s = {}, pipeline::progress_fn progress = {}) {
        typename train_stage::config tc{.net = m_cfg.net, .train = m_cfg.train, .loss = m_cfg.loss, .optim = m_cfg.optim};
        // The activation-mix option sets a; the convex mix's tanh weight follows it.
        if (tc.net.activation.convex) tc.net.activation.tanh_weight = 1.0 - tc.net.activation.relu_weight;
        tc.train.keep_probabilities = m_cfg.graph_cut;
        if (m_cfg.user_superpixels) {
            stages::given_superpixels::config sp{*m_cfg.user_superpixels};
            if (m_cfg.graph_cut)
                return finish(pipeline::pipeline<B, stages::given_superpixels, train_stage, stages::segment_graph_cut<>>(
                                  sp, tc, m_cfg.post),
                              img, s, std::move(progress));
            return finish(pipeline::pipeline<B, stages::given_superpixels, train_stage>(sp, tc), img, s,
                          std::move(progress));
        }
        if (m_cfg.graph_cut)
            return finish(pipeline::pipeline<B, stages::superpixels<slic>, train_stage, stages::segment_graph_cut<>>(
                              m_cfg.superpixels, tc, m_cfg.post),
                          img, s, std::move(progress));
        return finish(pipeline::pipeline<B, stages::superpixels<slic>, train_stage>(m_cfg.superpixels, tc), img, s,
                      std::move(progress));
    }
    [[nodiscard]] const pipeline::report& last_report() const noexcept { return m_report; }
    [[nodiscard]] const picnet_config& config() const noexcept { return m_cfg; }

private:
    template <class P>
    label_map finish(P&& p, const image<std::uint8_t>& img, seed s, pipeline::progress_fn progress) {
        label_map out = p.run(img, s, std::move(progress));
        m_report = p.last_state().info;
        return out;
    }

    picnet_config m_cfg;
    pipeline::report m_report;
};

/// Preset trait of PiCNet (methods/preset.hpp).
struct picnet_preset {
    static constexpr std::string_view name = "picnet";
    static constexpr std::string_view summary =
        "Hoang & Kang 2024 (PiCNet): two-scale FEM network with ECA and fused ReLU/tanh, superpixel and "
        "reconstruction losses, graph-cut post-processing (settings are METHODS.md proposals)";
    using config = picnet_config;
    template <Backend B>
    using method = picnet<B>;

    template <class V>
    static void visit_options(config& c, V& v) {
        constexpr double inf = std::numeric_limits<double>::max();
        v(number_option<index_t>{"channels", c.net.classes, "Response channels q, an upper bound on the segment count",
                                 2, 4096});
        v(number_option<index_t>{"fem-channels", c.net.channels, "PiCNet: width C of every feature embedding module", 1,
                                 4096});
        v(number_option<double>{"activation-mix", c.net.activation.relu_weight,
                                "PiCNet: ReLU share a of the fused activation a*relu + (1-a)*tanh (initial value when "
                                "learnable)",
                                0, 1});
        v(flag_option{"learnable-activation", c.net.activation.learnable,
                      "PiCNet: learn the fused activation's mix a (clamped to [0, 1])"});
        v(number_option<index_t>{"eca-kernel", c.net.eca_kernel, "PiCNet: ECA kernel size (odd; 0: adaptive rule)", 0,
                                 63});
        v(number_option<index_t>{"max-iter", c.train.max_iterations, "Maximum training iterations", 0, inf});
        v(number_option<double>{"max-seconds", c.train.max_seconds, "Wall-clock budget of the training loop in seconds (0: none)", 0, inf});
        v(number_option<index_t>{"min-labels", c.train.min_labels, "Stop once this many labels or fewer remain", 0, inf});
        v(number_option<double>{"lr", c.optim.lr, "Learning rate (SGD for the DFC family, Adam for grapl)", 0, inf, true});
        v(number_option<double>{"momentum", c.optim.momentum, "SGD momentum", 0, 1});
        v(flag_option{"label-from-last-iteration", c.train.label_from_last_iteration,
                      "Output the last training labelling instead of a fresh forward pass"});
        v(number_option<double>{"local-weight", c.loss.local_weight, "PiCNet: weight of L_local (superpixel CE)", 0, inf});
        v(number_option<double>{"global-weight", c.loss.global_weight, "PiCNet: weight of L_global (neighbour agreement)",
                                0, inf});
        v(number_option<double>{"rec-weight", c.loss.rec_weight, "PiCNet: weight of L_rec (reconstruction)", 0, inf});
        v(number_option<double>{"ms-ssim-weight", c.loss.ms_ssim_weight, "PiCNet: weight of 1 - MS-SSIM within L_rec", 0,
                                inf});
        v(number_option<double>{"mse-weight", c.loss.mse_weight, "PiCNet: weight of the MSE within L_rec", 0, inf});
        v(number_option<index_t>{"ms-ssim-levels", c.loss.ms_ssim.levels,
                                 "PiCNet: MS-SSIM scales (0: 5, fewer on small images)", 0, 5});
        v(number_option<index_t>{"n-segments", c.superpixels.n_segments, "SLIC segments", 1, 100000000});
        v(number_option<float>{"compactness", c.superpixels.compactness, "SLIC compactness", 0, inf, true});
        v(label_file_option{"superpixels", c.user_superpixels,
                            "PiCNet: superpixel map (PNG of region ids, e.g. from MCG) instead of SLIC"});
        v(flag_option{"no-graph-cut", c.graph_cut, "PiCNet: skip the graph-cut post-processing", true});
        v(number_option<double>{"graph-cut-lambda", c.post.lambda, "PiCNet: Potts weight of the graph-cut post-processing",
                                0, inf});
    }
    /// Peak memory: about 17 kB per pixel at C = 64, q = 100 (bench/methods_bench.cpp's picnet
    /// line measured 2.6 GB at 481x321), scaled with the widths.
    static double estimated_bytes(const config& c, index_t w, index_t h) {
        const double per_pixel = 250.0 + 250.0 * static_cast<double>(c.net.channels) + 12.0 * static_cast<double>(c.net.classes);
        return static_cast<double>(w) * static_cast<double>(h) * per_pixel;
    }
};

}  // namespace tessel::methods
