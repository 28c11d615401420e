// tessel/nn/inception.hpp: the Inception block of Azad & Hamid 2025 (METHODS.md §4.1), NCHW.
//
// Four parallel branches over the same input, concatenated along channels in the order
//   (a) 1x1;  (b) 1x1 then 3x3 (pad 1);  (c) 1x1 then 5x5 (pad 2);  (d) 3x3 max pool (stride 1,
//   pad 1) then 1x1,
// where every conv unit is conv -> batch_norm -> relu. Spatial size is preserved. Branch widths are
// config values (the paper's "3a" block: 160; 96, 64; 16, 16; 16). Backward splits the output
// gradient by channel slices and sums the four branches' input gradients.
// Memory: each branch ends in batch_norm, whose output goes to one borrowed scratch buffer
// (forward_into) and from there through the branch's final ReLU straight into its slice of the
// concatenation; backward applies that ReLU's mask (concatenated output > 0) while slicing dy. So
// the branch outputs are held once, in the concatenation, and the final ReLUs keep no buffer.
#pragma once
#include "tessel/nn/batch_norm.hpp"
#include "tessel/nn/conv2d.hpp"
#include "tessel/nn/detail/channel_ops.hpp"
#include "tessel/nn/max_pool2d.hpp"
#include "tessel/nn/relu.hpp"
#include "tessel/nn/sequential.hpp"

namespace tessel::nn {

namespace detail {
/// Channels [0, cs) of src (N x cs x plane) through max(., 0) into channels [c0, c0 + cs) of
/// dst (N x cd x plane); work item = one (n, c) plane.
template <class T>
struct relu_into_slice_fn {
    const T* src;
    T* dst;
    index_t cs, cd, c0, plane;
    TESSEL_HD void operator()(index_t r) const {
        const index_t n = r / cs, c = r % cs;
        const T* from = src + (n * cs + c) * plane;
        T* to = dst + (n * cd + c0 + c) * plane;
        for (index_t i = 0; i < plane; ++i) to[i] = from[i] > T(0) ? from[i] : T(0);
    }
};
/// The ReLU backward of one branch: dst (N x cs x plane) = dy where y > 0, else 0, reading
/// channels [c0, c0 + cs) of dy and y (N x cd x plane).
template <class T>
struct relu_grad_from_slice_fn {
    const T* dy;
    const T* y;
    T* dst;
    index_t cs, cd, c0, plane;
    TESSEL_HD void operator()(index_t r) const {
        const index_t n = r / cs, c = r % cs, big = (n * cd + c0 + c) * plane;
        const T* g = dy + big;
        const T* v = y + big;
        T* to = dst + (n * cs + c) * plane;
        for (index_t i = 0; i < plane; ++i) to[i] = v[i] > T(0) ? g[i] : T(0);
    }
};
template <class T>
struct add_fn {  // out += a
    const T* a;
    T* out;
    TESSEL_HD void operator()(index_t i) const { out[i] = out[i] + a[i]; }
};
template <class T>
struct add_sum_fn {  // out += (a + b)
    const T *a, *b;
    T* out;
    TESSEL_HD void operator()(index_t i) const { out[i] = out[i] + (a[i] + b[i]); }
};
}  // namespace detail

struct inception {
    struct config {
        index_t in_channels = 0;
        index_t branch1 = 0;          ///< (a) 1x1 width
        index_t branch2_reduce = 0;   ///< (b) 1x1 width before the 3x3
        index_t branch2 = 0;          ///< (b) 3x3 width
        index_t branch3_reduce = 0;   ///< (c) 1x1 width before the 5x5
        index_t branch3 = 0;          ///< (c) 5x5 width
        index_t branch4 = 0;          ///< (d) 1x1 width after the pool
        init::scheme init = init::scheme::pytorch_default;

        [[nodiscard]] index_t out_channels() const { return branch1 + branch2 + branch3 + branch4; }
    };

    // The branches without their final ReLU, which the block applies on the way into the
    // concatenation.
    using unit1 = sequential<conv2d, batch_norm>;
    using unit2 = sequential<conv2d, batch_norm, relu, conv2d, batch_norm>;
    using unit_pool = sequential<max_pool2d, conv2d, batch_norm>;

    template <Backend B, class T = float>
    class bind {
    public:
        bind(const config& cfg, rng& init)
            : m_cfg(checked(cfg)),
              m_a(unit1::config{conv(cfg.in_channels, cfg.branch1, 1, cfg), {.channels = cfg.branch1}}, init),
              m_b(unit2::config{conv(cfg.in_channels, cfg.branch2_reduce, 1, cfg), {.channels = cfg.branch2_reduce}, {},
                                conv(cfg.branch2_reduce, cfg.branch2, 3, cfg), {.channels = cfg.branch2}},
                  init),
              m_c(unit2::config{conv(cfg.in_channels, cfg.branch3_reduce, 1, cfg), {.channels = cfg.branch3_reduce}, {},
                                conv(cfg.branch3_reduce, cfg.branch3, 5, cfg), {.channels = cfg.branch3}},
                  init),
              m_d(unit_pool::config{{.kernel = 3, .stride = 1, .padding = 1}, conv(cfg.in_channels, cfg.branch4, 1, cfg),
                                    {.channels = cfg.branch4}},
                  init) {}

        const tensor<T, B>& forward(context<B>& ctx, const tensor<T, B>& x) {
            constexpr const char* where = "tessel::nn::inception::forward";
            expects(x.rank() == 4, where, "expects an NCHW tensor, got shape ", x.shape().str());
            expects(x.numel() > 0, where, "empty input of shape ", x.shape().str());
            expects(x.dim(1) == m_cfg.in_channels, where, "input has ", x.dim(1), " channels, the block expects ",
                    m_cfg.in_channels, " (input shape ", x.shape().str(), ")");
            const index_t N = x.dim(0), P = x.dim(2) * x.dim(3), C = m_cfg.out_channels();
            m_y.resize(shape{N, C, x.dim(2), x.dim(3)});
            scratch_lease<T, B> part(ctx);
            index_t c0 = 0;
            auto put = [&](auto& branch) {
                branch.forward_into(ctx, x, part.get());
                const index_t cs = part.get().dim(1);
                parallel_for(B{}, N * cs, detail::relu_into_slice_fn<T>{part.get().data(), m_y.data(), cs, C, c0, P});
                c0 += cs;
            };
            put(m_a);
            put(m_b);
            put(m_c);
            put(m_d);
            return m_y;
        }

        const tensor<T, B>& backward(context<B>& ctx, const tensor<T, B>& dy) {
            backward_into(ctx, dy, m_dx);
            return m_dx;
        }
        /// Backward reads the concatenated output (the branches' ReLU masks); every value is >= 0.
        static constexpr bool nonnegative_output = true;
        /// Each branch gets its slice of dy in one borrowed buffer; the branches' input gradients
        /// land in dx and two borrowed buffers and are summed as (a + b) + (c + d).
        void backward_into(context<B>& ctx, const tensor<T, B>& dy, tensor<T, B>& dx) {
            constexpr const char* where = "tessel::nn::inception::backward";
            expect_same_shape(where, dy, m_y);
            const index_t N = dy.dim(0), P = dy.dim(2) * dy.dim(3), C = m_cfg.out_channels();
            scratch_lease<T, B> slice(ctx), t1(ctx);
            index_t c0 = 0;
            auto take = [&](index_t cs) -> const tensor<T, B>& {
                tensor<T, B>& part = slice.get();
                part.resize(shape{N, cs, dy.dim(2), dy.dim(3)});
                parallel_for(B{}, N * cs,
                             detail::relu_grad_from_slice_fn<T>{dy.data(), m_y.data(), part.data(), cs, C, c0, P});
                c0 += cs;
                return part;
            };
            m_a.backward_into(ctx, take(m_cfg.branch1), dx);
            m_b.backward_into(ctx, take(m_cfg.branch2), t1.get());
            if (m_input_grad)
                parallel_for(B{}, dx.numel(), detail::add_fn<T>{t1.get().data(), dx.data()});
            scratch_lease<T, B> t2(ctx);
            m_c.backward_into(ctx, take(m_cfg.branch3), t1.get());
            m_d.backward_into(ctx, take(m_cfg.branch4), t2.get());
            if (m_input_grad)
                parallel_for(B{}, dx.numel(), detail::add_sum_fn<T>{t1.get().data(), t2.get().data(), dx.data()});
        }

        parameter_list<T, B> parameters() {
            parameter_list<T, B> all;
            append_parameters(all, m_a.parameters());
            append_parameters(all, m_b.parameters());
            append_parameters(all, m_c.parameters());
            append_parameters(all, m_d.parameters());
            return all;
        }
        buffer_list<T, B> buffers() {
            buffer_list<T, B> all;
            append_buffers(all, buffers_of<T, B>(m_a));
            append_buffers(all, buffers_of<T, B>(m_b));
            append_buffers(all, buffers_of<T, B>(m_c));
            append_buffers(all, buffers_of<T, B>(m_d));
            return all;
        }
        void set_input_grad_needed(bool needed) {
            m_input_grad = needed;
            m_a.set_input_grad_needed(needed);
            m_b.set_input_grad_needed(needed);
            m_c.set_input_grad_needed(needed);
        }

    private:
        static const config& checked(const config& c) {
            constexpr const char* where = "tessel::nn::inception";
            expects(c.in_channels > 0 && c.branch1 > 0 && c.branch2_reduce > 0 && c.branch2 > 0 &&
                        c.branch3_reduce > 0 && c.branch3 > 0 && c.branch4 > 0,
                    where, "every channel count must be positive, got in_channels=", c.in_channels,
                    " branch1=", c.branch1, " branch2_reduce=", c.branch2_reduce, " branch2=", c.branch2,
                    " branch3_reduce=", c.branch3_reduce, " branch3=", c.branch3, " branch4=", c.branch4);
            return c;
        }
        static conv2d::config conv(index_t in, index_t out, index_t k, const config& c) {
            return {.in_channels = in, .out_channels = out, .kernel = k, .padding = k / 2, .init = c.init};
        }

        config m_cfg;
        typename unit1::template bind<B, T> m_a;
        typename unit2::template bind<B, T> m_b, m_c;
        typename unit_pool::template bind<B, T> m_d;
        tensor<T, B> m_y, m_dx;
        bool m_input_grad = true;
    };
};

static_assert(LayerSpec<inception>);
static_assert(Layer<inception::bind<cpu_serial>, cpu_serial>);

}  // namespace tessel::nn
