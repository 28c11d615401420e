// tessel/nn/inception_fused.hpp: nn::inception (same function, parameters and initial draws)
// built from fused conv -> BN -> ReLU units (nn/conv_bn_relu.hpp), for memory.
//
// Only the units' conv outputs are kept; the (b), (c) reduce outputs and the pooled input are
// recomputed in backward. post_bn folds a following ReLU -> BN into per-branch norms (Azad's
// block); recompute_input_convs also recomputes the 1x1 convs on a thin input; the output can be
// released and rebuilt (nn::ReleasesOutput). docs/nn_blocks.md, "Recomputation".
#pragma once
#include <optional>

#include "tessel/nn/conv_bn_relu.hpp"
#include "tessel/nn/inception.hpp"

namespace tessel::nn {

struct inception_fused {
    struct config {
        inception::config block{};          ///< channel counts and init, as nn::inception
        bool post_bn = false;               ///< the block is followed by ReLU -> BN(out_channels)
        bool recompute_input_convs = false; ///< recompute (not keep) the 1x1 convs on the input
        double eps = 1e-5;                  ///< of every norm
        double momentum = 0.1;              ///< of every norm
    };

    template <Backend B, class T = float>
    class bind {
    public:
        bind(const config& cfg, rng& init)
            : m_cfg(checked(cfg)),
              m_a(unit(conv(cfg.block.in_channels, cfg.block.branch1, 1), true, true), init),
              m_b1(unit(conv(cfg.block.in_channels, cfg.block.branch2_reduce, 1), false, true), init),
              m_b2(unit(conv(cfg.block.branch2_reduce, cfg.block.branch2, 3), true, false), init),
              m_c1(unit(conv(cfg.block.in_channels, cfg.block.branch3_reduce, 1), false, true), init),
              m_c2(unit(conv(cfg.block.branch3_reduce, cfg.block.branch3, 5), true, false), init),
              m_d({.conv = {.in_channels = cfg.block.in_channels, .out_channels = cfg.block.branch4,
                            .init = cfg.block.init},
                   .eps = cfg.eps, .momentum = cfg.momentum, .post_bn = cfg.post_bn},
                  init) {}

        const tensor<T, B>& forward(context<B>& ctx, const tensor<T, B>& x) {
            constexpr const char* where = "tessel::nn::inception_fused::forward";
            expects(x.rank() == 4, where, "expects an NCHW tensor, got shape ", x.shape().str());
            expects(x.numel() > 0, where, "empty input of shape ", x.shape().str());
            expects(x.dim(1) == m_cfg.block.in_channels, where, "input has ", x.dim(1), " channels, the block expects ",
                    m_cfg.block.in_channels, " (input shape ", x.shape().str(), ")");
            const auto& w = m_cfg.block;
            const shape out{x.dim(0), w.out_channels(), x.dim(2), x.dim(3)};
            if (m_released) ctx.scratch.take(m_y, out.numel());  // the memory lent in release_output
            m_released = false;
            m_y.resize(out);
            m_y_shape = out;
            m_a.forward_to(ctx, x, m_y, 0);
            chain_forward(ctx, x, m_b1, m_b2, w.branch2_reduce, w.branch1);
            chain_forward(ctx, x, m_c1, m_c2, w.branch3_reduce, w.branch1 + w.branch2);
            m_d.forward_to(ctx, x, m_y, w.branch1 + w.branch2 + w.branch3);
            return m_y;
        }

        const tensor<T, B>& backward(context<B>& ctx, const tensor<T, B>& dy) {
            backward_into(ctx, dy, m_dx);
            return m_dx;
        }
        static constexpr bool overwritable_output = true;
        /// Branch (a) writes dx, the others add to it (no per-branch temporaries).
        void backward_into(context<B>& ctx, const tensor<T, B>& dy, tensor<T, B>& dx) {
            expects(dy.shape() == m_y_shape, "tessel::nn::inception_fused::backward", "output gradient of shape ",
                    dy.shape().str(), " does not match the forward output ", m_y_shape.str());
            const auto& w = m_cfg.block;
            m_a.backward_from(ctx, dy, 0, dx, false);
            chain_backward(ctx, dy, dx, m_b1, m_b2, w.branch2_reduce, w.branch1);
            chain_backward(ctx, dy, dx, m_c1, m_c2, w.branch3_reduce, w.branch1 + w.branch2);
            m_d.backward_from(ctx, dy, w.branch1 + w.branch2 + w.branch3, dx, true);
        }

        /// See nn::ReleasesOutput: the output is a per-channel map of the branches' saved conv
        /// outputs (branch (a) of a block with recompute_input_convs runs its 1x1 conv again, on
        /// the block input, which must then still be alive), so it can be dropped and rebuilt.
        void release_output(context<B>& ctx) {
            if (m_released || m_y.numel() == 0) return;
            ctx.scratch.donate(m_y);
            m_released = true;
        }
        void restore_output(context<B>& ctx) {
            if (!m_released) return;
            ctx.scratch.take(m_y, m_y_shape.numel());
            m_y.resize(m_y_shape);
            const auto& w = m_cfg.block;
            m_a.recompute_output_to(ctx, m_y, 0);
            m_b2.recompute_output_to(ctx, m_y, w.branch1);
            m_c2.recompute_output_to(ctx, m_y, w.branch1 + w.branch2);
            m_d.recompute_output_to(ctx, m_y, w.branch1 + w.branch2 + w.branch3);
            m_released = false;
        }

        parameter_list<T, B> parameters() {
            parameter_list<T, B> all;
            for (auto* p : {&m_a, &m_b1, &m_b2, &m_c1, &m_c2}) append_parameters(all, p->parameters());
            append_parameters(all, m_d.parameters());
            return all;
        }
        buffer_list<T, B> buffers() {
            buffer_list<T, B> all;
            for (auto* p : {&m_a, &m_b1, &m_b2, &m_c1, &m_c2}) append_buffers(all, buffers_of<T, B>(*p));
            append_buffers(all, buffers_of<T, B>(m_d));
            return all;
        }
        void set_input_grad_needed(bool needed) {
            for (auto* p : {&m_a, &m_b1, &m_c1}) p->set_input_grad_needed(needed);
            m_d.set_input_grad_needed(needed);
        }
        [[nodiscard]] const config& cfg() const noexcept { return m_cfg; }

    private:
        using unit_t = typename conv_bn_relu::template bind<B, T>;

        static const config& checked(const config& c) {
            const auto& b = c.block;
            expects(b.in_channels > 0 && b.branch1 > 0 && b.branch2_reduce > 0 && b.branch2 > 0 &&
                        b.branch3_reduce > 0 && b.branch3 > 0 && b.branch4 > 0,
                    "tessel::nn::inception_fused", "every channel count must be positive, got in_channels=",
                    b.in_channels, " branch1=", b.branch1, " branch2_reduce=", b.branch2_reduce, " branch2=",
                    b.branch2, " branch3_reduce=", b.branch3_reduce, " branch3=", b.branch3, " branch4=", b.branch4);
            return c;
        }
        conv2d::config conv(index_t in, index_t out, index_t k) const {
            return {.in_channels = in, .out_channels = out, .kernel = k, .padding = k / 2, .init = m_cfg.block.init,
                    .shared_workspace = true};
        }
        /// A unit; `last` ends a branch (takes post_bn), `on_input` reads the block input.
        conv_bn_relu::config unit(const conv2d::config& c, bool last, bool on_input) const {
            return {.conv = c, .eps = m_cfg.eps, .momentum = m_cfg.momentum, .post_bn = last && m_cfg.post_bn,
                    .recompute_front = on_input && m_cfg.recompute_input_convs};
        }

        /// x -> first -> second -> channels [c0, ...) of the output; first's output is dropped.
        void chain_forward(context<B>& ctx, const tensor<T, B>& x, unit_t& first, unit_t& second, index_t mid,
                           index_t c0) {
            scratch_lease<T, B> t(ctx, x.dim(0) * mid * x.dim(2) * x.dim(3));
            first.forward_into(ctx, x, t.get());
            second.forward_to(ctx, t.get(), m_y, c0);
        }
        /// Recomputes first's output for second's weight gradient, then runs both backwards.
        void chain_backward(context<B>& ctx, const tensor<T, B>& dy, tensor<T, B>& dx, unit_t& first,
                            unit_t& second, index_t mid, index_t c0) {
            const index_t n = dy.dim(0) * mid * dy.dim(2) * dy.dim(3);
            std::optional<scratch_lease<T, B>> t(std::in_place, ctx, n);
            first.recompute_output_into(ctx, t->get());
            second.rebind_input(t->get());
            scratch_lease<T, B> dt(ctx, n);
            second.backward_from(ctx, dy, c0, dt.get(), false);
            t.reset();  // free before first's backward, which may recompute its z
            first.backward_from(ctx, dt.get(), 0, dx, true);
        }

        config m_cfg;
        // Construction order = nn::inception's draw order: a, b (1x1, 3x3), c (1x1, 5x5), d.
        unit_t m_a, m_b1, m_b2, m_c1, m_c2;
        typename pool_proj_bn_relu::template bind<B, T> m_d;
        tensor<T, B> m_y, m_dx;
        shape m_y_shape{};
        bool m_released = false;
    };
};

static_assert(LayerSpec<inception_fused>);
static_assert(Layer<inception_fused::bind<cpu_serial>, cpu_serial>);
static_assert(BackwardsInto<inception_fused::bind<cpu_serial>, cpu_serial>);
static_assert(ReleasesOutput<inception_fused::bind<cpu_serial>, cpu_serial>);

}  // namespace tessel::nn
