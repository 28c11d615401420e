// tessel/nn/pool.hpp: average pooling over NCHW feature maps.
//
// avg_pool2d follows torch.nn.AvgPool2d: square kernel, stride (default = kernel), zero padding
// of at most half the kernel, ceil_mode, and count_include_pad (default true: padded zeros count
// in the divisor). PiCNet's multi-scale branch reduces inputs by 2x2 average pooling (METHODS.md
// §8.2). global_avg_pool reduces every channel to its mean, [N, C, H, W] -> [N, C, 1, 1].
// Both gather in backward (each input element sums the windows that contain it), so no atomics
// are needed and the result does not depend on the backend's thread count.
// Max pooling is in nn/max_pool2d.hpp.
#pragma once
#include "tessel/backend/parallel.hpp"
#include "tessel/nn/concepts.hpp"
#include "tessel/nn/detail/checks.hpp"

namespace tessel::nn {

namespace detail {

struct pool_geometry {
    index_t channels_times_batch, in_h, in_w, out_h, out_w;
    index_t kernel, stride, padding;
    bool count_include_pad;

    /// PyTorch's divisor: the window clipped to the padded input, or to the input proper when
    /// padding is not counted.
    TESSEL_HD index_t divisor(index_t oh, index_t ow) const {
        index_t hs = oh * stride - padding, ws = ow * stride - padding;
        index_t he = hs + kernel < in_h + padding ? hs + kernel : in_h + padding;
        index_t we = ws + kernel < in_w + padding ? ws + kernel : in_w + padding;
        if (count_include_pad) return (he - hs) * (we - ws);
        hs = hs > 0 ? hs : 0;
        ws = ws > 0 ? ws : 0;
        he = he < in_h ? he : in_h;
        we = we < in_w ? we : in_w;
        return (he - hs) * (we - ws);
    }
};

// One functor call per output (or input) row, not per element: the index arithmetic (divisions
// on 64-bit integers, window bounds, divisors) is paid once per row, and the inner loop over a
// row's columns is plain. PiCNet pools a 64-channel full-resolution map every iteration.
template <class T>
struct avg_pool_forward_fn {
    pool_geometry g;
    const T* x;
    T* y;
    TESSEL_HD void operator()(index_t row) const {  // row = plane * out_h + oh
        const index_t oh = row % g.out_h, plane = row / g.out_h;
        const T* xp = x + plane * g.in_h * g.in_w;
        T* yr = y + row * g.out_w;
        const index_t hs = oh * g.stride - g.padding;
        const index_t h0 = hs > 0 ? hs : 0, h1 = hs + g.kernel < g.in_h ? hs + g.kernel : g.in_h;
        for (index_t ow = 0; ow < g.out_w; ++ow) {
            const index_t ws = ow * g.stride - g.padding;
            const index_t w0 = ws > 0 ? ws : 0, w1 = ws + g.kernel < g.in_w ? ws + g.kernel : g.in_w;
            T sum = 0;
            for (index_t h = h0; h < h1; ++h)
                for (index_t w = w0; w < w1; ++w) sum += xp[h * g.in_w + w];
            yr[ow] = sum / static_cast<T>(g.divisor(oh, ow));
        }
    }
};

/// The output indices whose windows [o*stride - padding, o*stride - padding + kernel) contain i.
TESSEL_HD inline void windows_containing(index_t i, index_t kernel, index_t stride, index_t padding, index_t out,
                                         index_t& lo, index_t& hi) {
    const index_t first = i + padding - kernel + 1;  // o*stride >= first
    lo = first <= 0 ? 0 : (first + stride - 1) / stride;
    hi = (i + padding) / stride + 1;  // o*stride <= i + padding
    hi = hi < out ? hi : out;
}

/// Each input row is written by one call, which adds the share of every window over it in the
/// order (window row, window column) ascending: per element the same terms in the same order as a
/// gather, so no atomics and no dependence on the thread count.
template <class T>
struct avg_pool_backward_fn {
    pool_geometry g;
    const T* dy;
    T* dx;
    TESSEL_HD void operator()(index_t row) const {  // row = plane * in_h + ih
        const index_t ih = row % g.in_h, plane = row / g.in_h;
        const T* dyp = dy + plane * g.out_h * g.out_w;
        T* dxr = dx + row * g.in_w;
        for (index_t w = 0; w < g.in_w; ++w) dxr[w] = 0;
        index_t h0, h1;
        windows_containing(ih, g.kernel, g.stride, g.padding, g.out_h, h0, h1);
        for (index_t oh = h0; oh < h1; ++oh)
            for (index_t ow = 0; ow < g.out_w; ++ow) {
                const index_t ws = ow * g.stride - g.padding;
                const index_t w0 = ws > 0 ? ws : 0, w1 = ws + g.kernel < g.in_w ? ws + g.kernel : g.in_w;
                const T share = dyp[oh * g.out_w + ow] / static_cast<T>(g.divisor(oh, ow));
                for (index_t w = w0; w < w1; ++w) dxr[w] += share;
            }
    }
};

template <class T>
struct global_avg_forward_fn {
    index_t hw;
    const T* x;
    T* y;
    TESSEL_HD void operator()(index_t plane) const {
        const T* xp = x + plane * hw;
        T sum = 0;
        for (index_t k = 0; k < hw; ++k) sum += xp[k];
        y[plane] = sum / static_cast<T>(hw);
    }
};
template <class T>
struct global_avg_backward_fn {
    index_t hw;
    const T* dy;
    T* dx;
    TESSEL_HD void operator()(index_t i) const { dx[i] = dy[i / hw] / static_cast<T>(hw); }
};

}  // namespace detail

struct avg_pool2d {
    static constexpr const char* name = "tessel::nn::avg_pool2d";
    struct config {
        index_t kernel = 2;
        index_t stride = 0;   ///< 0: equal to kernel (PyTorch's stride=None)
        index_t padding = 0;  ///< zeros on every side; at most kernel / 2
        bool ceil_mode = false;
        bool count_include_pad = true;
    };

    /// Output extent along one axis, PyTorch's pooling_output_shape.
    static index_t output_size(index_t in, const config& cfg) {
        const index_t s = cfg.stride == 0 ? cfg.kernel : cfg.stride;
        const index_t span = in + 2 * cfg.padding - cfg.kernel + (cfg.ceil_mode ? s - 1 : 0);
        if (span < 0) return 0;
        index_t out = span / s + 1;
        if (cfg.ceil_mode && (out - 1) * s >= in + cfg.padding) --out;  // the last window must start inside
        return out;
    }

    template <Backend B, class T = float>
    class bind {
    public:
        bind() { m_cfg.stride = m_cfg.kernel; }
        bind(const config& cfg, rng&) : m_cfg(cfg) {
            expects(cfg.kernel > 0, name, "kernel must be positive, got ", cfg.kernel);
            expects(cfg.stride >= 0, name, "stride must be positive (or 0 for stride = kernel), got ", cfg.stride);
            expects(cfg.padding >= 0 && 2 * cfg.padding <= cfg.kernel, name,
                    "padding must lie in [0, kernel / 2], got padding ", cfg.padding, " for kernel ", cfg.kernel);
            if (m_cfg.stride == 0) m_cfg.stride = m_cfg.kernel;
        }

        const tensor<T, B>& forward(context<B>&, const tensor<T, B>& x) {
            detail::expect_nchw(name, x);
            m_in = x.shape();
            const index_t oh = output_size(x.dim(2), m_cfg), ow = output_size(x.dim(3), m_cfg);
            expects(oh > 0 && ow > 0, name, "input ", x.shape().str(), " is smaller than the kernel ", m_cfg.kernel,
                    " (padding ", m_cfg.padding, ")");
            m_y.resize(shape{x.dim(0), x.dim(1), oh, ow});
            parallel_for(B{}, m_y.numel() / m_y.dim(3), detail::avg_pool_forward_fn<T>{geometry(), x.data(), m_y.data()});
            return m_y;
        }
        const tensor<T, B>& backward(context<B>&, const tensor<T, B>& dy) {
            expects(!m_y.empty(), name, "backward called before forward");
            expect_same_shape(name, dy, m_y);
            m_dx.resize(m_in);
            parallel_for(B{}, m_dx.numel() / m_in[3], detail::avg_pool_backward_fn<T>{geometry(), dy.data(), m_dx.data()});
            return m_dx;
        }
        parameter_list<T, B> parameters() { return {}; }

    private:
        detail::pool_geometry geometry() const {
            return {m_in[0] * m_in[1], m_in[2], m_in[3], m_y.dim(2), m_y.dim(3),
                    m_cfg.kernel, m_cfg.stride, m_cfg.padding, m_cfg.count_include_pad};
        }
        config m_cfg{};
        shape m_in{};
        tensor<T, B> m_y, m_dx;
    };
};

struct global_avg_pool {
    static constexpr const char* name = "tessel::nn::global_avg_pool";
    struct config {};

    template <Backend B, class T = float>
    class bind {
    public:
        bind() = default;
        bind(const config&, rng&) {}

        const tensor<T, B>& forward(context<B>&, const tensor<T, B>& x) {
            detail::expect_nchw(name, x);
            m_in = x.shape();
            m_y.resize(shape{x.dim(0), x.dim(1), 1, 1});
            parallel_for(B{}, m_y.numel(), detail::global_avg_forward_fn<T>{x.dim(2) * x.dim(3), x.data(), m_y.data()});
            return m_y;
        }
        const tensor<T, B>& backward(context<B>&, const tensor<T, B>& dy) {
            expects(!m_y.empty(), name, "backward called before forward");
            expect_same_shape(name, dy, m_y);
            m_dx.resize(m_in);
            parallel_for(B{}, m_dx.numel(),
                         detail::global_avg_backward_fn<T>{m_in[2] * m_in[3], dy.data(), m_dx.data()});
            return m_dx;
        }
        parameter_list<T, B> parameters() { return {}; }

    private:
        shape m_in{};
        tensor<T, B> m_y, m_dx;
    };
};

static_assert(LayerSpec<avg_pool2d> && LayerSpec<global_avg_pool>);
static_assert(Layer<avg_pool2d::bind<cpu_serial>, cpu_serial>);

}  // namespace tessel::nn
