// tessel/pipeline/stages/self_train.hpp: per-image self-training of a CNN on its own argmax
// labels, the loop shared by Kanezaki 2018, Kim et al. 2020 (DFC) and Azad & Hamid 2025.
//
// Each iteration: forward the image, take the argmax over channels as pseudo-labels, let a
// PseudoLabelRule edit them (Kanezaki's superpixel majority vote, or none), take one step of an
// Optimizer on a SelfTrainLoss of the response against them; stop once the number of distinct
// labels (counted *before* the rule and before the step) is <= min_labels, or after
// max_iterations (METHODS.md §2.3-2.6, §3). The three policies are template parameters of
// self_train<Net, Rule, Loss, Optim>; the defaults are the DFC family's: the argmax as it is,
//     w_sim * CE(r, labels) + w_con * (L_y + L_x)   [+ w_scr * CE on scribbled pixels]
// (dfc_loss), and SGD lr 0.1 momentum 0.9. self_trainer holds the network, the bound loss and
// optimiser and all workspaces, so the steady state does not allocate; the stage self_train wraps
// it for pipelines; methods/kim2020.hpp also uses the trainer directly for reference-image mode.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tessel/loss/cross_entropy.hpp"
#include "tessel/loss/spatial_continuity.hpp"
#include "tessel/nn/activation.hpp"
#include "tessel/nn/concepts.hpp"
#include "tessel/ops/argmax.hpp"
#include "tessel/optim/concepts.hpp"
#include "tessel/optim/sgd.hpp"
#include "tessel/pipeline/state.hpp"

namespace tessel::stages {

/// Value of a scribble pixel that carries no label (METHODS.md §2.6).
inline constexpr label_t scribble_unlabelled = 255;

/// PseudoLabelRule<R, B>: how the argmax labels become the training targets of one iteration.
///   requires: default-constructible; prepare(state, classes) is called once before the first
///             edit with the response's channel count; r(state, labels, n) edits the n labels
///             (host memory, values in [0, classes)) in place.
///   ensures:  prepare throws tessel::error naming the rule when the state lacks what it needs
///             (e.g. superpixels); edited labels stay in [0, classes).
template <class R, class B>
concept PseudoLabelRule = std::default_initializable<R> &&
                          requires(R& r, const pipeline::state<B>& st, label_t* labels, index_t n) {
                              r.prepare(st, n);
                              r(st, labels, n);
                          };

/// SelfTrainLoss<L, B>: the objective of one self-training step.
///   requires: L::config is a default-constructible, copyable aggregate of settings;
///             L::bind<B> is constructible from const L::config& (and validates it);
///             bind.value_and_grad(r, labels, dr, state) returns the loss of the response r
///             [N, q, H, W] against the pseudo-labels [N, H, W] and overwrites dr with dL/dr;
///             or, for a loss that reads more of the network than its response (PiCNet's
///             reconstruction heads and features), bind declares
///             `static constexpr bool reads_network = true` and has
///             value_and_grad(r, labels, dr, state, net) instead (NetworkSelfTrainLoss below).
///   optional: bind.set_scribbles(const label_map*) for user scribbles (Kim 2020 §2.6).
///   ensures:  no allocation in the steady state; invalid settings throw at bind.
template <class L, class B>
concept SelfTrainLoss = requires { typename L::config; typename L::template bind<B>; } &&
                        std::default_initializable<typename L::config> &&
                        std::constructible_from<typename L::template bind<B>, const typename L::config&> &&
                        (requires(typename L::template bind<B>& l, const tensor<float, B>& r,
                                  const tensor<label_t, B>& labels, tensor<float, B>& dr, const pipeline::state<B>& st) {
                            { l.value_and_grad(r, labels, dr, st) } -> std::convertible_to<double>;
                        } || requires { requires L::template bind<B>::reads_network; });

/// NetworkSelfTrainLoss<L, Net, B>: a SelfTrainLoss that also sees the bound network after its
/// forward pass: value_and_grad(r, labels, dr, state, net) may read the network's other outputs
/// and set the gradients of those outputs through the network's own interface before the
/// trainer calls net.backward(dr).
template <class L, class Net, class B>
concept NetworkSelfTrainLoss =
    SelfTrainLoss<L, B> && requires(typename L::template bind<B>& l, const tensor<float, B>& r,
                                    const tensor<label_t, B>& labels, tensor<float, B>& dr,
                                    const pipeline::state<B>& st, Net& net) {
        { l.value_and_grad(r, labels, dr, st, net) } -> std::convertible_to<double>;
    };

/// The optimiser settings a self-training stage starts from: the DFC family's SGD (lr 0.1,
/// momentum 0.9, METHODS.md §2.4) for optim::sgd, the optimiser's own defaults otherwise.
template <class Optim>
typename Optim::config self_train_optimiser_defaults() {
    if constexpr (std::is_same_v<Optim, optim::sgd>)
        return {.lr = 0.1, .momentum = 0.9};
    else
        return {};
}

/// Pseudo-label rule: leaves the argmax labels as they are (Kim 2020, Azad 2025).
struct no_refinement {
    template <class B>
    void prepare(const pipeline::state<B>&, index_t /*classes*/) {}
    template <class B>
    void operator()(const pipeline::state<B>&, label_t* /*labels*/, index_t /*n*/) {}
};

/// Kanezaki 2018's refinement: within each superpixel every pixel takes the most frequent argmax
/// label of that superpixel; ties go to the smallest label. Needs state.superpixels (labels
/// 0..K-1, e.g. from stages::superpixels). One pass over the pixels with a K x q count table,
/// instead of the authors' Python loop over superpixels.
class superpixel_majority {
public:
    template <class B>
    void prepare(const pipeline::state<B>& st, index_t classes) {
        constexpr auto where = "tessel::stages::superpixel_majority";
        expects(!st.superpixels.empty(), where,
                "needs superpixels in the pipeline state (put a superpixels stage before self_train)");
        expects(st.input && st.superpixels.width() == st.input->width() && st.superpixels.height() == st.input->height(),
                where, "superpixels are ", st.superpixels.width(), "x", st.superpixels.height(),
                " but the image is ", st.input ? st.input->width() : 0, "x", st.input ? st.input->height() : 0);
        m_sp = st.superpixels;
        m_regions = relabel_sequential(m_sp);
        m_classes = classes;
        m_counts.assign(static_cast<std::size_t>(m_regions * classes), 0);
        m_winner.assign(static_cast<std::size_t>(m_regions), 0);
    }
    template <class B>
    void operator()(const pipeline::state<B>&, label_t* labels, index_t n) {
        expects(n == m_sp.size(), "tessel::stages::superpixel_majority", "label count ", n,
                " differs from the superpixel map's ", m_sp.size(), " pixels (batches are not supported)");
        std::fill(m_counts.begin(), m_counts.end(), 0);
        const label_t* sp = m_sp.data();
        for (index_t i = 0; i < n; ++i) ++m_counts[static_cast<std::size_t>(sp[i] * m_classes + labels[i])];
        for (index_t r = 0; r < m_regions; ++r) {
            const std::int32_t* row = m_counts.data() + r * m_classes;
            index_t best = 0;
            for (index_t c = 1; c < m_classes; ++c)
                if (row[c] > row[best]) best = c;  // strict: the first (smallest) label wins ties
            m_winner[static_cast<std::size_t>(r)] = static_cast<label_t>(best);
        }
        for (index_t i = 0; i < n; ++i) labels[i] = m_winner[static_cast<std::size_t>(sp[i])];
    }

private:
    label_map m_sp;
    index_t m_regions = 0, m_classes = 0;
    std::vector<std::int32_t> m_counts;
    std::vector<label_t> m_winner;
};

/// The stopping rules and reporting of a self-training run (defaults: Kim et al. 2020, demo.py).
struct self_train_options {
    index_t max_iterations = 1000;       ///< maxIter
    index_t min_labels = 3;              ///< stop once the label count is <= this (0: never)
    bool label_from_last_iteration = false;  ///< output the last training labelling instead of a fresh forward
    index_t progress_every = 1;          ///< progress callback period in iterations (0: none; the caller throttles)
    /// Keep the softmax of the output response as pipeline::class_probabilities (q x H x W floats)
    /// for a post-processing stage such as segment_graph_cut.
    bool keep_probabilities = false;
    /// Wall-clock budget of the training loop in seconds (0: none). Checked after each step, so a
    /// run always takes at least one step; a run it stops sets info.values["stopped_by_time_budget"].
    /// The iteration reached then depends on the machine, so a fixed seed no longer fixes the result.
    double max_seconds = 0;
};

/// The DFC family's loss (Kim 2020 Eq. 5 and §2.6): w_sim CE against the pseudo-labels, plus
/// w_con times the L1 continuity of the response, plus w_scr CE on scribbled pixels when
/// scribbles are set (each CE a mean over its own pixels).
struct dfc_loss {
    struct config {
        double similarity_weight = 1.0;  ///< stepsize_sim, weight of CE against the pseudo-labels
        double continuity_weight = 1.0;  ///< stepsize_con (mu); 0 disables the continuity loss
        double scribble_weight = 0.5;    ///< stepsize_scr, weight of CE on scribbled pixels
    };

    template <Backend B>
    class bind {
    public:
        explicit bind(const config& cfg) : m_cfg(cfg) {
            expects(cfg.similarity_weight >= 0 && cfg.continuity_weight >= 0 && cfg.scribble_weight >= 0 &&
                        std::isfinite(cfg.similarity_weight) && std::isfinite(cfg.continuity_weight) &&
                        std::isfinite(cfg.scribble_weight),
                    "tessel::stages::dfc_loss", "loss weights must be finite and >= 0, got similarity ",
                    cfg.similarity_weight, ", continuity ", cfg.continuity_weight, ", scribble ", cfg.scribble_weight);
        }

        /// Sets (or clears, with nullptr) the scribble targets: values are class ids < q, or
        /// scribble_unlabelled. Checked against the response map at the next step.
        void set_scribbles(const label_map* scribbles) { m_scribbles = scribbles; }

        double value_and_grad(const tensor<float, B>& r, const tensor<label_t, B>& labels, tensor<float, B>& dr,
                              const pipeline::state<B>& /*st*/) {
            const loss::cross_entropy ce{};
            double total = 0;
            if (m_scribbles == nullptr) {
                total += m_cfg.similarity_weight * ce.value_and_grad(r, labels, dr, {.weight = m_cfg.similarity_weight});
            } else {
                prepare_scribble_targets(r, labels);
                // Unscribbled pixels learn from the pseudo-labels, scribbled ones from the scribbles.
                std::vector<label_t> u = labels.to_vector();
                for (std::size_t i = 0; i < u.size(); ++i)
                    if (m_scribble_mask[i]) u[i] = ce.ignore_index;
                m_unscribbled.assign(labels.shape(), u.begin(), u.end());
                total += m_cfg.similarity_weight *
                         ce.value_and_grad(r, m_unscribbled, dr, {.weight = m_cfg.similarity_weight});
                total += m_cfg.scribble_weight * ce.value_and_grad(r, m_scribble_targets, dr,
                                                                   {.weight = m_cfg.scribble_weight, .accumulate = true});
            }
            if (m_cfg.continuity_weight > 0)
                total += m_cfg.continuity_weight *
                         loss::spatial_continuity{}.value_and_grad(
                             r, dr, {.weight = m_cfg.continuity_weight, .accumulate = true});
            // The losses return their unweighted values (the weight scales only the gradient), so the
            // weights are applied here too: the reported value is the objective being descended.
            return total;
        }

    private:
        void prepare_scribble_targets(const tensor<float, B>& r, const tensor<label_t, B>& labels) {
            if (m_scribble_targets.numel() == labels.numel() && m_scribble_ready == m_scribbles) return;
            constexpr auto where = "tessel::stages::self_train (scribbles)";
            const label_map& s = *m_scribbles;
            expects(r.dim(0) == 1, where, "scribbles need a single image, got a batch of ", r.dim(0));
            expects(s.width() == r.dim(3) && s.height() == r.dim(2), where, "scribble map is ", s.width(), "x",
                    s.height(), " but the image is ", r.dim(3), "x", r.dim(2));
            std::vector<label_t> t(static_cast<std::size_t>(s.size()));
            m_scribble_mask.assign(t.size(), 0);
            for (index_t i = 0; i < s.size(); ++i) {
                const label_t v = s.data()[i];
                if (v == scribble_unlabelled) {
                    t[static_cast<std::size_t>(i)] = loss::cross_entropy{}.ignore_index;
                    continue;
                }
                expects(v >= 0 && v < r.dim(1), where, "scribble value ", v, " at pixel (", i % s.width(), ", ",
                        i / s.width(), ") is not a class id below ", r.dim(1), " nor ", scribble_unlabelled,
                        " (unlabelled); draw scribbles without antialiasing");
                t[static_cast<std::size_t>(i)] = v;
                m_scribble_mask[static_cast<std::size_t>(i)] = 1;
            }
            m_scribble_targets.assign(labels.shape(), t.begin(), t.end());
            m_scribble_ready = m_scribbles;
        }

        config m_cfg;
        tensor<label_t, B> m_unscribbled, m_scribble_targets;
        std::vector<std::uint8_t> m_scribble_mask;
        const label_map* m_scribbles = nullptr;
        const label_map* m_scribble_ready = nullptr;
    };
};

/// The network, loss, optimiser and workspaces of one self-training run.
template <nn::LayerSpec Net, Backend B, class Loss = dfc_loss, class Optim = optim::sgd>
    requires SelfTrainLoss<Loss, B> && optim::OptimizerSpec<Optim, B>
class self_trainer {
public:
    using net_type = typename Net::template bind<B, float>;

    self_trainer(const typename Net::config& net_cfg, rng& init, const self_train_options& opt,
                 const typename Loss::config& loss_cfg = {},
                 const typename Optim::config& optim_cfg = self_train_optimiser_defaults<Optim>())
        : m_net(net_cfg, init), m_opt(opt), m_loss(loss_cfg), m_optim(m_net.parameters(), optim_cfg) {
        constexpr auto where = "tessel::stages::self_train";
        expects(opt.max_iterations >= 0, where, "max_iterations must be >= 0, got ", opt.max_iterations);
        expects(opt.min_labels >= 0, where, "min_labels must be >= 0, got ", opt.min_labels);
        expects(opt.progress_every >= 0, where, "progress_every must be >= 0 (0: no progress), got ",
                opt.progress_every);
        expects(std::isfinite(opt.max_seconds) && opt.max_seconds >= 0, where,
                "max_seconds must be finite and >= 0 (0: no budget), got ", opt.max_seconds);
        if constexpr (nn::SkipsInputGrad<net_type>) m_net.set_input_grad_needed(false);
        static_assert(!requires { requires Loss::template bind<B>::reads_network; } ||
                          NetworkSelfTrainLoss<Loss, net_type, B>,
                      "tessel::stages::self_train: a loss that reads the network needs "
                      "value_and_grad(r, labels, dr, state, net) for this network type");
    }

    /// Passes user scribbles to the loss (which must support them); nullptr clears them.
    void set_scribbles(const label_map* scribbles) {
        if constexpr (requires { m_loss.set_scribbles(scribbles); })
            m_loss.set_scribbles(scribbles);
        else
            expects(scribbles == nullptr, "tessel::stages::self_train", "this stage's loss does not take scribbles");
    }

    struct step_result {
        index_t labels_before = 0;  ///< distinct argmax labels before refinement and the step
        double loss = 0;
    };

    /// One iteration on x ([N, 3, H, W]); `refine` edits the pseudo-labels in place.
    template <PseudoLabelRule<B> Refine>
    step_result step(const tensor<float, B>& x, const pipeline::state<B>& st, Refine& refine) {
        m_ctx.training = true;
        const tensor<float, B>& r = m_net.forward(m_ctx, x);
        m_last_response = nullptr;  // backward may reuse the output buffer
        step_result res;
        res.labels_before = ops::argmax_channels(r, m_labels, m_seen);
        if constexpr (!std::is_same_v<Refine, no_refinement>) {
            if (!m_refine_prepared) {
                refine.prepare(st, r.dim(1));
                m_refine_prepared = true;
            }
            refine_labels(st, refine);
        }
        if constexpr (NetworkSelfTrainLoss<Loss, net_type, B>)
            res.loss = m_loss.value_and_grad(r, m_labels, m_dr, st, m_net);
        else
            res.loss = m_loss.value_and_grad(r, m_labels, m_dr, st);
        m_net.backward(m_ctx, m_dr);
        m_optim.step();
        return res;
    }

    /// Labels of a fresh forward pass (train-mode BN unless eval_bn), as [N, H, W] on the host.
    std::vector<label_t> predict(const tensor<float, B>& x, bool eval_bn = false) {
        m_ctx.training = !eval_bn;
        const tensor<float, B>& r = m_net.forward(m_ctx, x);
        m_last_response = &r;
        ops::argmax_channels(r, m_labels, m_seen);
        return m_labels.to_vector();
    }
    /// Softmax over channels of the response of the last predict(), [q, H, W] on the host (the
    /// first image of the batch).
    [[nodiscard]] tensor<float, cpu_serial> last_probabilities() {
        expects(m_last_response != nullptr, "tessel::stages::self_train", "no prediction since the last step");
        const tensor<float, B>& p = m_softmax.forward(m_ctx, *m_last_response);
        const index_t q = p.dim(1), H = p.dim(2), W = p.dim(3);
        if constexpr (HostBackend<B>) {
            // Straight from the softmax's buffer: no second q x H x W host copy (62 MB for
            // PiCNet's 100 classes at 481 x 321, while the network's buffers are still held).
            return tensor<float, cpu_serial>(shape{q, H, W},
                                             std::span<const float>(p.data(), static_cast<std::size_t>(q * H * W)));
        } else {
            std::vector<float> host = p.to_vector();
            host.resize(static_cast<std::size_t>(q * H * W));
            return tensor<float, cpu_serial>(shape{q, H, W}, std::span<const float>(host));
        }
    }
    /// The bound loss (e.g. to read the parts of the last step's loss).
    [[nodiscard]] const typename Loss::template bind<B>& loss() const noexcept { return m_loss; }
    /// The pseudo-labels of the last step (after refinement), on the host.
    [[nodiscard]] std::vector<label_t> last_labels() const { return m_labels.to_vector(); }
    net_type& network() noexcept { return m_net; }
    nn::context<B>& context() noexcept { return m_ctx; }

private:
    template <class Refine>
    void refine_labels(const pipeline::state<B>& st, Refine& refine) {
        if constexpr (HostBackend<B>) {
            refine(st, m_labels.data(), m_labels.numel());
        } else {
            m_host_labels = m_labels.to_vector();
            refine(st, m_host_labels.data(), static_cast<index_t>(m_host_labels.size()));
            m_labels.assign(m_labels.shape(), m_host_labels.begin(), m_host_labels.end());
        }
    }

    net_type m_net;
    self_train_options m_opt;
    typename Loss::template bind<B> m_loss;
    typename Optim::template bind<B, float> m_optim;
    nn::context<B> m_ctx;
    tensor<label_t, B> m_labels;
    tensor<float, B> m_dr;
    std::vector<std::uint8_t> m_seen;
    std::vector<label_t> m_host_labels;
    nn::softmax::bind<B, float> m_softmax;
    const tensor<float, B>* m_last_response = nullptr;
    bool m_refine_prepared = false;
};

/// The DFC family's trainer: dfc_loss and SGD.
template <nn::LayerSpec Net, Backend B>
using dfc_trainer = self_trainer<Net, B>;

/// NetworkInit<I, Net, B>: sets a freshly constructed network's state before the first step
/// (pretrained weights, e.g. Deep Superpixel Cut's SuperAE encoder).
///   requires: I::config is default-constructible and copyable; I::apply(cfg, state, net) with
///             net the bound Net::bind<B, float>, called once per run after construction (the
///             network's own initialisation has already drawn from the state's random stream).
///   ensures:  throws tessel::error naming itself when what it loads does not fit the network.
template <class I, class Net, class B>
concept NetworkInit = std::default_initializable<typename I::config> &&
                      requires(const typename I::config& c, const pipeline::state<B>& st,
                               typename Net::template bind<B, float>& net) { I::apply(c, st, net); };

/// Network initialisation: the layers' own (seeded) initialisation, nothing more.
struct default_network_init {
    struct config {};
    template <class B, class N>
    static void apply(const config&, const pipeline::state<B>&, N&) {}
};

/// Number of distinct values in a label vector.
inline index_t count_distinct(std::vector<label_t> v) {
    std::sort(v.begin(), v.end());
    return static_cast<index_t>(std::unique(v.begin(), v.end()) - v.begin());
}

/// SelfTrainInput<I, B>: where the self_train stage takes the network's input and puts the labels.
///   requires: default-constructible; i.input(state) returns the input tensor (throwing
///             tessel::error naming the stage when the state lacks it); i.write_labels(state,
///             labels) stores the final labels (one per position of the response, host memory).
///   optional: i.bind_network(net, ctx, state), called once on the fresh network and its context
///             before the first step (a graph network binds the state's graph, nn::set_graph).
template <class I, class B>
concept SelfTrainInput = std::default_initializable<I> &&
                         requires(I& i, pipeline::state<B>& st, const pipeline::state<B>& cst, std::vector<label_t> l) {
                             { i.input(cst) } -> std::convertible_to<const tensor<float, B>&>;
                             i.write_labels(st, std::move(l));
                         };

/// The image as input ([1, 3, H, W] state.input_tensor), labels as an H x W map: the DFC family.
struct image_input {
    template <class B>
    const tensor<float, B>& input(const pipeline::state<B>& st) {
        constexpr auto where = "tessel::stages::self_train";
        expects(st.input_tensor.numel() > 0, where, "no input tensor in the pipeline state");
        const index_t pixels = st.input_tensor.dim(0) * st.input_tensor.dim(2) * st.input_tensor.dim(3);
        expects(pixels >= 2, where, "the image has ", pixels,
                " pixel; self-training needs at least 2 (batch norm takes its statistics over the pixels)");
        return st.input_tensor;
    }
    template <class B>
    void write_labels(pipeline::state<B>& st, std::vector<label_t> labels) {
        st.labels = label_map(st.input_tensor.dim(3), st.input_tensor.dim(2), std::move(labels));
    }
};

/// Pipeline stage: self-train Net on the state's image, write the final labels.
///   reads:  state.input_tensor, or what Input names (and whatever the rule and loss read, e.g.
///           state.superpixels for superpixel_majority)
///   writes: state.labels (raw channel indices 0..q-1), state.info.iterations, with
///           keep_probabilities pipeline::class_probabilities,
///           state.info.values["final_loss"], ["labels_at_stop"], and ["stopped_by_time_budget"]
///           when train.max_seconds ended the run
template <nn::LayerSpec Net, class Refine = no_refinement, class Loss = dfc_loss, class Optim = optim::sgd,
          class Init = default_network_init, class Input = image_input>
struct self_train {
    struct config {
        typename Net::config net{};
        typename Init::config init{};  ///< see NetworkInit (after the network's own initialisation)
        self_train_options train{};
        typename Loss::config loss{};
        typename Optim::config optim = self_train_optimiser_defaults<Optim>();
        std::optional<label_map> scribbles{};  ///< Kim 2020 scribble mode (255 = unlabelled)
    };

    template <Backend B>
    class bind {
    public:
        explicit bind(const config& cfg) : m_cfg(cfg) {}

        void run(pipeline::state<B>& st) {
            static_assert(SelfTrainInput<Input, B>, "self_train: Input must model stages::SelfTrainInput");
            Input input{};
            const tensor<float, B>& x = input.input(std::as_const(st));
            pipeline::stage_timer timer(st, "self_train");
            static_assert(PseudoLabelRule<Refine, B>, "self_train: Refine must model stages::PseudoLabelRule");
            using trainer_type = self_trainer<Net, B, Loss, Optim>;
            trainer_type trainer(m_cfg.net, st.gen, m_cfg.train, m_cfg.loss, m_cfg.optim);
            static_assert(NetworkInit<Init, Net, B>, "self_train: Init must model stages::NetworkInit");
            Init::apply(m_cfg.init, st, trainer.network());
            if constexpr (requires { input.bind_network(trainer.network(), trainer.context(), std::as_const(st)); })
                input.bind_network(trainer.network(), trainer.context(), std::as_const(st));
            if (m_cfg.scribbles) trainer.set_scribbles(&*m_cfg.scribbles);
            Refine refine{};

            const auto& opt = m_cfg.train;
            // Scribble mode stops at the number of scribble classes (METHODS.md §2.6).
            index_t min_labels = opt.min_labels;
            if (m_cfg.scribbles) min_labels = count_scribble_classes(*m_cfg.scribbles);
            index_t it = 0;
            typename trainer_type::step_result last;
            const auto started = std::chrono::steady_clock::now();
            bool out_of_time = false;
            for (; it < opt.max_iterations; ++it) {
                last = trainer.step(x, st, refine);
                if (opt.progress_every > 0 && (it + 1) % opt.progress_every == 0)
                    st.notify("self_train", it + 1, opt.max_iterations,
                              "labels " + std::to_string(last.labels_before) + ", loss " + std::to_string(last.loss));
                if (last.labels_before <= min_labels) {
                    ++it;
                    break;
                }
                if (opt.max_seconds > 0 &&
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() >= opt.max_seconds &&
                    it + 1 < opt.max_iterations) {
                    out_of_time = true;
                    ++it;
                    break;
                }
            }
            std::vector<label_t> out = (opt.label_from_last_iteration && it > 0) ? trainer.last_labels()
                                                                                 : trainer.predict(x);
            input.write_labels(st, std::move(out));
            if (opt.keep_probabilities) {
                if (opt.label_from_last_iteration && it > 0) (void)trainer.predict(x);
                st.template data<pipeline::class_probabilities>().probabilities = trainer.last_probabilities();
            }
            st.info.iterations = it;
            st.info.values["final_loss"] = last.loss;
            // A loss with parts (PiCNet's L_local, L_global, L_rec) reports those of the last step.
            if constexpr (requires { trainer.loss().report(st.info.values); }) trainer.loss().report(st.info.values);
            st.info.values["labels_at_stop"] = static_cast<double>(last.labels_before);
            if (out_of_time) st.info.values["stopped_by_time_budget"] = 1;
        }

    private:
        static index_t count_scribble_classes(const label_map& s) {
            std::vector<label_t> v;
            for (label_t l : s.values())
                if (l != scribble_unlabelled) v.push_back(l);
            return count_distinct(std::move(v));
        }
        config m_cfg;
    };
};

}  // namespace tessel::stages
