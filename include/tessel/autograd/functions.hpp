// tessel/autograd/functions.hpp: the basic differentiable ops recorded on a tape.
//
// add, sub, mul (elementwise, equal shapes, no broadcasting), scale by a constant, sum and mean
// (to a rank-0 scalar), matmul ([M,K] x [K,N]), relu, tanh and reshape. Each is an
// autograd::function written in the allocation-free form: forward fills the tape's recycled
// output buffer and backward writes straight into the input gradients, with the loop bodies as
// TESSEL_HD functors run by parallel_for. Operators on vars (a + b, a - b, a * b, s * a, -a) call
// these. Reductions accumulate in double.
#pragma once
#include <cmath>
#include <string_view>

#include "tessel/autograd/tape.hpp"

namespace tessel::autograd {

namespace detail {
template <class T>
struct add_fn {
    const T *a, *b;
    T* y;
    T sign_b;  // +1 for add, -1 for sub
    TESSEL_HD void operator()(index_t i) const { y[i] = a[i] + sign_b * b[i]; }
};
template <class T>
struct scaled_grad_fn {  // dx += s * dy
    grad_target<T> dx;
    const T* dy;
    T s;
    TESSEL_HD void operator()(index_t i) const { dx.write(i, s * dy[i]); }
};
template <class T>
struct mul_fn {
    const T *a, *b;
    T* y;
    TESSEL_HD void operator()(index_t i) const { y[i] = a[i] * b[i]; }
};
template <class T>
struct mul_grad_fn {  // dx += dy * other
    grad_target<T> dx;
    const T* dy;
    const T* other;
    TESSEL_HD void operator()(index_t i) const { dx.write(i, dy[i] * other[i]); }
};
template <class T>
struct scale_fn {
    const T* a;
    T* y;
    T s;
    TESSEL_HD void operator()(index_t i) const { y[i] = s * a[i]; }
};
template <class T>
struct as_double_fn {
    const T* a;
    TESSEL_HD double operator()(index_t i) const { return static_cast<double>(a[i]); }
};
template <class T>
struct broadcast_grad_fn {  // dx += s * dy[0]; dy read in the loop so it may live on a device
    grad_target<T> dx;
    const T* dy;
    T s;
    TESSEL_HD void operator()(index_t i) const { dx.write(i, s * dy[0]); }
};
template <class T>
struct matmul_fn {  // y[m,n] = sum_k a[m,k] b[k,n]
    const T *a, *b;
    T* y;
    index_t K, N;
    TESSEL_HD void operator()(index_t i) const {
        const index_t m = i / N, n = i % N;
        T s = 0;
        for (index_t k = 0; k < K; ++k) s += a[m * K + k] * b[k * N + n];
        y[i] = s;
    }
};
template <class T>
struct matmul_grad_a_fn {  // da[m,k] = sum_n dy[m,n] b[k,n]
    grad_target<T> da;
    const T *dy, *b;
    index_t K, N;
    TESSEL_HD void operator()(index_t i) const {
        const index_t m = i / K, k = i % K;
        T s = 0;
        for (index_t n = 0; n < N; ++n) s += dy[m * N + n] * b[k * N + n];
        da.write(i, s);
    }
};
template <class T>
struct matmul_grad_b_fn {  // db[k,n] = sum_m a[m,k] dy[m,n]
    grad_target<T> db;
    const T *a, *dy;
    index_t M, K, N;
    TESSEL_HD void operator()(index_t i) const {
        const index_t k = i / N, n = i % N;
        T s = 0;
        for (index_t m = 0; m < M; ++m) s += a[m * K + k] * dy[m * N + n];
        db.write(i, s);
    }
};
template <class T>
struct relu_fn {
    const T* a;
    T* y;
    TESSEL_HD void operator()(index_t i) const { y[i] = a[i] > T(0) ? a[i] : T(0); }
};
template <class T>
struct relu_grad_fn {  // gradient 0 at exactly 0, as PyTorch
    grad_target<T> dx;
    const T *y, *dy;
    TESSEL_HD void operator()(index_t i) const { dx.write(i, y[i] > T(0) ? dy[i] : T(0)); }
};
template <class T>
struct tanh_fn {
    const T* a;
    T* y;
    TESSEL_HD void operator()(index_t i) const { y[i] = std::tanh(a[i]); }
};
template <class T>
struct tanh_grad_fn {
    grad_target<T> dx;
    const T *y, *dy;
    TESSEL_HD void operator()(index_t i) const { dx.write(i, dy[i] * (T(1) - y[i] * y[i])); }
};
template <class T>
struct copy_fn {
    const T* a;
    T* y;
    TESSEL_HD void operator()(index_t i) const { y[i] = a[i]; }
};

template <class T, class B>
void write_scalar(tensor<T, B>& out, double v) {
    out.resize(shape{});
    parallel_for(B{}, 1, fill_fn<T>{out.data(), static_cast<T>(v)});
}
}  // namespace detail

/// Elementwise a + b (or a - b with sign -1); shapes must be equal.
template <int Sign>
struct add_op : function<add_op<Sign>> {
    static constexpr std::string_view name = Sign > 0 ? "tessel::autograd::add" : "tessel::autograd::sub";
    template <class B, class T>
    static void forward(function_context<B, T>&, tensor<T, B>& y, const tensor<T, B>& a, const tensor<T, B>& b) {
        expect_same_shape(name, a, b);
        y.resize(a.shape());
        parallel_for(B{}, a.numel(), detail::add_fn<T>{a.data(), b.data(), y.data(), T(Sign)});
    }
    template <class B, class T>
    static void backward(function_context<B, T>& ctx, const tensor<T, B>& dy, input_grads<B, T>& dx) {
        for (index_t i = 0; i < 2; ++i)
            if (dx.needed(i))
                parallel_for(B{}, dy.numel(),
                             detail::scaled_grad_fn<T>{dx.target(i), dy.data(), i == 0 ? T(1) : T(Sign)});
        (void)ctx;
    }
};

/// Elementwise product; shapes must be equal.
struct mul_op : function<mul_op> {
    static constexpr std::string_view name = "tessel::autograd::mul";
    template <class B, class T>
    static void forward(function_context<B, T>&, tensor<T, B>& y, const tensor<T, B>& a, const tensor<T, B>& b) {
        expect_same_shape(name, a, b);
        y.resize(a.shape());
        parallel_for(B{}, a.numel(), detail::mul_fn<T>{a.data(), b.data(), y.data()});
    }
    template <class B, class T>
    static void backward(function_context<B, T>& ctx, const tensor<T, B>& dy, input_grads<B, T>& dx) {
        if (dx.needed(0))
            parallel_for(B{}, dy.numel(), detail::mul_grad_fn<T>{dx.target(0), dy.data(), ctx.input(1).data()});
        if (dx.needed(1))
            parallel_for(B{}, dy.numel(), detail::mul_grad_fn<T>{dx.target(1), dy.data(), ctx.input(0).data()});
    }
};

/// s * a for a constant s.
struct scale_op : function<scale_op> {
    static constexpr std::string_view name = "tessel::autograd::scale";
    template <class B, class T>
    static void forward(function_context<B, T>& ctx, tensor<T, B>& y, const tensor<T, B>& a, double s) {
        expects(std::isfinite(s), name, "the factor must be finite, got ", s);
        ctx.save_scalar(s);
        y.resize(a.shape());
        parallel_for(B{}, a.numel(), detail::scale_fn<T>{a.data(), y.data(), static_cast<T>(s)});
    }
    template <class B, class T>
    static void backward(function_context<B, T>& ctx, const tensor<T, B>& dy, input_grads<B, T>& dx) {
        parallel_for(B{}, dy.numel(),
                     detail::scaled_grad_fn<T>{dx.target(0), dy.data(), static_cast<T>(ctx.scalar(0))});
    }
};

/// Sum (Mean = false) or mean (Mean = true) of all elements, as a rank-0 tensor.
template <bool Mean>
struct reduce_op : function<reduce_op<Mean>> {
    static constexpr std::string_view name = Mean ? "tessel::autograd::mean" : "tessel::autograd::sum";
    template <class B, class T>
    static void forward(function_context<B, T>&, tensor<T, B>& y, const tensor<T, B>& a) {
        expects(a.numel() > 0 || !Mean, name, "mean of an empty tensor (shape ", a.shape().str(), ")");
        double s = parallel_sum(B{}, a.numel(), 0.0, detail::as_double_fn<T>{a.data()});
        if (Mean) s /= static_cast<double>(a.numel());
        detail::write_scalar(y, s);
    }
    template <class B, class T>
    static void backward(function_context<B, T>& ctx, const tensor<T, B>& dy, input_grads<B, T>& dx) {
        const index_t n = ctx.input(0).numel();
        const T s = Mean ? static_cast<T>(1.0 / static_cast<double>(n)) : T(1);
        parallel_for(B{}, n, detail::broadcast_grad_fn<T>{dx.target(0), dy.data(), s});
    }
};

/// Matrix product of [M,K] and [K,N] (row-major), plain loops.
struct matmul_op : function<matmul_op> {
    static constexpr std::string_view name = "tessel::autograd::matmul";
    template <class B, class T>
    static void forward(function_context<B, T>&, tensor<T, B>& y, const tensor<T, B>& a, const tensor<T, B>& b) {
        expects(a.rank() == 2 && b.rank() == 2 && a.dim(1) == b.dim(0), name, "cannot multiply ", a.shape().str(),
                " by ", b.shape().str(), " (need [M,K] x [K,N])");
        y.resize(shape{a.dim(0), b.dim(1)});
        parallel_for(B{}, y.numel(), detail::matmul_fn<T>{a.data(), b.data(), y.data(), a.dim(1), b.dim(1)});
    }
    template <class B, class T>
    static void backward(function_context<B, T>& ctx, const tensor<T, B>& dy, input_grads<B, T>& dx) {
        const auto& a = ctx.input(0);
        const auto& b = ctx.input(1);
        const index_t M = a.dim(0), K = a.dim(1), N = b.dim(1);
        if (dx.needed(0)) parallel_for(B{}, M * K, detail::matmul_grad_a_fn<T>{dx.target(0), dy.data(), b.data(), K, N});
        if (dx.needed(1))
            parallel_for(B{}, K * N, detail::matmul_grad_b_fn<T>{dx.target(1), a.data(), dy.data(), M, K, N});
    }
};

struct relu_op : function<relu_op> {
    static constexpr std::string_view name = "tessel::autograd::relu";
    template <class B, class T>
    static void forward(function_context<B, T>&, tensor<T, B>& y, const tensor<T, B>& a) {
        y.resize(a.shape());
        parallel_for(B{}, a.numel(), detail::relu_fn<T>{a.data(), y.data()});
    }
    template <class B, class T>
    static void backward(function_context<B, T>& ctx, const tensor<T, B>& dy, input_grads<B, T>& dx) {
        parallel_for(B{}, dy.numel(), detail::relu_grad_fn<T>{dx.target(0), ctx.output().data(), dy.data()});
    }
};

struct tanh_op : function<tanh_op> {
    static constexpr std::string_view name = "tessel::autograd::tanh";
    template <class B, class T>
    static void forward(function_context<B, T>&, tensor<T, B>& y, const tensor<T, B>& a) {
        y.resize(a.shape());
        parallel_for(B{}, a.numel(), detail::tanh_fn<T>{a.data(), y.data()});
    }
    template <class B, class T>
    static void backward(function_context<B, T>& ctx, const tensor<T, B>& dy, input_grads<B, T>& dx) {
        parallel_for(B{}, dy.numel(), detail::tanh_grad_fn<T>{dx.target(0), ctx.output().data(), dy.data()});
    }
};

/// The same elements under another shape (a copy; the element count must not change).
struct reshape_op : function<reshape_op> {
    static constexpr std::string_view name = "tessel::autograd::reshape";
    template <class B, class T>
    static void forward(function_context<B, T>&, tensor<T, B>& y, const tensor<T, B>& a, const shape& s) {
        expects(s.numel() == a.numel(), name, "cannot reshape ", a.shape().str(), " to ", s.str(),
                " (element counts differ)");
        y.resize(s);
        parallel_for(B{}, a.numel(), detail::copy_fn<T>{a.data(), y.data()});
    }
    template <class B, class T>
    static void backward(function_context<B, T>&, const tensor<T, B>& dy, input_grads<B, T>& dx) {
        parallel_for(B{}, dy.numel(), detail::scaled_grad_fn<T>{dx.target(0), dy.data(), T(1)});
    }
};

// ---- the user-facing spelling -------------------------------------------------------------------

template <class B, class T>
var<B, T> add(const var<B, T>& a, const var<B, T>& b) { return add_op<1>::apply(a, b); }
template <class B, class T>
var<B, T> sub(const var<B, T>& a, const var<B, T>& b) { return add_op<-1>::apply(a, b); }
template <class B, class T>
var<B, T> mul(const var<B, T>& a, const var<B, T>& b) { return mul_op::apply(a, b); }
template <class B, class T>
var<B, T> scale(const var<B, T>& a, double s) { return scale_op::apply(a, s); }
template <class B, class T>
var<B, T> sum(const var<B, T>& a) { return reduce_op<false>::apply(a); }
template <class B, class T>
var<B, T> mean(const var<B, T>& a) { return reduce_op<true>::apply(a); }
template <class B, class T>
var<B, T> matmul(const var<B, T>& a, const var<B, T>& b) { return matmul_op::apply(a, b); }
template <class B, class T>
var<B, T> relu(const var<B, T>& a) { return relu_op::apply(a); }
template <class B, class T>
var<B, T> tanh(const var<B, T>& a) { return tanh_op::apply(a); }
template <class B, class T>
var<B, T> reshape(const var<B, T>& a, const shape& s) { return reshape_op::apply(a, s); }

template <class B, class T>
var<B, T> operator+(const var<B, T>& a, const var<B, T>& b) { return add(a, b); }
template <class B, class T>
var<B, T> operator-(const var<B, T>& a, const var<B, T>& b) { return sub(a, b); }
template <class B, class T>
var<B, T> operator*(const var<B, T>& a, const var<B, T>& b) { return mul(a, b); }
template <class B, class T>
var<B, T> operator*(double s, const var<B, T>& a) { return scale(a, s); }
template <class B, class T>
var<B, T> operator*(const var<B, T>& a, double s) { return scale(a, s); }
template <class B, class T>
var<B, T> operator-(const var<B, T>& a) { return scale(a, -1.0); }

}  // namespace tessel::autograd
