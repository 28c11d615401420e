// tessel/nn/relu.hpp: the rectified linear unit, y = max(x, 0).
//
// Also the reference for how a block is written: a backend-free spec with an aggregate config,
// a bound layer bind<B, T> with forward/backward reusing its buffers, and TESSEL_HD functors run
// through parallel_for so the same loop serves cpu_serial, cpu_omp and cuda.
#pragma once
#include "tessel/backend/parallel.hpp"
#include "tessel/nn/concepts.hpp"

namespace tessel::nn {

namespace detail {
template <class T>
struct relu_forward_fn {
    const T* x;
    T* y;
    TESSEL_HD void operator()(index_t i) const { y[i] = x[i] > T(0) ? x[i] : T(0); }
};
template <class T>
struct relu_backward_fn {
    const T* y;
    const T* dy;
    T* dx;
    // The gradient at exactly 0 is taken as 0, as PyTorch does.
    TESSEL_HD void operator()(index_t i) const { dx[i] = y[i] > T(0) ? dy[i] : T(0); }
};
}  // namespace detail

struct relu {
    struct config {};

    template <Backend B, class T = float>
    class bind {
    public:
        bind() = default;
        bind(const config&, rng&) {}

        const tensor<T, B>& forward(context<B>&, const tensor<T, B>& x) {
            m_y.resize(x.shape());
            parallel_for(B{}, x.numel(), detail::relu_forward_fn<T>{x.data(), m_y.data()});
            m_out = &m_y;
            return m_y;
        }
        static constexpr bool identity_on_nonnegative = true;
        /// y = max(x, 0) over x itself; backward then reads x (see nn::InPlace).
        void forward_inplace(context<B>&, tensor<T, B>& x) {
            parallel_for(B{}, x.numel(), detail::relu_forward_fn<T>{x.data(), x.data()});
            m_out = &x;
        }
        const tensor<T, B>& backward(context<B>& ctx, const tensor<T, B>& dy) {
            backward_into(ctx, dy, m_dx);
            return m_dx;
        }
        void backward_into(context<B>&, const tensor<T, B>& dy, tensor<T, B>& dx) {
            expects(m_out != nullptr, "tessel::nn::relu::backward", "backward called before forward");
            expect_same_shape("tessel::nn::relu::backward", dy, *m_out);
            dx.resize(dy.shape());
            parallel_for(B{}, dy.numel(), detail::relu_backward_fn<T>{m_out->data(), dy.data(), dx.data()});
        }
        parameter_list<T, B> parameters() { return {}; }

    private:
        tensor<T, B> m_y, m_dx;
        const tensor<T, B>* m_out = nullptr;
    };
};

static_assert(LayerSpec<relu>);
static_assert(Layer<relu::bind<cpu_serial>, cpu_serial>);
static_assert(InPlace<relu::bind<cpu_serial>, cpu_serial> && BackwardsInto<relu::bind<cpu_serial>, cpu_serial>);

}  // namespace tessel::nn
