// tessel/nn/eca.hpp: Efficient Channel Attention (Wang et al., "ECA-Net", CVPR 2020).
//
// y[n, c] = x[n, c] * sigmoid(conv1d(gap(x))[n, c]): each channel's mean is mixed with its k
// neighbours' by a learnable 1-D kernel (no bias, zero padding (k - 1) / 2), and the sigmoid of
// the result gates the channel. k follows the paper's adaptive rule from the channel count,
//     t = int(|(log2(C) + b) / gamma|),  k = t if t is odd else t + 1   (gamma = 2, b = 1),
// unless given. PiCNet's feature embedding module ends in this block (METHODS.md §8.2, C = 64 ->
// k = 3). The kernel starts as PyTorch's Conv1d(1, 1, k) default, U(-1/sqrt(k), 1/sqrt(k)).
#pragma once
#include <cmath>

#include "tessel/backend/parallel.hpp"
#include "tessel/nn/activation.hpp"
#include "tessel/nn/concepts.hpp"
#include "tessel/nn/detail/checks.hpp"
#include "tessel/nn/init.hpp"

namespace tessel::nn {

namespace detail {

/// The per-(n, c) quantities of ECA live in N*C arrays; a 1-D convolution runs along c.
/// Elementwise passes run one functor call per chunk of a plane rather than per element, so the
/// plane index (a 64-bit division) and the gate's neighbourhood are computed once per chunk.
struct eca_dims {
    index_t channels, hw, kernel;
    static constexpr index_t chunk = 2048;
    TESSEL_HD index_t pad() const { return (kernel - 1) / 2; }
    TESSEL_HD index_t chunks_per_plane() const { return (hw + chunk - 1) / chunk; }
};

template <class T>
struct eca_pool_fn {  // s = mean over H, W; a pass of its own because each gate reads its neighbours' s
    eca_dims d;
    const T* x;
    T* s;
    TESSEL_HD void operator()(index_t p) const {
        const T* xp = x + p * d.hw;
        T sum = 0;
        for (index_t k = 0; k < d.hw; ++k) sum += xp[k];
        s[p] = sum / static_cast<T>(d.hw);
    }
};

template <class T>
struct eca_conv_gate_fn {  // g = sigmoid(sum_j w[j] s[c + j - pad]), cross-correlation as Conv1d
    eca_dims d;
    const T* w;
    const T* s;
    T* g;
    TESSEL_HD void operator()(index_t p) const {
        const index_t c = p % d.channels, row = p - c;
        T z = 0;
        for (index_t j = 0; j < d.kernel; ++j) {
            const index_t cc = c + j - d.pad();
            if (cc >= 0 && cc < d.channels) z += w[j] * s[row + cc];
        }
        g[p] = stable_sigmoid(z);
    }
};

template <class T>
struct eca_scale_fn {
    eca_dims d;
    const T* x;
    const T* g;
    T* y;
    TESSEL_HD void operator()(index_t j) const {  // j = plane * chunks_per_plane + chunk
        const index_t per = d.chunks_per_plane(), p = j / per, k0 = (j - p * per) * eca_dims::chunk;
        const index_t k1 = k0 + eca_dims::chunk < d.hw ? k0 + eca_dims::chunk : d.hw;
        const T gp = g[p];
        const T* xp = x + p * d.hw;
        T* yp = y + p * d.hw;
        for (index_t k = k0; k < k1; ++k) yp[k] = xp[k] * gp;
    }
};

template <class T>
struct eca_gate_grad_fn {  // dz = (sum_hw dy * x) * g (1 - g)
    eca_dims d;
    const T* x;
    const T* dy;
    const T* g;
    T* dz;
    TESSEL_HD void operator()(index_t p) const {
        const T* xp = x + p * d.hw;
        const T* dyp = dy + p * d.hw;
        T sum = 0;
        for (index_t k = 0; k < d.hw; ++k) sum += dyp[k] * xp[k];
        dz[p] = sum * g[p] * (T(1) - g[p]);
    }
};

template <class T>
struct eca_weight_grad_fn {  // dw[j] = sum_{n, c} dz[n, c] s[n, c + j - pad]
    eca_dims d;
    index_t planes;
    const T* dz;
    const T* s;
    T* dw;
    TESSEL_HD void operator()(index_t j) const {
        T sum = 0;
        for (index_t p = 0; p < planes; ++p) {
            const index_t c = p % d.channels, cc = c + j - d.pad();
            if (cc >= 0 && cc < d.channels) sum += dz[p] * s[p - c + cc];
        }
        dw[j] = sum;
    }
};

template <class T>
struct eca_input_grad_fn {  // dx = dy g + (sum_j dz[c - j + pad] w[j]) / (H W)
    eca_dims d;
    const T* w;
    const T* dz;
    const T* dy;
    const T* g;
    T* dx;
    TESSEL_HD void operator()(index_t j) const {  // j = plane * chunks_per_plane + chunk
        const index_t per = d.chunks_per_plane(), p = j / per, k0 = (j - p * per) * eca_dims::chunk;
        const index_t k1 = k0 + eca_dims::chunk < d.hw ? k0 + eca_dims::chunk : d.hw;
        const index_t c = p % d.channels, row = p - c;
        T ds = 0;
        for (index_t t = 0; t < d.kernel; ++t) {
            const index_t cc = c - t + d.pad();
            if (cc >= 0 && cc < d.channels) ds += dz[row + cc] * w[t];
        }
        const T mean_part = ds / static_cast<T>(d.hw), gp = g[p];
        const T* dyp = dy + p * d.hw;
        T* dxp = dx + p * d.hw;
        for (index_t k = k0; k < k1; ++k) dxp[k] = dyp[k] * gp + mean_part;
    }
};

}  // namespace detail

struct eca {
    static constexpr const char* name = "tessel::nn::eca";
    struct config {
        index_t channels = 0;  ///< C of the input; required
        index_t kernel = 0;    ///< odd 1-D kernel size; 0: the adaptive rule from channels
        double gamma = 2;      ///< the rule's gamma and b (the paper's values)
        double b = 1;
    };

    /// The paper's adaptive kernel size for C channels (its reference code's formula).
    static index_t kernel_size(index_t channels, double gamma = 2, double b = 1) {
        expects(channels > 0, name, "channels must be positive, got ", channels);
        expects(gamma > 0 && std::isfinite(b), name, "gamma must be positive and b finite, got gamma ", gamma,
                " and b ", b);
        const auto t = static_cast<index_t>(std::abs((std::log2(static_cast<double>(channels)) + b) / gamma));
        return t % 2 ? t : t + 1;
    }

    template <Backend B, class T = float>
    class bind {
    public:
        bind(const config& cfg, rng& init) : m_channels(cfg.channels) {
            expects(cfg.channels > 0, name, "channels must be positive, got ", cfg.channels);
            expects(cfg.kernel >= 0 && (cfg.kernel == 0 || cfg.kernel % 2 == 1), name,
                    "kernel must be odd (or 0 for the adaptive rule), got ", cfg.kernel);
            m_kernel = cfg.kernel > 0 ? cfg.kernel : eca::kernel_size(cfg.channels, cfg.gamma, cfg.b);
            m_weight = tensor<T, B>(shape{m_kernel});
            m_weight_grad = tensor<T, B>(shape{m_kernel});
            init::kaiming_uniform(m_weight, m_kernel, init);  // bound 1/sqrt(k), PyTorch's Conv1d default
        }

        const tensor<T, B>& forward(context<B>& ctx, const tensor<T, B>& x) {
            forward_into(ctx, x, m_y);
            return m_y;
        }
        /// The output into y (nn::ForwardsInto): backward reads only the input and the gates, so
        /// a caller may take the output into its own buffer and overwrite it afterwards
        /// (feature_embedding adds its shortcut there).
        void forward_into(context<B>&, const tensor<T, B>& x, tensor<T, B>& y) {
            detail::expect_nchw(name, x);
            expects(x.dim(1) == m_channels, name, "input has ", x.dim(1), " channels, the layer expects ",
                    m_channels, " (input shape ", x.shape().str(), ")");
            m_x = &x;
            const index_t planes = x.dim(0) * x.dim(1);
            const detail::eca_dims d = dims(x.shape());
            m_s.resize(shape{planes});
            m_g.resize(shape{planes});
            y.resize(x.shape());
            parallel_for(B{}, planes, detail::eca_pool_fn<T>{d, x.data(), m_s.data()});
            parallel_for(B{}, planes, detail::eca_conv_gate_fn<T>{d, m_weight.data(), m_s.data(), m_g.data()});
            parallel_for(B{}, planes * d.chunks_per_plane(), detail::eca_scale_fn<T>{d, x.data(), m_g.data(), y.data()});
        }
        static constexpr bool overwritable_output = true;
        const tensor<T, B>& backward(context<B>& ctx, const tensor<T, B>& dy) {
            backward_into(ctx, dy, m_dx);
            return m_dx;
        }
        /// The input gradient into dx (not aliasing dy): containers lend a shared buffer, so the
        /// layer keeps none of its own (nn::BackwardsInto).
        void backward_into(context<B>&, const tensor<T, B>& dy, tensor<T, B>& dx) {
            expects(m_x != nullptr, name, "backward called before forward");
            expect_same_shape(name, dy, *m_x);
            const index_t planes = m_s.numel();
            const detail::eca_dims d = dims(dy.shape());
            m_dz.resize(shape{planes});
            dx.resize(dy.shape());
            parallel_for(B{}, planes, detail::eca_gate_grad_fn<T>{d, m_x->data(), dy.data(), m_g.data(), m_dz.data()});
            parallel_for(B{}, m_kernel,
                         detail::eca_weight_grad_fn<T>{d, planes, m_dz.data(), m_s.data(), m_weight_grad.data()});
            parallel_for(B{}, planes * d.chunks_per_plane(),
                         detail::eca_input_grad_fn<T>{d, m_weight.data(), m_dz.data(), dy.data(), m_g.data(), dx.data()});
        }
        parameter_list<T, B> parameters() { return {{&m_weight, &m_weight_grad, "weight"}}; }

        [[nodiscard]] index_t kernel_size() const noexcept { return m_kernel; }
        [[nodiscard]] tensor<T, B>& weight() noexcept { return m_weight; }
        /// The channel gates sigmoid(conv1d(gap(x))) of the last forward, shape [N * C].
        [[nodiscard]] const tensor<T, B>& gates() const noexcept { return m_g; }

    private:
        detail::eca_dims dims(const shape& s) const { return {m_channels, s[2] * s[3], m_kernel}; }

        index_t m_channels = 0, m_kernel = 0;
        tensor<T, B> m_weight, m_weight_grad;
        const tensor<T, B>* m_x = nullptr;
        tensor<T, B> m_s, m_g, m_dz, m_y, m_dx;
    };
};

static_assert(LayerSpec<eca>);
static_assert(Layer<eca::bind<cpu_serial>, cpu_serial>);

}  // namespace tessel::nn
