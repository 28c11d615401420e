// tessel/nn/max_pool2d.hpp: 2-d max pooling (PyTorch's MaxPool2d, dilation 1, floor mode), NCHW.
//
// Padding is implicit -infinity, so a window never picks a padded value. Forward records, per
// output, the position of its maximum within its window as one byte, kh * kernel + kw (the first
// one in scan order on ties; kernels up to 15, so 1/4 of the memory of a float per output);
// backward is a gather: each input pixel sums the gradients of the outputs whose window
// contains it and chose it, so overlapping windows (stride < kernel, as in Inception's 3x3 /
// stride-1 pool) need no atomics. Used inside nn::inception.
#pragma once
#include <cstdint>

#include "tessel/backend/parallel.hpp"
#include "tessel/nn/concepts.hpp"

namespace tessel::nn {

namespace detail {
template <class T>
struct max_pool_forward_fn {
    const T* x;
    T* y;
    std::uint8_t* arg;
    index_t H, W, OH, OW, k, s, p;
    TESSEL_HD void operator()(index_t o) const {
        const index_t plane = o / (OH * OW), oh = (o / OW) % OH, ow = o % OW;
        const T* in = x + plane * H * W;
        index_t best = -1, best_k = 0;
        T bv = T(0);
        for (index_t kh = 0; kh < k; ++kh) {
            const index_t ih = oh * s - p + kh;
            if (ih < 0 || ih >= H) continue;
            for (index_t kw = 0; kw < k; ++kw) {
                const index_t iw = ow * s - p + kw;
                if (iw < 0 || iw >= W) continue;
                const T v = in[ih * W + iw];
                if (best < 0 || v > bv || v != v) {  // NaN propagates, as in PyTorch
                    bv = v;
                    best = ih * W + iw;
                    best_k = kh * k + kw;
                    if (v != v) break;
                }
            }
        }
        y[o] = bv;
        arg[o] = static_cast<std::uint8_t>(best_k);
    }
};
template <class T>
struct max_pool_backward_fn {
    const T* dy;
    const std::uint8_t* arg;
    T* dx;
    index_t H, W, OH, OW, k, s, p;
    TESSEL_HD void operator()(index_t i) const {
        const index_t plane = i / (H * W), ih = (i / W) % H, iw = i % W;
        T acc = T(0);
        for (index_t kh = 0; kh < k; ++kh) {
            const index_t th = ih + p - kh;
            if (th < 0 || th % s != 0 || th / s >= OH) continue;
            for (index_t kw = 0; kw < k; ++kw) {
                const index_t tw = iw + p - kw;
                if (tw < 0 || tw % s != 0 || tw / s >= OW) continue;
                const index_t o = plane * OH * OW + (th / s) * OW + tw / s;
                if (arg[o] == kh * k + kw) acc += dy[o];
            }
        }
        dx[i] = acc;
    }
};
}  // namespace detail

struct max_pool2d {
    struct config {
        index_t kernel = 2;
        index_t stride = 2;
        index_t padding = 0;  ///< at most kernel / 2, as PyTorch requires
    };

    template <Backend B, class T = float>
    class bind {
    public:
        bind(const config& cfg, rng&) : m_cfg(cfg) {
            constexpr const char* where = "tessel::nn::max_pool2d";
            expects(cfg.kernel >= 1, where, "kernel must be >= 1, got ", cfg.kernel);
            expects(cfg.stride >= 1, where, "stride must be >= 1, got ", cfg.stride);
            expects(cfg.kernel <= 15, where, "kernel must be <= 15 (window positions are stored in a byte), got ",
                    cfg.kernel);
            expects(cfg.padding >= 0 && 2 * cfg.padding <= cfg.kernel, where,
                    "padding must be in [0, kernel / 2], got ", cfg.padding, " for kernel ", cfg.kernel);
        }

        const tensor<T, B>& forward(context<B>&, const tensor<T, B>& x) {
            constexpr const char* where = "tessel::nn::max_pool2d::forward";
            expects(x.rank() == 4, where, "expects an NCHW tensor, got shape ", x.shape().str());
            expects(x.numel() > 0, where, "empty input of shape ", x.shape().str());
            const index_t H = x.dim(2), W = x.dim(3), k = m_cfg.kernel, s = m_cfg.stride, p = m_cfg.padding;
            expects(H + 2 * p >= k && W + 2 * p >= k, where, "input ", x.shape().str(), " with padding ", p,
                    " is smaller than the kernel ", k);
            const index_t OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
            m_y.resize(shape{x.dim(0), x.dim(1), OH, OW});
            m_arg.resize(m_y.shape());
            parallel_for(B{}, m_y.numel(),
                         detail::max_pool_forward_fn<T>{x.data(), m_y.data(), m_arg.data(), H, W, OH, OW, k, s, p});
            m_in_shape = x.shape();
            return m_y;
        }

        const tensor<T, B>& backward(context<B>& ctx, const tensor<T, B>& dy) {
            backward_into(ctx, dy, m_dx);
            return m_dx;
        }
        /// Backward reads the recorded window positions, never the output.
        static constexpr bool overwritable_output = true;
        void backward_into(context<B>&, const tensor<T, B>& dy, tensor<T, B>& dx) {
            constexpr const char* where = "tessel::nn::max_pool2d::backward";
            expects(dy.shape() == m_arg.shape(), where, "output gradient of shape ", dy.shape().str(),
                    " does not match the forward output ", m_arg.shape().str());
            dx.resize(m_in_shape);
            parallel_for(B{}, dx.numel(),
                         detail::max_pool_backward_fn<T>{dy.data(), m_arg.data(), dx.data(), m_in_shape[2],
                                                         m_in_shape[3], dy.dim(2), dy.dim(3), m_cfg.kernel,
                                                         m_cfg.stride, m_cfg.padding});
        }
        parameter_list<T, B> parameters() { return {}; }

    private:
        config m_cfg;
        tensor<T, B> m_y, m_dx;
        tensor<std::uint8_t, B> m_arg;
        shape m_in_shape{};
    };
};

static_assert(LayerSpec<max_pool2d>);
static_assert(Layer<max_pool2d::bind<cpu_serial>, cpu_serial>);

}  // namespace tessel::nn
