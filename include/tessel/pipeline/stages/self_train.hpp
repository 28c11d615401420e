// tessel/pipeline/stages/self_train.hpp: per-image self-training of a CNN on its own argmax
// labels, the loop shared by Kanezaki 2018, Kim et al. 2020 (DFC) and Azad & Hamid 2025.
//
// Each iteration: forward the image, take the argmax over channels as pseudo-labels, optionally
// refine them (Kanezaki's superpixel majority vote), and minimise
//     w_sim * CE(r, labels) + w_con * (L_y + L_x)   [+ w_scr * CE on scribbled pixels]
// with SGD; stop once the number of distinct labels (counted *before* refinement and before the
// step) is <= min_labels, or after max_iterations (METHODS.md §2.3-2.6, §3). dfc_trainer holds the
// network and all workspaces, so the steady state does not allocate; the stage self_train wraps it
// for pipelines; methods/kim2020.hpp also uses the trainer directly for reference-image mode.
#pragma once
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tessel/loss/cross_entropy.hpp"
#include "tessel/loss/spatial_continuity.hpp"
#include "tessel/nn/concepts.hpp"
#include "tessel/ops/argmax.hpp"
#include "tessel/optim/sgd.hpp"
#include "tessel/pipeline/state.hpp"

namespace tessel::stages {

/// Value of a scribble pixel that carries no label (METHODS.md §2.6).
inline constexpr label_t scribble_unlabelled = 255;

/// Pseudo-label refinement: leaves the argmax labels as they are (Kim 2020, Azad 2025).
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

/// Training settings of the DFC family (defaults: Kim et al. 2020, demo.py).
struct self_train_options {
    index_t max_iterations = 1000;       ///< maxIter
    index_t min_labels = 3;              ///< stop once the label count is <= this (0: never)
    double lr = 0.1;                     ///< SGD learning rate
    double momentum = 0.9;               ///< SGD momentum
    double similarity_weight = 1.0;      ///< stepsize_sim, weight of CE against the pseudo-labels
    double continuity_weight = 1.0;      ///< stepsize_con (mu); 0 disables the continuity loss
    double scribble_weight = 0.5;        ///< stepsize_scr, weight of CE on scribbled pixels
    bool label_from_last_iteration = false;  ///< output the last training labelling instead of a fresh forward
    index_t progress_every = 10;         ///< progress callback period in iterations
};

/// The network, optimiser and workspaces of one self-training run.
template <nn::LayerSpec Net, Backend B>
class dfc_trainer {
public:
    using net_type = typename Net::template bind<B, float>;

    dfc_trainer(const typename Net::config& net_cfg, rng& init, const self_train_options& opt)
        : m_net(net_cfg, init), m_opt(opt), m_sgd(m_net.parameters(), {.lr = opt.lr, .momentum = opt.momentum}) {
        constexpr auto where = "tessel::stages::self_train";
        expects(opt.max_iterations >= 0, where, "max_iterations must be >= 0, got ", opt.max_iterations);
        expects(opt.min_labels >= 0, where, "min_labels must be >= 0, got ", opt.min_labels);
        expects(opt.similarity_weight >= 0 && opt.continuity_weight >= 0 && opt.scribble_weight >= 0, where,
                "loss weights must be >= 0, got similarity ", opt.similarity_weight, ", continuity ",
                opt.continuity_weight, ", scribble ", opt.scribble_weight);
        if constexpr (nn::SkipsInputGrad<net_type>) m_net.set_input_grad_needed(false);
    }

    /// Sets (or clears, with an empty map) the scribble targets for the next steps: values are
    /// class ids < q, or scribble_unlabelled. Checked against the response map at the first step.
    void set_scribbles(const label_map* scribbles) { m_scribbles = scribbles; }

    struct step_result {
        index_t labels_before = 0;  ///< distinct argmax labels before refinement and the step
        double loss = 0;
    };

    /// One iteration on x ([N, 3, H, W]); `refine` edits the pseudo-labels in place.
    template <class Refine>
    step_result step(const tensor<float, B>& x, const pipeline::state<B>& st, Refine& refine) {
        m_ctx.training = true;
        const tensor<float, B>& r = m_net.forward(m_ctx, x);
        step_result res;
        res.labels_before = ops::argmax_channels(r, m_labels, m_seen);
        if constexpr (!std::is_same_v<Refine, no_refinement>) {
            if (!m_refine_prepared) {
                refine.prepare(st, r.dim(1));
                m_refine_prepared = true;
            }
            refine_labels(st, refine);
        }
        res.loss = loss_and_grad(r);
        m_net.backward(m_ctx, m_dr);
        m_sgd.step();
        return res;
    }

    /// Labels of a fresh forward pass (train-mode BN unless eval_bn), as [N, H, W] on the host.
    std::vector<label_t> predict(const tensor<float, B>& x, bool eval_bn = false) {
        m_ctx.training = !eval_bn;
        const tensor<float, B>& r = m_net.forward(m_ctx, x);
        ops::argmax_channels(r, m_labels, m_seen);
        return m_labels.to_vector();
    }
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

    double loss_and_grad(const tensor<float, B>& r) {
        const loss::cross_entropy ce{};
        double total = 0;
        if (m_scribbles == nullptr) {
            total += ce.value_and_grad(r, m_labels, m_dr, {.weight = m_opt.similarity_weight});
        } else {
            prepare_scribble_targets(r);
            // Unscribbled pixels learn from the pseudo-labels, scribbled ones from the scribbles;
            // each CE is a mean over its own subset (METHODS.md §2.6).
            std::vector<label_t> u = m_labels.to_vector();
            for (std::size_t i = 0; i < u.size(); ++i)
                if (m_scribble_mask[i]) u[i] = ce.ignore_index;
            m_unscribbled.assign(m_labels.shape(), u.begin(), u.end());
            total += ce.value_and_grad(r, m_unscribbled, m_dr, {.weight = m_opt.similarity_weight});
            total += ce.value_and_grad(r, m_scribble_targets, m_dr, {.weight = m_opt.scribble_weight, .accumulate = true});
        }
        if (m_opt.continuity_weight > 0)
            total += loss::spatial_continuity{}.value_and_grad(r, m_dr,
                                                              {.weight = m_opt.continuity_weight, .accumulate = true});
        return total;
    }

    void prepare_scribble_targets(const tensor<float, B>& r) {
        if (m_scribble_targets.numel() == m_labels.numel() && m_scribble_ready == m_scribbles) return;
        constexpr auto where = "tessel::stages::self_train (scribbles)";
        const label_map& s = *m_scribbles;
        expects(r.dim(0) == 1, where, "scribbles need a single image, got a batch of ", r.dim(0));
        expects(s.width() == r.dim(3) && s.height() == r.dim(2), where, "scribble map is ", s.width(), "x", s.height(),
                " but the image is ", r.dim(3), "x", r.dim(2));
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
        m_scribble_targets.assign(m_labels.shape(), t.begin(), t.end());
        m_scribble_ready = m_scribbles;
    }

    net_type m_net;
    self_train_options m_opt;
    optim::sgd::bind<B, float> m_sgd;
    nn::context<B> m_ctx;
    tensor<label_t, B> m_labels, m_unscribbled, m_scribble_targets;
    tensor<float, B> m_dr;
    std::vector<std::uint8_t> m_seen, m_scribble_mask;
    std::vector<label_t> m_host_labels;
    const label_map* m_scribbles = nullptr;
    const label_map* m_scribble_ready = nullptr;
    bool m_refine_prepared = false;
};

/// Number of distinct values in a label vector.
inline index_t count_distinct(std::vector<label_t> v) {
    std::sort(v.begin(), v.end());
    return static_cast<index_t>(std::unique(v.begin(), v.end()) - v.begin());
}

/// Pipeline stage: self-train Net on the state's image, write the final labels.
///   reads:  state.input_tensor (and state.superpixels for superpixel_majority)
///   writes: state.labels (raw channel indices 0..q-1), state.info.iterations,
///           state.info.values["final_loss"], ["labels_at_stop"]
template <nn::LayerSpec Net, class Refine = no_refinement>
struct self_train {
    struct config {
        typename Net::config net{};
        self_train_options train{};
        std::optional<label_map> scribbles{};  ///< Kim 2020 scribble mode (255 = unlabelled)
    };

    template <Backend B>
    class bind {
    public:
        explicit bind(const config& cfg) : m_cfg(cfg) {}

        void run(pipeline::state<B>& st) {
            constexpr auto where = "tessel::stages::self_train";
            expects(st.input_tensor.numel() > 0, where, "no input tensor in the pipeline state");
            const index_t pixels = st.input_tensor.dim(0) * st.input_tensor.dim(2) * st.input_tensor.dim(3);
            expects(pixels >= 2, where, "the image has ", pixels,
                    " pixel; self-training needs at least 2 (batch norm takes its statistics over the pixels)");
            pipeline::stage_timer timer(st, "self_train");
            dfc_trainer<Net, B> trainer(m_cfg.net, st.gen, m_cfg.train);
            if (m_cfg.scribbles) trainer.set_scribbles(&*m_cfg.scribbles);
            Refine refine{};

            const auto& opt = m_cfg.train;
            // Scribble mode stops at the number of scribble classes (METHODS.md §2.6).
            index_t min_labels = opt.min_labels;
            if (m_cfg.scribbles) min_labels = count_scribble_classes(*m_cfg.scribbles);
            index_t it = 0;
            typename dfc_trainer<Net, B>::step_result last;
            for (; it < opt.max_iterations; ++it) {
                last = trainer.step(st.input_tensor, st, refine);
                if (opt.progress_every > 0 && (it + 1) % opt.progress_every == 0)
                    st.notify("self_train", it + 1, opt.max_iterations,
                              "labels " + std::to_string(last.labels_before) + ", loss " + std::to_string(last.loss));
                if (last.labels_before <= min_labels) {
                    ++it;
                    break;
                }
            }
            std::vector<label_t> out = (opt.label_from_last_iteration && it > 0) ? trainer.last_labels()
                                                                                 : trainer.predict(st.input_tensor);
            const index_t H = st.input_tensor.dim(2), W = st.input_tensor.dim(3);
            st.labels = label_map(W, H, std::move(out));
            st.info.iterations = it;
            st.info.values["final_loss"] = last.loss;
            st.info.values["labels_at_stop"] = static_cast<double>(last.labels_before);
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
