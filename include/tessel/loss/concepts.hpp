// tessel/loss/concepts.hpp: the contract of a loss, and the options shared by all losses.
//
// Every loss is a small struct of settings (e.g. loss::cross_entropy{.ignore_index = 255}) with
// two faces: a direct fast path, value(x, target) and value_and_grad(x, target, dx), for
// per-image training loops that keep one preallocated gradient buffer; and a tape form,
// loss(var, target), that records the loss as one node of an autograd::tape so it composes with
// layer nodes and other ops in a DAG. Both faces share one functor, so they agree bit for bit.
#pragma once
#include <concepts>

#include "tessel/autograd/tape.hpp"
#include "tessel/core/tensor.hpp"

namespace tessel::loss {

/// The target of a loss that needs none (spatial continuity).
struct no_target {};

/// How value_and_grad writes its gradient: dx = (accumulate ? dx : 0) + weight * dL/dx. With
/// accumulate, a weighted sum of losses (Kim 2020: CE + mu * continuity) fills one buffer.
struct grad_options {
    double weight = 1.0;
    bool accumulate = false;
};

/// Loss<L, B, T>: a differentiable scalar function of a prediction tensor and a target.
///   requires: L::target_type<B, T> names the target (tensor<label_t, B> for hard labels,
///             tensor<T, B> for soft targets, no_target); value(x, y) returns the loss (double);
///             value_and_grad(x, y, dx, opts = {}) returns the loss and writes dL/dx into dx as
///             grad_options says (dx is resized to x's shape unless accumulating, when it must
///             already have it); l(v, y) records the loss on v's tape and returns a rank-0 var.
///   ensures:  no allocation in value or value_and_grad once dx has x's shape; the value of all
///             three calls is the same number; invalid input (empty tensors, shape mismatch,
///             labels out of range) throws tessel::error naming the loss and the shapes.
template <class L, class B, class T = float>
concept Loss = requires { typename L::template target_type<B, T>; } &&
               requires(const L& l, const tensor<T, B>& x, const typename L::template target_type<B, T>& y,
                        tensor<T, B>& dx, const autograd::var<B, T>& v) {
                   { l.value(x, y) } -> std::convertible_to<double>;
                   { l.value_and_grad(x, y, dx) } -> std::convertible_to<double>;
                   { l.value_and_grad(x, y, dx, grad_options{}) } -> std::convertible_to<double>;
                   { l(v, y) } -> std::same_as<autograd::var<B, T>>;
               };

namespace detail {
/// Sizes dx for value_and_grad and returns where to write.
template <class T, class B>
autograd::grad_target<T> prepare_grad(std::string_view where, const tensor<T, B>& x, tensor<T, B>& dx,
                                      const grad_options& o) {
    if (o.accumulate)
        expects(dx.shape() == x.shape(), where, "accumulating into a gradient of shape ", dx.shape().str(),
                " for an input of shape ", x.shape().str());
    else
        dx.resize(x.shape());
    return {dx.data(), o.accumulate};
}
/// dx += dy[0] * g: the backward of a loss node whose forward already computed dL/dx into g.
template <class T>
struct chain_saved_grad_fn {
    autograd::grad_target<T> dx;
    const T* g;
    const T* dy;
    TESSEL_HD void operator()(index_t i) const { dx.write(i, dy[0] * g[i]); }
};
}  // namespace detail

}  // namespace tessel::loss
