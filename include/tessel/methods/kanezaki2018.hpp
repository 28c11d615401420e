// tessel/methods/kanezaki2018.hpp: A. Kanezaki, "Unsupervised image segmentation by
// backpropagation", ICASSP 2018.
//
// The DFC network (methods/kim2020.hpp) trained on one image against its argmax labels, refined
// each iteration by a majority vote inside SLIC superpixels computed once before training; the
// loss is cross-entropy only. Settings follow the authors' code (kanezaki/pytorch-unsupervised-
// segmentation, demo.py; METHODS.md §3): q = 100, M = 2, SLIC with 10000 segments and compactness
// 100 (scikit-image semantics, on RGB; option slic_on_bgr), SGD lr 0.1 momentum 0.9, 1000
// iterations, stop at 3 labels.
#pragma once
#include "tessel/methods/kim2020.hpp"
#include "tessel/pipeline/stages/superpixels.hpp"
#include "tessel/superpixel/slic.hpp"

namespace tessel::methods {

struct kanezaki2018_config {
    index_t channels = 100;   ///< q
    index_t conv_blocks = 2;  ///< M
    stages::self_train_options train{};
    stages::dfc_loss::config loss{.continuity_weight = 0.0};  ///< no continuity term in this method
    optim::sgd::config optim = stages::self_train_optimiser_defaults<optim::sgd>();
    slic::config superpixels{.n_segments = 10000, .compactness = 100.0f};
    bool slic_on_bgr = false;  ///< compute SLIC on swapped channels, as the authors' code does
};

template <Backend B>
class kanezaki2018 {
public:
    explicit kanezaki2018(kanezaki2018_config cfg = {}) : m_cfg(std::move(cfg)) {}

    label_map run(const image<std::uint8_t>& img, seed s = {}, pipeline::progress_fn progress = {}) {
        using sp_stage = stages::superpixels<slic>;
        using train_stage = stages::self_train<dfc_network, stages::superpixel_majority>;
        if (m_cfg.slic_on_bgr) {
            // SLIC sees B,G,R as R,G,B; the network still sees RGB.
            label_map sp = slic{m_cfg.superpixels}(B{}, swap_red_blue(img));
            pipeline::pipeline<B, stages::given_superpixels, train_stage> p(
                stages::given_superpixels::config{std::move(sp)},
                train_config());
            return finish(p, img, s, std::move(progress));
        }
        pipeline::pipeline<B, sp_stage, train_stage> p(
            m_cfg.superpixels,
            train_config());
        return finish(p, img, s, std::move(progress));
    }
    [[nodiscard]] const pipeline::report& last_report() const noexcept { return m_report; }

private:
    template <class P>
    label_map finish(P& p, const image<std::uint8_t>& img, seed s, pipeline::progress_fn progress) {
        label_map out = p.run(img, s, std::move(progress));
        m_report = p.last_state().info;
        return out;
    }

    typename stages::self_train<dfc_network, stages::superpixel_majority>::config train_config() const {
        return {.net = dfc_network_config(m_cfg.channels, m_cfg.conv_blocks),
                .train = m_cfg.train,
                .loss = m_cfg.loss,
                .optim = m_cfg.optim};
    }

    kanezaki2018_config m_cfg;
    pipeline::report m_report;
};

/// Preset trait of Kanezaki 2018 (methods/preset.hpp).
struct kanezaki2018_preset {
    static constexpr std::string_view name = "kanezaki2018";
    static constexpr std::string_view summary =
        "Kanezaki 2018: a CNN self-trained on the superpixel-majority vote of its own argmax";
    using config = kanezaki2018_config;
    template <Backend B>
    using method = kanezaki2018<B>;

    template <class V>
    static void visit_options(config& c, V& v) {
        visit_dfc_network_options(c.channels, c.conv_blocks, v);
        visit_dfc_training_options(c.train, c.loss, c.optim, v);
        v(number_option<index_t>{"n-segments", c.superpixels.n_segments, "SLIC segments", 1, 100000000});
        v(number_option<float>{"compactness", c.superpixels.compactness, "SLIC compactness", 0,
                               std::numeric_limits<double>::max(), true});
        v(flag_option{"slic-on-bgr", c.slic_on_bgr, "SLIC on swapped channels, as the authors' code"});
    }
    static double estimated_bytes(const config& c, index_t w, index_t h) { return dfc_estimated_bytes(c.channels, w, h); }
};

}  // namespace tessel::methods
