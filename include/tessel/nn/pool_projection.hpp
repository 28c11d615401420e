// tessel/nn/pool_projection.hpp: max pooling then a 1x1 convolution (Inception's pool branch),
// NCHW, never holding the pooled tensor.
//
// y = b + W maxpool(x), weights drawn exactly as nn::conv2d with kernel 1. Input channels are
// pooled in chunks (config::chunk_channels) into a small scratch buffer and multiplied by the
// matching columns of W; backward pools each chunk again. The pooled tensor of a 256-channel
// 481x321 input would be 158 MB for an 8-channel output. docs/nn_blocks.md.
#pragma once
#include <algorithm>
#include <cstdint>

#include "tessel/nn/concepts.hpp"
#include "tessel/nn/detail/channel_ops.hpp"
#include "tessel/nn/init.hpp"
#include "tessel/nn/max_pool2d.hpp"
#include "tessel/ops/gemm.hpp"

namespace tessel::nn {

namespace detail {
/// max_pool_forward_fn for stride 1 (any kernel and padding): one output row per work item, the
/// window visited in the same order with the same strict comparison (the first maximum wins, as
/// in PyTorch), but branch-free over the interior columns so that the compiler vectorises it.
/// A NaN in the window gives NaN (its position: the first NaN).
template <class T>
struct max_pool_s1_forward_fn {
    const T* x;
    T* y;
    std::uint8_t* arg;
    index_t H, W, OH, OW, k, p;
    TESSEL_HD static void visit(T v, index_t idx, T& bv, index_t& bk) {
        const bool take = v > bv || (v != v && bv == bv);
        bv = take ? v : bv;
        bk = take ? idx : bk;
    }
    TESSEL_HD void window(const T* in, index_t h0, index_t kh0, index_t kh1, index_t ow, T* out,
                          std::uint8_t* a) const {
        const index_t w0 = ow - p;
        const index_t kw0 = w0 < 0 ? -w0 : 0, kw1 = W - w0 < k ? W - w0 : k;
        T bv = in[(h0 + kh0) * W + w0 + kw0];
        index_t bk = kh0 * k + kw0;
        for (index_t kh = kh0; kh < kh1; ++kh)
            for (index_t kw = kw0; kw < kw1; ++kw) visit(in[(h0 + kh) * W + w0 + kw], kh * k + kw, bv, bk);
        out[ow] = bv;
        if (a != nullptr) a[ow] = static_cast<std::uint8_t>(bk);
    }
    TESSEL_HD void operator()(index_t r) const {
        const index_t plane = r / OH, oh = r % OH;
        const T* in = x + plane * H * W;
        T* out = y + r * OW;
        std::uint8_t* a = arg == nullptr ? nullptr : arg + r * OW;
        const index_t h0 = oh - p;
        const index_t kh0 = h0 < 0 ? -h0 : 0, kh1 = H - h0 < k ? H - h0 : k;
        // Columns whose window lies inside the row: ow - p >= 0 and ow - p + k <= W.
        const index_t lo = p < OW ? p : OW, hi = W - k + p + 1 < lo ? lo : (W - k + p + 1 > OW ? OW : W - k + p + 1);
        for (index_t ow = 0; ow < lo; ++ow) window(in, h0, kh0, kh1, ow, out, a);
        // The output row is the running maximum: one pass over it per window tap, so the
        // innermost loop runs along the row.
        const T* first = in + (h0 + kh0) * W - p;
        for (index_t ow = lo; ow < hi; ++ow) out[ow] = first[ow];
        if (arg == nullptr) {  // values only (forward): a pure float loop
            for (index_t kh = kh0; kh < kh1; ++kh)
                for (index_t kw = 0; kw < k; ++kw) {
                    const T* row = in + (h0 + kh) * W - p + kw;
                    for (index_t ow = lo; ow < hi; ++ow) {
                        const T v = row[ow], bv = out[ow];
                        out[ow] = v > bv || (v != v && bv == bv) ? v : bv;
                    }
                }
            for (index_t ow = hi; ow < OW; ++ow) window(in, h0, kh0, kh1, ow, out, nullptr);
            return;
        }
        for (index_t ow = lo; ow < hi; ++ow) a[ow] = static_cast<std::uint8_t>(kh0 * k);
        for (index_t kh = kh0; kh < kh1; ++kh)
            for (index_t kw = 0; kw < k; ++kw) {
                const T* row = in + (h0 + kh) * W - p + kw;
                const auto idx = static_cast<std::uint8_t>(kh * k + kw);
                for (index_t ow = lo; ow < hi; ++ow) {
                    const T v = row[ow], bv = out[ow];
                    const bool take = v > bv || (v != v && bv == bv);
                    out[ow] = take ? v : bv;
                    a[ow] = take ? idx : a[ow];
                }
            }
        for (index_t ow = hi; ow < OW; ++ow) window(in, h0, kh0, kh1, ow, out, a);
    }
};
/// The backward of max_pool_s1_forward_fn for one plane per work item: each output routes its
/// gradient to its window's arg-max (dx = or +=). A scatter, but within one plane, which one
/// thread owns: no races, and the order of the sums does not depend on the thread count.
template <class T>
struct max_pool_s1_backward_fn {
    const T* dy;
    const std::uint8_t* arg;
    T* dx;
    index_t H, W, OH, OW, k, p;
    bool accumulate;
    TESSEL_HD void operator()(index_t plane) const {
        T* out = dx + plane * H * W;
        if (!accumulate)
            for (index_t i = 0; i < H * W; ++i) out[i] = T(0);
        const T* g = dy + plane * OH * OW;
        const std::uint8_t* a = arg + plane * OH * OW;
        for (index_t oh = 0; oh < OH; ++oh)
            for (index_t ow = 0; ow < OW; ++ow) {
                const index_t o = oh * OW + ow, kh = a[o] / k, kw = a[o] - kh * k;
                out[(oh - p + kh) * W + (ow - p + kw)] += g[o];
            }
    }
};
}  // namespace detail

struct pool_projection {
    struct config {
        index_t in_channels = 0;
        index_t out_channels = 0;
        index_t kernel = 3;   ///< max pool window
        index_t stride = 1;   ///< max pool stride
        index_t padding = 1;  ///< max pool padding (at most kernel / 2), implicit -inf
        bool bias = true;
        init::scheme init = init::scheme::pytorch_default;
        index_t chunk_channels = 16;  ///< input channels pooled at a time
    };

    template <Backend B, class T = float>
    class bind {
    public:
        bind(const config& cfg, rng& init) : m_cfg(cfg) {
            constexpr const char* where = "tessel::nn::pool_projection";
            expects(cfg.in_channels > 0 && cfg.out_channels > 0, where, "channel counts must be positive, got in ",
                    cfg.in_channels, " and out ", cfg.out_channels);
            expects(cfg.kernel >= 1 && cfg.kernel * cfg.kernel <= 256, where,
                    "kernel must be in [1, 16] (arg-max stored in a byte), got ", cfg.kernel);
            expects(cfg.stride >= 1, where, "stride must be >= 1, got ", cfg.stride);
            expects(cfg.padding >= 0 && 2 * cfg.padding <= cfg.kernel, where, "padding must be in [0, kernel/2], got ",
                    cfg.padding, " for kernel ", cfg.kernel);
            expects(cfg.chunk_channels >= 1, where, "chunk_channels must be >= 1, got ", cfg.chunk_channels);
            init::weight_and_bias(m_w, m_dw, m_b, m_db, shape{cfg.out_channels, cfg.in_channels, 1, 1},
                                  cfg.out_channels, cfg.bias, cfg.in_channels, cfg.out_channels, cfg.init, init);
        }

        const tensor<T, B>& forward(context<B>& ctx, const tensor<T, B>& x) {
            forward_into(ctx, x, m_y);
            return m_y;
        }
        /// The output into y (see nn::ForwardsInto); backward reads x again, never y.
        void forward_into(context<B>& ctx, const tensor<T, B>& x, tensor<T, B>& y) {
            constexpr const char* where = "tessel::nn::pool_projection::forward";
            expects(x.rank() == 4, where, "expects an NCHW tensor, got shape ", x.shape().str());
            expects(x.numel() > 0, where, "empty input of shape ", x.shape().str());
            expects(x.dim(1) == m_cfg.in_channels, where, "input has ", x.dim(1), " channels, the block expects ",
                    m_cfg.in_channels, " (input shape ", x.shape().str(), ")");
            const index_t H = x.dim(2), W = x.dim(3), k = m_cfg.kernel, p = m_cfg.padding;
            expects(H + 2 * p >= k && W + 2 * p >= k, where, "input ", x.shape().str(), " with padding ", p,
                    " is smaller than the kernel ", k);
            m_oh = (H + 2 * p - k) / m_cfg.stride + 1;
            m_ow = (W + 2 * p - k) / m_cfg.stride + 1;
            const index_t N = x.dim(0), Co = m_cfg.out_channels, P = m_oh * m_ow;
            y.resize(shape{N, Co, m_oh, m_ow});
            if (m_cfg.bias) parallel_for(B{}, N * Co, detail::broadcast_bias_fn<T>{m_b.data(), y.data(), Co, P});
            else parallel_for(B{}, N * Co * P, zero_fn{y.data()});
            scratch_lease<T, B> pooled(ctx, chunk() * P);
            for (index_t n = 0; n < N; ++n)
                for (index_t c0 = 0; c0 < m_cfg.in_channels; c0 += chunk()) {
                    const index_t cs = std::min(chunk(), m_cfg.in_channels - c0);
                    pool_chunk(x, n, c0, cs, pooled.get(), false);
                    ops::gemm(B{}, ops::gemm_args<T>{.m = Co, .n = P, .k = cs, .a = m_w.data() + c0,
                                                     .lda = m_cfg.in_channels, .b = pooled.get().data(), .ldb = P,
                                                     .beta = T(1), .c = y.data() + n * Co * P, .ldc = P});
                }
            m_x = &x;
            m_in_shape = x.shape();
            m_y_shape = y.shape();
        }
        /// See conv2d::rebind_input.
        void rebind_input(const tensor<T, B>& x) {
            expects(m_x != nullptr && x.shape() == m_in_shape, "tessel::nn::pool_projection::rebind_input",
                    "needs a forward first and an input of the forward's shape, got ", x.shape().str());
            m_x = &x;
        }

        const tensor<T, B>& backward(context<B>& ctx, const tensor<T, B>& dy) {
            backward_into(ctx, dy, m_dx);
            return m_dx;
        }
        static constexpr bool overwritable_output = true;
        void backward_into(context<B>& ctx, const tensor<T, B>& dy, tensor<T, B>& dx) { backward_impl(ctx, dy, dx, false); }
        /// dx += the input gradient (dx must have the input's shape); see conv2d::backward_add_into.
        void backward_add_into(context<B>& ctx, const tensor<T, B>& dy, tensor<T, B>& dx) {
            expects(m_x != nullptr && (!m_input_grad || dx.shape() == m_x->shape()), "tessel::nn::pool_projection::backward_add_into",
                    "dx must have the input's shape, got ", dx.shape().str());
            backward_impl(ctx, dy, dx, true);
        }

        parameter_list<T, B> parameters() {
            parameter_list<T, B> p{{&m_w, &m_dw, "weight"}};
            if (m_cfg.bias) p.push_back({&m_b, &m_db, "bias"});
            return p;
        }
        void set_input_grad_needed(bool needed) noexcept { m_input_grad = needed; }
        [[nodiscard]] const config& cfg() const noexcept { return m_cfg; }
        tensor<T, B>& weight() noexcept { return m_w; }
        tensor<T, B>& bias() noexcept { return m_b; }

    private:
        struct zero_fn {
            T* p;
            TESSEL_HD void operator()(index_t i) const { p[i] = T(0); }
        };
        [[nodiscard]] index_t chunk() const noexcept { return std::min(m_cfg.chunk_channels, m_cfg.in_channels); }

        /// Channels [c0, c0 + cs) of image n of x, pooled into out (cs x OH x OW) and m_arg.
        void pool_chunk(const tensor<T, B>& x, index_t n, index_t c0, index_t cs, tensor<T, B>& out, bool with_arg) {
            const index_t H = x.dim(2), W = x.dim(3);
            out.resize(shape{cs, m_oh, m_ow});
            m_arg.resize(shape{cs, m_oh, m_ow});
            const T* src = x.data() + (n * m_cfg.in_channels + c0) * H * W;
            if (m_cfg.stride == 1)
                parallel_for(B{}, cs * m_oh,
                             detail::max_pool_s1_forward_fn<T>{src, out.data(), with_arg ? m_arg.data() : nullptr,
                                                               H, W, m_oh, m_ow,
                                                               m_cfg.kernel, m_cfg.padding});
            else
                parallel_for(B{}, cs * m_oh,
                             detail::max_pool_forward_fn<T>{src, out.data(), m_arg.data(), H, W, m_oh, m_ow,
                                                            m_cfg.kernel, m_cfg.stride, m_cfg.padding});
        }

        void backward_impl(context<B>& ctx, const tensor<T, B>& dy, tensor<T, B>& dx, bool accumulate) {
            constexpr const char* where = "tessel::nn::pool_projection::backward";
            expects(m_x != nullptr, where, "backward called before forward");
            expects(dy.shape() == m_y_shape, where, "output gradient of shape ", dy.shape().str(),
                    " does not match the forward output ", m_y_shape.str());
            const tensor<T, B>& x = *m_x;
            const index_t N = x.dim(0), Ci = m_cfg.in_channels, Co = m_cfg.out_channels, H = x.dim(2), W = x.dim(3);
            const index_t P = m_oh * m_ow;
            if (m_cfg.bias) parallel_for(B{}, Co, detail::channel_sum_fn<T>{dy.data(), m_db.data(), N, Co, P});
            if (m_input_grad && !accumulate) dx.resize(x.shape());
            scratch_lease<T, B> pooled(ctx, chunk() * P);
            for (index_t n = 0; n < N; ++n)
                for (index_t c0 = 0; c0 < Ci; c0 += chunk()) {
                    const index_t cs = std::min(chunk(), Ci - c0);
                    pool_chunk(x, n, c0, cs, pooled.get(), m_input_grad);
                    const T* g = dy.data() + n * Co * P;
                    // dW[:, c0:c0+cs] (+)= dy pooled^T
                    ops::gemm(B{}, ops::gemm_args<T>{.trans_b = ops::op::trans, .m = Co, .n = cs, .k = P, .a = g,
                                                     .lda = P, .b = pooled.get().data(), .ldb = P,
                                                     .beta = n == 0 ? T(0) : T(1), .c = m_dw.data() + c0, .ldc = Ci});
                    if (!m_input_grad) continue;
                    // The pooled chunk is spent: its buffer takes W[:, chunk]^T dy, which the
                    // window arg-max routes back to the input.
                    ops::gemm(B{}, ops::gemm_args<T>{.trans_a = ops::op::trans, .m = cs, .n = P, .k = Co,
                                                     .a = m_w.data() + c0, .lda = Ci, .b = g, .ldb = P, .beta = T(0),
                                                     .c = pooled.get().data(), .ldc = P});
                    T* to = dx.data() + (n * Ci + c0) * H * W;
                    if (m_cfg.stride == 1)
                        parallel_for(B{}, cs,
                                     detail::max_pool_s1_backward_fn<T>{pooled.get().data(), m_arg.data(), to, H, W,
                                                                        m_oh, m_ow, m_cfg.kernel, m_cfg.padding,
                                                                        accumulate});
                    else
                        parallel_for(B{}, cs * H,
                                     detail::max_pool_backward_fn<T>{pooled.get().data(), m_arg.data(), to, H, W, m_oh,
                                                                     m_ow, m_cfg.kernel, m_cfg.stride, m_cfg.padding,
                                                                     accumulate});
                }
        }

        config m_cfg;
        tensor<T, B> m_w, m_dw, m_b, m_db, m_y, m_dx;
        tensor<std::uint8_t, B> m_arg;  ///< arg-max of one chunk
        shape m_in_shape{}, m_y_shape{};
        index_t m_oh = 0, m_ow = 0;
        const tensor<T, B>* m_x = nullptr;
        bool m_input_grad = true;
    };
};

static_assert(LayerSpec<pool_projection>);
static_assert(Layer<pool_projection::bind<cpu_serial>, cpu_serial>);
static_assert(ForwardsInto<pool_projection::bind<cpu_serial>, cpu_serial>);

}  // namespace tessel::nn
