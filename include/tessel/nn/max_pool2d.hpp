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
// Work item = one output row of one plane (forward) or one input row (backward): the window's
// row range and the per-row index arithmetic are hoisted out of the pixel loop, which then runs
// without divisions (stride 1, Inception's case, has none at all).
template <class T>
struct max_pool_forward_fn {
    const T* x;
    T* y;
    std::uint8_t* arg;
    index_t H, W, OH, OW, k, s, p;
    TESSEL_HD void operator()(index_t r) const {
        const index_t plane = r / OH, oh = r % OH;
        const T* in = x + plane * H * W;
        T* out = y + r * OW;
        std::uint8_t* a = arg + r * OW;
        const index_t h0 = oh * s - p;
        const index_t kh0 = h0 < 0 ? -h0 : 0, kh1 = H - h0 < k ? H - h0 : k;
        for (index_t ow = 0; ow < OW; ++ow) {
            const index_t w0 = ow * s - p;
            const index_t kw0 = w0 < 0 ? -w0 : 0, kw1 = W - w0 < k ? W - w0 : k;
            bool any = false;
            index_t best_k = 0;
            T bv = T(0);
            for (index_t kh = kh0; kh < kh1; ++kh) {
                const T* row = in + (h0 + kh) * W + w0;
                for (index_t kw = kw0; kw < kw1; ++kw) {
                    const T v = row[kw];
                    if (!any || v > bv || v != v) {  // NaN propagates, as in PyTorch
                        any = true;
                        bv = v;
                        best_k = kh * k + kw;
                        if (v != v) break;
                    }
                }
            }
            out[ow] = bv;
            a[ow] = static_cast<std::uint8_t>(best_k);
        }
    }
};
template <class T>
struct max_pool_backward_fn {
    const T* dy;
    const std::uint8_t* arg;
    T* dx;
    index_t H, W, OH, OW, k, s, p;
    bool accumulate;  ///< dx += instead of dx = (pool_projection sums it onto other branches)
    TESSEL_HD void operator()(index_t r) const {
        const index_t plane = r / H, ih = r % H;
        const T* g = dy + plane * OH * OW;
        const std::uint8_t* a = arg + plane * OH * OW;
        T* out = dx + r * W;
        if (!accumulate)
            for (index_t iw = 0; iw < W; ++iw) out[iw] = T(0);
        for (index_t kh = 0; kh < k; ++kh) {
            const index_t th = ih + p - kh;
            if (th < 0 || th % s != 0 || th / s >= OH) continue;
            const index_t orow = (th / s) * OW;
            for (index_t iw = 0; iw < W; ++iw) {
                T acc = out[iw];
                for (index_t kw = 0; kw < k; ++kw) {
                    const index_t tw = iw + p - kw;
                    if (tw < 0) break;  // tw falls as kw grows
                    if (s == 1) {
                        if (tw < OW && a[orow + tw] == kh * k + kw) acc += g[orow + tw];
                    } else if (tw % s == 0 && tw / s < OW) {
                        const index_t o = orow + tw / s;
                        if (a[o] == kh * k + kw) acc += g[o];
                    }
                }
                out[iw] = acc;
            }
        }
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

        const tensor<T, B>& forward(context<B>& ctx, const tensor<T, B>& x) {
            forward_into(ctx, x, m_y);
            return m_y;
        }
        /// The output into y (see nn::ForwardsInto); backward reads only the window arg-max.
        void forward_into(context<B>&, const tensor<T, B>& x, tensor<T, B>& y) {
            constexpr const char* where = "tessel::nn::max_pool2d::forward";
            expects(x.rank() == 4, where, "expects an NCHW tensor, got shape ", x.shape().str());
            expects(x.numel() > 0, where, "empty input of shape ", x.shape().str());
            const index_t H = x.dim(2), W = x.dim(3), k = m_cfg.kernel, s = m_cfg.stride, p = m_cfg.padding;
            expects(H + 2 * p >= k && W + 2 * p >= k, where, "input ", x.shape().str(), " with padding ", p,
                    " is smaller than the kernel ", k);
            const index_t OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
            y.resize(shape{x.dim(0), x.dim(1), OH, OW});
            m_arg.resize(y.shape());
            parallel_for(B{}, x.dim(0) * x.dim(1) * OH,
                         detail::max_pool_forward_fn<T>{x.data(), y.data(), m_arg.data(), H, W, OH, OW, k, s, p});
            m_in_shape = x.shape();
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
            parallel_for(B{}, m_in_shape[0] * m_in_shape[1] * m_in_shape[2],
                         detail::max_pool_backward_fn<T>{dy.data(), m_arg.data(), dx.data(), m_in_shape[2],
                                                         m_in_shape[3], dy.dim(2), dy.dim(3), m_cfg.kernel,
                                                         m_cfg.stride, m_cfg.padding, false});
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
