// tessel/nn/upsample.hpp: nearest and bilinear resizing of NCHW maps, as torch.nn.Upsample.
//
// PiCNet fuses a half-resolution branch back at full resolution by bilinear upsampling
// (METHODS.md §8.2). Sizes come from a scale factor (out = floor(in * scale)) or are given.
// Source coordinates follow PyTorch (align_corners = false):
//   nearest:  src = min(floor(dst * r), in - 1), computed in float as PyTorch does;
//   bilinear: src = max(r * (dst + 0.5) - 0.5, 0), blending floor(src) and its right neighbour;
// with r = 1 / scale_factor when a scale factor is given (PyTorch's default), or in / out when
// the output size is given or recompute_scale_factor is set. Both modes are separable: per-axis
// tables of (two source indices, two weights) are built on the host once per input shape, and
// backward gathers over the contiguous range of outputs that read each input (no atomics).
#pragma once
#include <cmath>
#include <vector>

#include "tessel/backend/parallel.hpp"
#include "tessel/nn/concepts.hpp"
#include "tessel/nn/detail/checks.hpp"

namespace tessel::nn {

enum class upsample_mode { nearest, bilinear };

namespace detail {

/// One axis of a separable resize, as raw pointers into the layer's tables.
///   out: src0[o], src1[o] with weights w0[o], w1[o];   in: outputs [lo[i], hi[i]) read input i.
template <class T>
struct resize_axis {
    index_t in, out;
    const index_t* src0;
    const index_t* src1;
    const index_t* lo;
    const index_t* hi;
    const T* w0;
    const T* w1;
    /// The weight with which output o reads input i.
    TESSEL_HD T weight(index_t o, index_t i) const {
        return (src0[o] == i ? w0[o] : T(0)) + (src1[o] == i ? w1[o] : T(0));
    }
};

// One functor call per row (of the output in forward, of the input in backward): the plane and
// row indices and the row's vertical taps are found once per row, not once per element.
template <class T>
struct resize_forward_fn {
    resize_axis<T> ay, ax;
    bool nearest;
    const T* x;
    T* y;
    TESSEL_HD void operator()(index_t row) const {  // row = plane * out_h + oy
        const index_t oy = row % ay.out, plane = row / ay.out;
        const T* xp = x + plane * ay.in * ax.in;
        const T* x0 = xp + ay.src0[oy] * ax.in;
        const T* x1 = xp + ay.src1[oy] * ax.in;
        T* yr = y + row * ax.out;
        if (nearest) {
            for (index_t ox = 0; ox < ax.out; ++ox) yr[ox] = x0[ax.src0[ox]];
            return;
        }
        const T wy0 = ay.w0[oy], wy1 = ay.w1[oy];
        for (index_t ox = 0; ox < ax.out; ++ox) {  // PyTorch's order of operations
            const index_t c0 = ax.src0[ox], c1 = ax.src1[ox];
            yr[ox] = wy0 * (ax.w0[ox] * x0[c0] + ax.w1[ox] * x0[c1]) + wy1 * (ax.w0[ox] * x1[c0] + ax.w1[ox] * x1[c1]);
        }
    }
};

template <class T>
struct resize_backward_fn {
    resize_axis<T> ay, ax;
    const T* dy;
    T* dx;
    TESSEL_HD void operator()(index_t row) const {  // row = plane * in_h + iy
        const index_t iy = row % ay.in, plane = row / ay.in;
        const T* dyp = dy + plane * ay.out * ax.out;
        T* dxr = dx + row * ax.in;
        for (index_t ix = 0; ix < ax.in; ++ix) dxr[ix] = 0;
        for (index_t oy = ay.lo[iy]; oy < ay.hi[iy]; ++oy) {
            const T wy = ay.weight(oy, iy);
            if (wy == T(0)) continue;
            const T* dyr = dyp + oy * ax.out;
            for (index_t ix = 0; ix < ax.in; ++ix) {
                T acc = 0;
                for (index_t ox = ax.lo[ix]; ox < ax.hi[ix]; ++ox) acc += ax.weight(ox, ix) * dyr[ox];
                dxr[ix] += wy * acc;
            }
        }
    }
};

}  // namespace detail

struct upsample {
    static constexpr const char* name = "tessel::nn::upsample";
    struct config {
        upsample_mode mode = upsample_mode::nearest;
        double scale_factor = 0;  ///< > 0: out = floor(in * scale_factor) on both axes
        index_t output_h = 0;     ///< > 0 (with output_w): a fixed output size instead
        index_t output_w = 0;
        /// With a scale factor, map coordinates by in / out rather than 1 / scale_factor
        /// (torch's recompute_scale_factor=True); the two differ only for non-integer products.
        bool recompute_scale_factor = false;
    };

    /// The output extent of an axis of extent `in`.
    static index_t output_size(index_t in, index_t fixed, const config& cfg) {
        if (fixed > 0) return fixed;
        return static_cast<index_t>(std::floor(static_cast<double>(in) * cfg.scale_factor));
    }

    template <Backend B, class T = float>
    class bind {
    public:
        bind() : m_cfg{.scale_factor = 2} {}
        bind(const config& cfg, rng&) : m_cfg(cfg) {
            const bool by_size = cfg.output_h != 0 || cfg.output_w != 0;
            const bool by_scale = cfg.scale_factor != 0;
            expects(by_size != by_scale, name, "give exactly one of scale_factor (got ", cfg.scale_factor,
                    ") and output_h/output_w (got ", cfg.output_h, " x ", cfg.output_w, ")");
            if (by_scale)
                expects(std::isfinite(cfg.scale_factor) && cfg.scale_factor > 0, name,
                        "scale_factor must be positive and finite, got ", cfg.scale_factor);
            else
                expects(cfg.output_h > 0 && cfg.output_w > 0, name, "output size must be positive, got ",
                        cfg.output_h, " x ", cfg.output_w);
        }

        const tensor<T, B>& forward(context<B>& ctx, const tensor<T, B>& x) {
            detail::expect_nchw(name, x);
            const index_t oh = output_size(x.dim(2), m_cfg.output_h, m_cfg);
            const index_t ow = output_size(x.dim(3), m_cfg.output_w, m_cfg);
            expects(oh > 0 && ow > 0, name, "scale_factor ", m_cfg.scale_factor, " gives an empty output (",
                    oh, " x ", ow, ") for input ", x.shape().str());
            if (!(x.shape() == m_in) || m_out[2] != oh || m_out[3] != ow)
                build_tables(x.dim(2), x.dim(3), oh, ow);
            m_in = x.shape();
            m_out = shape{x.dim(0), x.dim(1), oh, ow};
            if (m_released) ctx.scratch.take(m_y, m_out.numel());  // the memory lent in discard_output
            m_released = false;
            m_y.resize(m_out);
            parallel_for(B{}, m_y.numel() / ow,
                         detail::resize_forward_fn<T>{axis(0), axis(1), m_cfg.mode == upsample_mode::nearest,
                                                      x.data(), m_y.data()});
            return m_y;
        }
        /// Gives the output's memory back to ctx.scratch once the caller has read it: backward
        /// needs only the shapes and the tables, and the next forward takes the memory back.
        /// PiCNet copies its 64-channel full-resolution upsampling into a concatenation and
        /// discards it: 40 MB at 481 x 321. Not nn::ReleasesOutput (the output is not rebuilt:
        /// its input may itself be released by then), so sequential never calls it.
        void discard_output(context<B>& ctx) {
            if (m_released || m_y.numel() == 0) return;
            ctx.scratch.donate(m_y);
            m_released = true;
        }
        const tensor<T, B>& backward(context<B>&, const tensor<T, B>& dy) {
            expects(m_out.rank == 4, name, "backward called before forward");
            expects(dy.shape() == m_out, name, "gradient shape ", dy.shape().str(), " differs from the output shape ",
                    m_out.str());
            m_dx.resize(m_in);
            parallel_for(B{}, m_dx.numel() / m_in[3], detail::resize_backward_fn<T>{axis(0), axis(1), dy.data(), m_dx.data()});
            return m_dx;
        }
        parameter_list<T, B> parameters() { return {}; }

    private:
        // Per axis a: m_index[a] = [src0 (out), src1 (out), lo (in), hi (in)], m_weight[a] = [w0, w1].
        void build_tables(index_t in_h, index_t in_w, index_t out_h, index_t out_w) {
            build_axis(0, in_h, out_h);
            build_axis(1, in_w, out_w);
        }
        void build_axis(int a, index_t in, index_t out) {
            const auto n_out = static_cast<std::size_t>(out), n_in = static_cast<std::size_t>(in);
            std::vector<index_t> idx(2 * n_out + 2 * n_in, 0);
            std::vector<T> w(2 * n_out, T(0));
            const bool use_scale = m_cfg.scale_factor > 0 && !m_cfg.recompute_scale_factor;
            for (std::size_t o = 0; o < n_out; ++o) {
                index_t s0 = 0, s1 = 0;
                T w0 = 1, w1 = 0;
                if (m_cfg.mode == upsample_mode::nearest) {
                    // PyTorch's nearest_idx, including its float arithmetic and shortcuts.
                    if (out == in) {
                        s0 = static_cast<index_t>(o);
                    } else if (out == 2 * in) {
                        s0 = static_cast<index_t>(o) >> 1;
                    } else {
                        const float r = use_scale ? static_cast<float>(1.0 / m_cfg.scale_factor)
                                                  : static_cast<float>(in) / static_cast<float>(out);
                        const auto f = static_cast<index_t>(std::floor(static_cast<float>(o) * r));
                        s0 = f < in - 1 ? f : in - 1;
                    }
                    s1 = s0;
                } else {
                    // PyTorch's area_pixel_compute_source_index (align_corners = false), in T.
                    const T r = use_scale ? static_cast<T>(1.0 / m_cfg.scale_factor)
                                          : static_cast<T>(in) / static_cast<T>(out);
                    T src = r * (static_cast<T>(o) + T(0.5)) - T(0.5);
                    if (src < T(0)) src = T(0);
                    s0 = static_cast<index_t>(src);
                    if (s0 > in - 1) s0 = in - 1;
                    s1 = s0 + (s0 < in - 1 ? 1 : 0);
                    T l1 = src - static_cast<T>(s0);
                    l1 = l1 < T(0) ? T(0) : (l1 > T(1) ? T(1) : l1);
                    w1 = l1;
                    w0 = T(1) - l1;
                }
                idx[o] = s0;
                idx[n_out + o] = s1;
                w[o] = w0;
                w[n_out + o] = w1;
            }
            // Inverse map: the outputs reading input i form a contiguous range because the source
            // indices never decrease along the output axis.
            index_t* lo = idx.data() + 2 * n_out;
            index_t* hi = lo + n_in;
            for (std::size_t i = 0; i < n_in; ++i) lo[i] = out;
            for (std::size_t o = 0; o < n_out; ++o)
                for (index_t s : {idx[o], idx[n_out + o]}) {
                    lo[s] = lo[s] < static_cast<index_t>(o) ? lo[s] : static_cast<index_t>(o);
                    hi[s] = hi[s] > static_cast<index_t>(o) + 1 ? hi[s] : static_cast<index_t>(o) + 1;
                }
            for (std::size_t i = 0; i < n_in; ++i)
                if (lo[i] > hi[i]) lo[i] = hi[i] = 0;  // read by no output
            m_index[a].assign(shape{static_cast<index_t>(idx.size())}, idx.begin(), idx.end());
            m_weight[a].assign(shape{static_cast<index_t>(w.size())}, w.begin(), w.end());
            m_extent[a][0] = in;
            m_extent[a][1] = out;
        }
        detail::resize_axis<T> axis(int a) const {
            const index_t in = m_extent[a][0], out = m_extent[a][1];
            const index_t* p = m_index[a].data();
            return {in, out, p, p + out, p + 2 * out, p + 2 * out + in, m_weight[a].data(), m_weight[a].data() + out};
        }

        config m_cfg{};
        shape m_in{}, m_out{};
        bool m_released = false;  ///< m_y's memory is lent to ctx.scratch (discard_output)
        index_t m_extent[2][2]{};
        tensor<index_t, B> m_index[2];
        tensor<T, B> m_weight[2];
        tensor<T, B> m_y, m_dx;
    };
};

static_assert(LayerSpec<upsample>);
static_assert(Layer<upsample::bind<cpu_serial>, cpu_serial>);
static_assert(!ReleasesOutput<upsample::bind<cpu_serial>, cpu_serial>);

}  // namespace tessel::nn
