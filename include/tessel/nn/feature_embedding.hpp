// tessel/nn/feature_embedding.hpp: PiCNet's feature embedding module (FEM), a residual block
// with channel attention and the fused ReLU/tanh activation.
//
// The PiCNet summary (papers/000_ea1617b28a568a4f.txt) names the parts: a shortcut connection,
// stacked convolutions with batch normalisation, ECA channel attention and the fused activation.
// The layout is METHODS.md §8.2's PROPOSAL:
//     y = act( BN(conv3x3( act( BN(conv3x3(x)) ) )) -> ECA   +   shortcut(x) )
// with shortcut = identity when the channel count is kept, conv1x1 -> BN when it changes (as in
// ResNet), padding 1, stride 1, and both activations the same fused_relu_tanh settings (each
// with its own weight when learnable). It is a composition of library blocks (conv2d,
// batch_norm, fused_relu_tanh, eca in an nn::sequential): this header only adds the sum and
// routes the gradient to both branches.
#pragma once
#include <optional>

#include "tessel/backend/parallel.hpp"
#include "tessel/nn/batch_norm.hpp"
#include "tessel/nn/concepts.hpp"
#include "tessel/nn/conv2d.hpp"
#include "tessel/nn/detail/checks.hpp"
#include "tessel/nn/eca.hpp"
#include "tessel/nn/fused.hpp"
#include "tessel/nn/sequential.hpp"

namespace tessel::nn {

namespace detail {
template <class T>
struct elementwise_sum_fn {  // out = a + b (out may alias a or b)
    const T* a;
    const T* b;
    T* out;
    TESSEL_HD void operator()(index_t i) const { out[i] = a[i] + b[i]; }
};
}  // namespace detail

struct feature_embedding {
    static constexpr const char* name = "tessel::nn::feature_embedding";
    struct config {
        index_t in_channels = 0;    ///< required
        index_t out_channels = 64;  ///< C (METHODS.md §8.2: 64 in every FEM)
        fused_relu_tanh::config activation{};  ///< both activations (fixed a = 0.5 by default)
        index_t eca_kernel = 0;     ///< 0: ECA's adaptive rule (3 for C = 64)
        init::scheme init = init::scheme::pytorch_default;
        bool conv_bias = true;      ///< PyTorch's Conv2d default
    };

    /// conv3x3 -> BN -> act -> conv3x3 -> BN -> ECA.
    using main_path = sequential<conv2d, batch_norm, fused_relu_tanh, conv2d, batch_norm, eca>;
    /// conv1x1 -> BN, when the channel count changes.
    using projection_path = sequential<conv2d, batch_norm>;

    static main_path::config main_config(const config& c) {
        return {conv2d::config{.in_channels = c.in_channels, .out_channels = c.out_channels, .kernel = 3, .padding = 1,
                               .bias = c.conv_bias, .init = c.init},
                batch_norm::config{.channels = c.out_channels},
                c.activation,
                conv2d::config{.in_channels = c.out_channels, .out_channels = c.out_channels, .kernel = 3,
                               .padding = 1, .bias = c.conv_bias, .init = c.init},
                batch_norm::config{.channels = c.out_channels},
                eca::config{.channels = c.out_channels, .kernel = c.eca_kernel}};
    }
    static projection_path::config projection_config(const config& c) {
        return {conv2d::config{.in_channels = c.in_channels, .out_channels = c.out_channels, .kernel = 1, .padding = 0,
                               .bias = c.conv_bias, .init = c.init},
                batch_norm::config{.channels = c.out_channels}};
    }

    template <Backend B, class T = float>
    class bind {
    public:
        bind(const config& cfg, rng& init) : m_cfg(validated(cfg)), m_main(main_config(cfg), init) {
            if (cfg.in_channels != cfg.out_channels) m_projection.emplace(projection_config(cfg), init);
            m_act.emplace(cfg.activation, init);
        }

        const tensor<T, B>& forward(context<B>& ctx, const tensor<T, B>& x) {
            detail::expect_nchw(name, x);
            expects(x.dim(1) == m_cfg.in_channels, name, "input has ", x.dim(1), " channels, the block expects ",
                    m_cfg.in_channels, " (input shape ", x.shape().str(), ")");
            // ECA, the main path's last layer, writes straight into the sum's buffer (its
            // backward never reads its output), and the shortcut is added there in place.
            m_main.forward_into(ctx, x, m_sum);
            const tensor<T, B>& s = m_projection ? m_projection->forward(ctx, x) : x;
            parallel_for(B{}, m_sum.numel(), detail::elementwise_sum_fn<T>{m_sum.data(), s.data(), m_sum.data()});
            // The projection's BN output is read only by the sum (BN's backward uses its input and
            // statistics), so its memory goes back to ctx.scratch until the next forward: 40 MB
            // per 64-channel map at 481 x 321, twice in PiCNet.
            if (m_projection) m_projection->template layer<1>().release_output(ctx);
            return m_act->forward(ctx, m_sum);
        }
        const tensor<T, B>& backward(context<B>& ctx, const tensor<T, B>& dy) {
            if (!m_input_grad) {
                scratch_lease<T, B> unused(ctx, dy.numel());
                backward_into(ctx, dy, unused.get());
                return m_dx;
            }
            backward_into(ctx, dy, m_dx);
            return m_dx;
        }
        /// The input gradient into dx (not aliasing dy). The gradients inside the block (after
        /// the output activation, and the shortcut's) are borrowed from ctx.scratch and the main
        /// path writes straight into dx, so the block keeps no gradient buffer of its own: at
        /// full resolution with 128 input channels that is 200 MB less (nn::BackwardsInto).
        void backward_into(context<B>& ctx, const tensor<T, B>& dy, tensor<T, B>& dx) {
            scratch_lease<T, B> g(ctx, dy.numel());
            m_act->backward_into(ctx, dy, g.get());
            if (!m_input_grad) {
                // Parameter gradients only; the paths leave dx untouched.
                m_main.backward_into(ctx, g.get(), dx);
                if (m_projection) m_projection->backward_into(ctx, g.get(), dx);
                return;
            }
            m_main.backward_into(ctx, g.get(), dx);
            if (m_projection) {
                scratch_lease<T, B> ds(ctx, dx.numel());
                m_projection->backward_into(ctx, g.get(), ds.get());
                parallel_for(B{}, dx.numel(), detail::elementwise_sum_fn<T>{dx.data(), ds.get().data(), dx.data()});
            } else {
                parallel_for(B{}, dx.numel(), detail::elementwise_sum_fn<T>{dx.data(), g.get().data(), dx.data()});
            }
        }
        parameter_list<T, B> parameters() {
            parameter_list<T, B> all = m_main.parameters();
            if (m_projection) append_parameters(all, m_projection->parameters());
            append_parameters(all, m_act->parameters());
            return all;
        }
        buffer_list<T, B> buffers() {
            buffer_list<T, B> all = m_main.buffers();
            if (m_projection) append_buffers(all, m_projection->buffers());
            return all;
        }
        /// The first block of a network need not produce its input gradient.
        void set_input_grad_needed(bool needed) {
            m_input_grad = needed;
            m_main.set_input_grad_needed(needed);
            if (m_projection) m_projection->set_input_grad_needed(needed);
        }
        [[nodiscard]] bool has_projection() const noexcept { return m_projection.has_value(); }
        typename main_path::template bind<B, T>& main() noexcept { return m_main; }
        /// The block's ECA layer (its gates() are the last forward's channel weights).
        auto& attention() noexcept { return m_main.template layer<5>(); }
        /// The output activation (current_weights() gives its mix).
        auto& output_activation() noexcept { return *m_act; }

    private:
        static const config& validated(const config& c) {
            expects(c.in_channels > 0 && c.out_channels > 0, name, "channel counts must be positive, got ",
                    c.in_channels, " -> ", c.out_channels);
            return c;
        }
        config m_cfg;
        typename main_path::template bind<B, T> m_main;
        std::optional<typename projection_path::template bind<B, T>> m_projection;
        std::optional<typename fused_relu_tanh::template bind<B, T>> m_act;
        tensor<T, B> m_sum, m_dx;
        bool m_input_grad = true;
    };
};

static_assert(LayerSpec<feature_embedding>);
static_assert(Layer<feature_embedding::bind<cpu_serial>, cpu_serial>);
static_assert(SkipsInputGrad<feature_embedding::bind<cpu_serial>>);

}  // namespace tessel::nn
