// tessel/autograd/concepts.hpp: what a tape variable and a differentiable function must provide.
//
// Variable is satisfied by autograd::var; DifferentiableFunction by every op built on
// autograd::function (autograd/functions.hpp, the tape forms of the losses, user ops). The
// arguments of a function's forward vary from op to op, so the concept checks the part that is
// common: the CRTP base that records it and a name for error messages.
#pragma once
#include <concepts>
#include <string_view>
#include <type_traits>

#include "tessel/autograd/tape.hpp"

namespace tessel::autograd {

/// Variable: a handle to a value recorded on a tape.
///   requires: V::backend_type, V::value_type; value() and grad() return the value and (after the
///             tape's backward) the gradient as tensors of that type; owner() is the tape.
///   ensures:  copying a Variable copies the handle, never the tensors; the handle is valid until
///             its tape is reset, after which any use throws tessel::error.
template <class V>
concept Variable = requires(const V& v) {
    typename V::backend_type;
    typename V::value_type;
    { v.value() } -> std::same_as<const tensor<typename V::value_type, typename V::backend_type>&>;
    { v.grad() } -> std::same_as<const tensor<typename V::value_type, typename V::backend_type>&>;
    { v.owner() } -> std::same_as<tape<typename V::backend_type, typename V::value_type>&>;
};

/// DifferentiableFunction: a libtorch-style custom op.
///   requires: F derives from autograd::function<F>; F::forward(ctx, inputs...) returns the output
///             tensor or F::forward(ctx, out, inputs...) fills `out`; F::backward(ctx, dy) returns
///             one gradient per var input or F::backward(ctx, dy, dx) accumulates into dx;
///             F::name (optional) names the op in error messages.
///   ensures:  F::apply(args...) records one node on the tape of its var arguments; backward is
///             called at most once per tape.backward(), only if the loss depends on the output,
///             and must write each needed input gradient with grad_target::write or
///             input_grads::accumulate (never assign), since inputs can feed several ops.
template <class F>
concept DifferentiableFunction = std::derived_from<F, function<F>>;

static_assert(Variable<var<cpu_serial, float>> && Variable<var<cpu_omp, double>>);

}  // namespace tessel::autograd
