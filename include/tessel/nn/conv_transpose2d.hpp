// tessel/nn/conv_transpose2d.hpp: transposed 2-d convolution (PyTorch's ConvTranspose2d), NCHW.
//
// The adjoint of conv2d in its input: the output is col2im(W^T x) plus a bias, of size
// (H - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1. Weights are
// [in, out, k, k] as in PyTorch. It reuses ops::conv2d_engine with the roles swapped: the engine's
// "convolution" maps this layer's output (out_channels) to its input (in_channels), so forward is
// the engine's data gradient, backward's dx is the engine's forward, and dW its weight product.
#pragma once
#include <cstddef>

#include "tessel/nn/concepts.hpp"
#include "tessel/nn/detail/channel_ops.hpp"
#include "tessel/nn/init.hpp"
#include "tessel/ops/conv2d.hpp"

namespace tessel::nn {

struct conv_transpose2d {
    struct config {
        index_t in_channels = 0;
        index_t out_channels = 0;
        index_t kernel = 1;
        index_t stride = 1;
        index_t padding = 0;
        index_t output_padding = 0;  ///< extra rows/columns on the bottom/right; < max(stride, dilation)
        index_t dilation = 1;
        bool bias = true;
        init::scheme init = init::scheme::pytorch_default;
        std::size_t workspace_bytes = ops::default_conv_workspace_bytes;
    };

    template <Backend B, class T = float>
    class bind {
    public:
        bind(const config& cfg, rng& init) : m_cfg(cfg) {
            constexpr const char* where = "tessel::nn::conv_transpose2d";
            expects(cfg.in_channels > 0, where, "in_channels must be positive, got ", cfg.in_channels);
            expects(cfg.out_channels > 0, where, "out_channels must be positive, got ", cfg.out_channels);
            expects(cfg.kernel >= 1, where, "kernel must be >= 1, got ", cfg.kernel);
            expects(cfg.stride >= 1, where, "stride must be >= 1, got ", cfg.stride);
            expects(cfg.padding >= 0, where, "padding must be >= 0, got ", cfg.padding);
            expects(cfg.dilation >= 1, where, "dilation must be >= 1, got ", cfg.dilation);
            expects(cfg.output_padding >= 0 && (cfg.output_padding < cfg.stride || cfg.output_padding < cfg.dilation),
                    where, "output_padding must be >= 0 and smaller than stride or dilation, got ", cfg.output_padding,
                    " (stride ", cfg.stride, ", dilation ", cfg.dilation, ")");
            // PyTorch computes fans from weight.size(1) * k * k = out_channels * k * k.
            const index_t k = cfg.kernel, fan_in = cfg.out_channels * k * k, fan_out = cfg.in_channels * k * k;
            init::weight_and_bias(m_w, m_dw, m_b, m_db, shape{cfg.in_channels, cfg.out_channels, k, k},
                                  cfg.out_channels, cfg.bias, fan_in, fan_out, cfg.init, init);
        }

        const tensor<T, B>& forward(context<B>&, const tensor<T, B>& x) {
            constexpr const char* where = "tessel::nn::conv_transpose2d::forward";
            expects(x.rank() == 4, where, "expects an NCHW tensor, got shape ", x.shape().str());
            expects(x.numel() > 0, where, "empty input of shape ", x.shape().str());
            expects(x.dim(1) == m_cfg.in_channels, where, "input has ", x.dim(1), " channels, the layer expects ",
                    m_cfg.in_channels, " (input shape ", x.shape().str(), ")");
            const index_t span = m_cfg.dilation * (m_cfg.kernel - 1) + 1;
            const index_t oh = (x.dim(2) - 1) * m_cfg.stride - 2 * m_cfg.padding + span + m_cfg.output_padding;
            const index_t ow = (x.dim(3) - 1) * m_cfg.stride - 2 * m_cfg.padding + span + m_cfg.output_padding;
            expects(oh > 0 && ow > 0, where, "output would be ", oh, "x", ow, " for input ", x.shape().str(),
                    " (padding ", m_cfg.padding, " too large)");
            if (!(x.shape() == m_in_shape)) {
                ops::conv_geometry g{.channels = m_cfg.out_channels, .height = oh, .width = ow,
                                     .kernel = m_cfg.kernel, .stride = m_cfg.stride, .padding = m_cfg.padding,
                                     .dilation = m_cfg.dilation};
                g.finish(where);
                // With output_padding >= stride (allowed when < dilation) the padded output would
                // support one more conv row than the input has; the engine maps exactly x's rows.
                g.out_height = x.dim(2);
                g.out_width = x.dim(3);
                m_engine.configure(g, m_cfg.in_channels, m_cfg.workspace_bytes);
                m_in_shape = x.shape();
            }
            const index_t N = x.dim(0), P = oh * ow;
            m_y.resize(shape{N, m_cfg.out_channels, oh, ow});
            if (m_cfg.bias)
                parallel_for(B{}, N * m_cfg.out_channels,
                             detail::broadcast_bias_fn<T>{m_b.data(), m_y.data(), m_cfg.out_channels, P});
            const index_t in_img = x.numel() / N, out_img = m_cfg.out_channels * P;
            for (index_t n = 0; n < N; ++n)
                m_engine.backward_data(m_w.data(), x.data() + n * in_img, m_y.data() + n * out_img,
                                       m_cfg.bias ? T(1) : T(0));
            m_x = &x;
            return m_y;
        }

        const tensor<T, B>& backward(context<B>&, const tensor<T, B>& dy) {
            constexpr const char* where = "tessel::nn::conv_transpose2d::backward";
            expects(m_x != nullptr, where, "backward called before forward");
            expect_same_shape(where, dy, m_y);
            const index_t N = dy.dim(0), P = dy.dim(2) * dy.dim(3);
            const index_t in_img = m_x->numel() / N, out_img = m_cfg.out_channels * P;
            if (m_cfg.bias)
                parallel_for(B{}, m_cfg.out_channels,
                             detail::channel_sum_fn<T>{dy.data(), m_db.data(), N, m_cfg.out_channels, P});
            m_dx.resize(m_x->shape());
            for (index_t n = 0; n < N; ++n) {
                m_engine.weight_product(m_x->data() + n * in_img, dy.data() + n * out_img, m_dw.data(),
                                        n == 0 ? T(0) : T(1));
                if (m_input_grad)
                    m_engine.forward(m_w.data(), dy.data() + n * out_img, m_dx.data() + n * in_img, T(0));
            }
            return m_dx;
        }

        parameter_list<T, B> parameters() {
            parameter_list<T, B> p{{&m_w, &m_dw, "weight"}};
            if (m_cfg.bias) p.push_back({&m_b, &m_db, "bias"});
            return p;
        }
        void set_input_grad_needed(bool needed) noexcept { m_input_grad = needed; }
        tensor<T, B>& weight() noexcept { return m_w; }
        tensor<T, B>& bias() noexcept { return m_b; }

    private:
        config m_cfg;
        tensor<T, B> m_w, m_dw, m_b, m_db, m_y, m_dx;
        ops::conv2d_engine<B, T> m_engine;
        shape m_in_shape{};
        const tensor<T, B>* m_x = nullptr;
        bool m_input_grad = true;
    };
};

static_assert(LayerSpec<conv_transpose2d>);
static_assert(Layer<conv_transpose2d::bind<cpu_serial>, cpu_serial>);

}  // namespace tessel::nn
