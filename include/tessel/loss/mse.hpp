// tessel/loss/mse.hpp: mean squared error, PyTorch's MSELoss with mean reduction.
//
// L = mean over all elements of (x - y)^2, x and y of equal shape; dL/dx = 2 (x - y) / n. The
// tape form takes the target as a var too (gradient -dL/dx), so reconstruction losses between
// two recorded values (autoencoders, feature matching) work as well as regression to a constant.
#pragma once
#include <string_view>

#include "tessel/autograd/functions.hpp"
#include "tessel/backend/parallel.hpp"
#include "tessel/loss/concepts.hpp"

namespace tessel::loss {

namespace detail {
template <class T>
struct mse_fn {
    const T *x, *y;
    autograd::grad_target<T> g;
    T scale;  // 2 * weight / n
    TESSEL_HD double operator()(index_t i) const {
        const T d = x[i] - y[i];
        if (g.data) g.write(i, scale * d);
        return static_cast<double>(d) * static_cast<double>(d);
    }
};
template <class T>
struct mse_grad_fn {
    autograd::grad_target<T> g;
    const T *x, *y, *dy;
    T scale;  // +-2 / n
    TESSEL_HD void operator()(index_t i) const { g.write(i, dy[0] * scale * (x[i] - y[i])); }
};

template <class T, class B>
double mse_impl(const tensor<T, B>& x, const tensor<T, B>& y, autograd::grad_target<T> g, double weight) {
    constexpr std::string_view where = "tessel::loss::mse";
    expects(x.shape() == y.shape(), where, "prediction of shape ", x.shape().str(), " and target of shape ",
            y.shape().str(), " differ");
    expects(x.numel() > 0, where, "empty input (shape ", x.shape().str(), ")");
    const double inv = 1.0 / static_cast<double>(x.numel());
    return inv * parallel_sum(B{}, x.numel(), 0.0, mse_fn<T>{x.data(), y.data(), g, static_cast<T>(2.0 * weight * inv)});
}

struct mse_op : autograd::function<mse_op> {
    static constexpr std::string_view name = "tessel::loss::mse";
    template <class B, class T>
    static void forward(autograd::function_context<B, T>&, tensor<T, B>& out, const tensor<T, B>& x,
                        const tensor<T, B>& y) {
        const double v = mse_impl(x, y, autograd::grad_target<T>{}, 1.0);
        out.resize(shape{});
        parallel_for(B{}, 1, autograd::detail::fill_fn<T>{out.data(), static_cast<T>(v)});
    }
    template <class B, class T>
    static void backward(autograd::function_context<B, T>& ctx, const tensor<T, B>& dy, autograd::input_grads<B, T>& dx) {
        const auto& x = ctx.input(0);
        const auto& y = ctx.input(1);
        const T s = static_cast<T>(2.0 / static_cast<double>(x.numel()));
        if (dx.needed(0)) parallel_for(B{}, x.numel(), mse_grad_fn<T>{dx.target(0), x.data(), y.data(), dy.data(), s});
        if (dx.needed(1)) parallel_for(B{}, x.numel(), mse_grad_fn<T>{dx.target(1), x.data(), y.data(), dy.data(), -s});
    }
};
}  // namespace detail

/// Mean squared error.
/// @code double l = loss::mse{}.value_and_grad(prediction, target, dprediction); @endcode
struct mse {
    template <Backend B, class T>
    using target_type = tensor<T, B>;

    template <class T, Backend B>
    double value(const tensor<T, B>& x, const tensor<T, B>& y) const {
        return detail::mse_impl(x, y, autograd::grad_target<T>{}, 1.0);
    }
    template <class T, Backend B>
    double value_and_grad(const tensor<T, B>& x, const tensor<T, B>& y, tensor<T, B>& dx,
                          const grad_options& o = {}) const {
        const auto g = detail::prepare_grad("tessel::loss::mse", x, dx, o);
        return detail::mse_impl(x, y, g, o.weight);
    }
    /// Regression to a constant target (kept alive until backward).
    template <Backend B, class T>
    autograd::var<B, T> operator()(const autograd::var<B, T>& x, const tensor<T, B>& y) const {
        return detail::mse_op::apply(x, x.owner().constant(y));
    }
    /// Between two recorded values; both get gradients.
    template <Backend B, class T>
    autograd::var<B, T> operator()(const autograd::var<B, T>& x, const autograd::var<B, T>& y) const {
        return detail::mse_op::apply(x, y);
    }
};

static_assert(Loss<mse, cpu_serial, float> && Loss<mse, cpu_omp, double>);

}  // namespace tessel::loss
