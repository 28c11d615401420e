// tessel/nn/conv2d.hpp: 2-d convolution (PyTorch's Conv2d with a square kernel), NCHW.
//
// y[n, o] = b[o] + sum_c W[o, c] * x[n, c] (cross-correlation, as in every deep-learning
// framework), with stride, zero padding and dilation. Weights are [out, in, k, k]. Each image runs
// through one of two engines (config::engine): ops::conv2d_engine, im2col over bands of output
// rows + one GEMM per band, so the column buffer stays under config::workspace_bytes; or, for 3x3
// stride-1 convolutions with few input channels, ops::conv2d_direct_engine, which builds no column
// buffer at all. `automatic` picks by the measured rule of docs/nn_conv.md. The first layer of a
// network can skip its input gradient (set_input_grad_needed(false)), which nn::sequential requests.
#pragma once
#include <cstddef>
#include <type_traits>

#include "tessel/nn/concepts.hpp"
#include "tessel/nn/detail/channel_ops.hpp"
#include "tessel/nn/init.hpp"
#include "tessel/ops/conv2d.hpp"
#include "tessel/ops/conv2d_direct.hpp"

namespace tessel::nn {

/// Which engine runs a convolution: im2col + GEMM, the direct tile kernels (3x3, stride 1,
/// dilation 1, float, host backends), or the faster of the two for the shape (docs/nn_conv.md).
enum class conv_engine { automatic, im2col, direct };

/// The engine `automatic` picks: direct where its kernels apply and neither side has more than
/// direct_max_channels channels. Measured with bench/conv_engines_bench (docs/nn_conv.md): at
/// 8 to 32 channels the direct engine took 0.4 to 0.8 of im2col's time, at 3 -> 100 the same,
/// and at 64 and 100 channels per side 1.3 to 2 times as long, where the GEMM's reuse wins.
inline constexpr index_t direct_max_channels = 32;
template <Backend B, class T>
constexpr bool use_direct_engine(conv_engine e, const ops::conv_geometry& g, index_t out_channels) {
    if constexpr (!HostBackend<B> || !std::is_same_v<T, float>) {
        return false;
    } else {
        if (e == conv_engine::im2col || !ops::conv2d_direct_engine<B, T>::supports(g)) return false;
        return e == conv_engine::direct || (g.channels <= direct_max_channels && out_channels <= direct_max_channels);
    }
}

struct conv2d {
    struct config {
        index_t in_channels = 0;
        index_t out_channels = 0;
        index_t kernel = 1;
        index_t stride = 1;
        index_t padding = 0;
        index_t dilation = 1;
        bool bias = true;
        init::scheme init = init::scheme::pytorch_default;
        /// Upper bound on the column buffer (bytes); larger bands give larger GEMMs.
        std::size_t workspace_bytes = ops::default_conv_workspace_bytes;
        /// Borrow the column buffer from the context (one buffer shared by all such layers)
        /// instead of keeping one per layer: 8 MB per 3x3 layer on 2 threads.
        bool shared_workspace = false;
        /// The engine; `direct` on a shape it does not support (or a device backend) falls back
        /// to im2col, so a network config stays valid for every layer and backend.
        conv_engine engine = conv_engine::automatic;
    };

    /// Throws naming `where` unless the configuration is usable.
    static void validate(const config& c, std::string_view where) {
        expects(c.in_channels > 0, where, "in_channels must be positive, got ", c.in_channels);
        expects(c.out_channels > 0, where, "out_channels must be positive, got ", c.out_channels);
        expects(c.kernel >= 1, where, "kernel must be >= 1, got ", c.kernel);
        expects(c.stride >= 1, where, "stride must be >= 1, got ", c.stride);
        expects(c.padding >= 0, where, "padding must be >= 0, got ", c.padding);
        expects(c.dilation >= 1, where, "dilation must be >= 1, got ", c.dilation);
    }

    template <Backend B, class T = float>
    class bind {
    public:
        bind(const config& cfg, rng& init) : m_cfg(cfg) {
            validate(cfg, "tessel::nn::conv2d");
            const index_t k = cfg.kernel, fan_in = cfg.in_channels * k * k, fan_out = cfg.out_channels * k * k;
            init::weight_and_bias(m_w, m_dw, m_b, m_db, shape{cfg.out_channels, cfg.in_channels, k, k},
                                  cfg.out_channels, cfg.bias, fan_in, fan_out, cfg.init, init);
        }

        const tensor<T, B>& forward(context<B>& ctx, const tensor<T, B>& x) {
            forward_into(ctx, x, m_y);
            return m_y;
        }
        /// The output into y (see nn::ForwardsInto): backward never reads it, so a fused unit can
        /// keep it in a buffer of its own, or drop it and recompute it.
        void forward_into(context<B>& ctx, const tensor<T, B>& x, tensor<T, B>& y) {
            constexpr const char* where = "tessel::nn::conv2d::forward";
            expects(x.rank() == 4, where, "expects an NCHW tensor, got shape ", x.shape().str());
            expects(x.numel() > 0, where, "empty input of shape ", x.shape().str());
            expects(x.dim(1) == m_cfg.in_channels, where, "input has ", x.dim(1), " channels, the layer expects ",
                    m_cfg.in_channels, " (input shape ", x.shape().str(), ")");
            ops::conv_geometry g{.channels = x.dim(1), .height = x.dim(2), .width = x.dim(3), .kernel = m_cfg.kernel,
                                 .stride = m_cfg.stride, .padding = m_cfg.padding, .dilation = m_cfg.dilation};
            g.finish(where);
            if (!(x.shape() == m_in_shape)) {
                m_direct = use_direct_engine<B, T>(m_cfg.engine, g, m_cfg.out_channels);
                if constexpr (direct_capable) {
                    if (m_direct) m_direct_engine.configure(g, m_cfg.out_channels);
                }
                if (!m_direct) m_engine.configure(g, m_cfg.out_channels, m_cfg.workspace_bytes, m_cfg.shared_workspace);
                m_in_shape = x.shape();
            }
            lend_workspace(ctx);
            const index_t N = x.dim(0), P = g.out_height * g.out_width;
            y.resize(shape{N, m_cfg.out_channels, g.out_height, g.out_width});
            if (m_cfg.bias && !m_direct)
                parallel_for(B{}, N * m_cfg.out_channels,
                             detail::broadcast_bias_fn<T>{m_b.data(), y.data(), m_cfg.out_channels, P});
            const index_t in_img = x.numel() / N, out_img = m_cfg.out_channels * P;
            for (index_t n = 0; n < N; ++n) {
                if constexpr (direct_capable) {
                    if (m_direct) {
                        m_direct_engine.forward(m_w.data(), m_cfg.bias ? m_b.data() : nullptr, x.data() + n * in_img,
                                                y.data() + n * out_img, T(0));
                        continue;
                    }
                }
                m_engine.forward(m_w.data(), x.data() + n * in_img, y.data() + n * out_img, m_cfg.bias ? T(1) : T(0));
            }
            m_x = &x;
            m_y_shape = y.shape();
        }
        /// Points backward at x instead of the tensor given to the last forward: for a caller
        /// that dropped the input after forward and has recomputed it (same shape and values)
        /// in another buffer.
        void rebind_input(const tensor<T, B>& x) {
            expects(m_x != nullptr && x.shape() == m_in_shape, "tessel::nn::conv2d::rebind_input",
                    "needs a forward first and an input of the forward's shape, got ", x.shape().str());
            m_x = &x;
        }

        const tensor<T, B>& backward(context<B>& ctx, const tensor<T, B>& dy) {
            backward_into(ctx, dy, m_dx);
            return m_dx;
        }
        /// Backward reads the saved input and the weights, never the output.
        static constexpr bool overwritable_output = true;
        void backward_into(context<B>& ctx, const tensor<T, B>& dy, tensor<T, B>& dx) {
            lend_workspace(ctx);
            backward_impl(dy, dx, false);
        }
        /// dx += the input gradient (dx must have the input's shape): branches that share an input
        /// sum their gradients without a temporary. Parameter gradients are overwritten as usual.
        void backward_add_into(context<B>& ctx, const tensor<T, B>& dy, tensor<T, B>& dx) {
            expects(m_x != nullptr && (!m_input_grad || dx.shape() == m_x->shape()), "tessel::nn::conv2d::backward_add_into",
                    "dx must have the input's shape, got ", dx.shape().str());
            lend_workspace(ctx);
            backward_impl(dy, dx, true);
        }

        parameter_list<T, B> parameters() {
            parameter_list<T, B> p{{&m_w, &m_dw, "weight"}};
            if (m_cfg.bias) p.push_back({&m_b, &m_db, "bias"});
            return p;
        }
        /// With false, backward skips dx (returns an unspecified tensor): for a network's first layer.
        void set_input_grad_needed(bool needed) noexcept { m_input_grad = needed; }
        [[nodiscard]] bool input_grad_needed() const noexcept { return m_input_grad; }

        [[nodiscard]] const config& cfg() const noexcept { return m_cfg; }
        tensor<T, B>& weight() noexcept { return m_w; }
        tensor<T, B>& bias() noexcept { return m_b; }
        /// Output rows per im2col band at the last input shape (for docs and benches).
        [[nodiscard]] index_t band_rows() const noexcept { return m_engine.band_rows(); }
        /// True when the last forward ran on the direct engine.
        [[nodiscard]] bool uses_direct_engine() const noexcept { return m_direct; }

    private:
        static constexpr bool direct_capable = HostBackend<B> && std::is_same_v<T, float>;
        struct no_direct_engine {};

        void lend_workspace(context<B>& ctx) {
            if (m_cfg.shared_workspace && !m_direct) m_engine.use_workspace(ctx.scratch.template workspace<T>(m_engine.workspace_numel()));
        }
        void backward_impl(const tensor<T, B>& dy, tensor<T, B>& dx, bool accumulate) {
            constexpr const char* where = "tessel::nn::conv2d::backward";
            expects(m_x != nullptr, where, "backward called before forward");
            expects(dy.shape() == m_y_shape, where, "output gradient of shape ", dy.shape().str(),
                    " does not match the forward output ", m_y_shape.str());
            const index_t N = dy.dim(0), P = dy.dim(2) * dy.dim(3);
            const index_t in_img = m_x->numel() / N, out_img = m_cfg.out_channels * P;
            if (m_cfg.bias)
                parallel_for(B{}, m_cfg.out_channels,
                             detail::channel_sum_fn<T>{dy.data(), m_db.data(), N, m_cfg.out_channels, P});
            if (m_input_grad && !accumulate) dx.resize(m_x->shape());
            for (index_t n = 0; n < N; ++n) {
                T* dxn = m_input_grad ? dx.data() + n * in_img : nullptr;
                if constexpr (direct_capable) {
                    if (m_direct) {
                        m_direct_engine.backward(m_w.data(), m_x->data() + n * in_img, dy.data() + n * out_img, m_dw.data(),
                                                 n == 0 ? T(0) : T(1), dxn, accumulate);
                        continue;
                    }
                }
                m_engine.backward(m_w.data(), m_x->data() + n * in_img, dy.data() + n * out_img, m_dw.data(),
                                  n == 0 ? T(0) : T(1), dxn, accumulate);
            }
        }

        config m_cfg;
        tensor<T, B> m_w, m_dw, m_b, m_db, m_y, m_dx;
        ops::conv2d_engine<B, T> m_engine;
        [[no_unique_address]] std::conditional_t<direct_capable, ops::conv2d_direct_engine<B, float>, no_direct_engine>
            m_direct_engine;
        bool m_direct = false;
        shape m_in_shape{}, m_y_shape{};
        const tensor<T, B>* m_x = nullptr;
        bool m_input_grad = true;
    };
};

static_assert(LayerSpec<conv2d>);
static_assert(Layer<conv2d::bind<cpu_serial>, cpu_serial>);
static_assert(SkipsInputGrad<conv2d::bind<cpu_serial>>);
static_assert(ForwardsInto<conv2d::bind<cpu_serial>, cpu_serial>);

}  // namespace tessel::nn
