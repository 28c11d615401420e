// tessel/nn/detail/chain.hpp: the backward pass of a chain of layers (sequential, repeat) with
// gradient buffers lent by the context's scratch pool.
//
// Layer i (0 = first) writes its input gradient into `out` when i is even and into one scratch
// tensor when i is odd, so a chain of any length needs one borrowed buffer and no layer keeps
// its own: each layer's input never aliases its target. Layers without backward_into fall back
// to backward() and their own buffer; the result is copied to `out` only if that happens at i = 0.
#pragma once
#include "tessel/backend/parallel.hpp"
#include "tessel/nn/concepts.hpp"

namespace tessel::nn::detail {

template <class T>
struct copy_fn {
    const T* src;
    T* dst;
    TESSEL_HD void operator()(index_t i) const { dst[i] = src[i]; }
};

/// dst = src (resized).
template <class T, Backend B>
void copy_into(const tensor<T, B>& src, tensor<T, B>& dst) {
    dst.resize(src.shape());
    parallel_for(B{}, src.numel(), copy_fn<T>{src.data(), dst.data()});
}

/// One step of a chain's backward: layer `i` reads *cur and leaves its input gradient in *cur.
template <class T, Backend B>
class chain_backward {
public:
    chain_backward(context<B>& ctx, const tensor<T, B>& dy, tensor<T, B>& out) : m_ctx(ctx), m_cur(&dy), m_out(&out) {}
    ~chain_backward() {
        if (m_scratch) m_ctx.scratch.release(*m_scratch);
    }
    chain_backward(const chain_backward&) = delete;
    chain_backward& operator=(const chain_backward&) = delete;

    template <class L>
    void step(L& layer, index_t i) {
        if constexpr (BackwardsInto<L, B, T>) {
            tensor<T, B>& target = i % 2 == 0 ? *m_out : scratch();
            layer.backward_into(m_ctx, *m_cur, target);
            m_cur = &target;
        } else {
            m_cur = &layer.backward(m_ctx, *m_cur);
        }
    }
    context<B>& ctx() noexcept { return m_ctx; }
    /// Makes sure the result is in `out` (after step(first layer, 0)).
    void finish(bool produced) {
        if (produced && m_cur != m_out) copy_into(*m_cur, *m_out);
    }

private:
    tensor<T, B>& scratch() {
        // Sized by the gradient in hand: neighbouring layers' gradients are of similar size.
        if (!m_scratch) m_scratch = &m_ctx.scratch.template acquire<T>(m_cur->numel());
        return *m_scratch;
    }
    context<B>& m_ctx;
    const tensor<T, B>* m_cur;
    tensor<T, B>* m_out;
    tensor<T, B>* m_scratch = nullptr;
};

}  // namespace tessel::nn::detail
