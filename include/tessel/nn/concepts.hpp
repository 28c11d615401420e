// tessel/nn/concepts.hpp: the contract every neural-network block follows.
//
// A block comes in two parts (dlib's relu_ / relu, libtorch's XImpl / X):
//   * the *spec*, a backend-free type with an aggregate `config` of run-time numbers (channels,
//     strides, rates), e.g. tessel::nn::conv2d;
//   * the *bound layer* Spec::bind<B, T>, the stateful object that owns weights and workspaces on
//     backend B with element type T (float, or double for gradient checks).
// Structure is in types; numbers are in configs. Sequences of blocks compose as
// nn::sequential<Specs...>, whose bind is a flat tuple of bound layers. Optional capabilities
// below (backward_into, forward_into, forward_inplace, overwritable_output) let containers keep
// one activation per layer pair and borrow gradient buffers from context::scratch instead of
// every layer holding its own (docs/design.md).
#pragma once
#include <concepts>
#include <type_traits>

#include "tessel/core/concepts.hpp"
#include "tessel/nn/context.hpp"

namespace tessel::nn {

/// LayerSpec: a backend-free description of a block.
///   requires: S::config is a default-constructible, copyable value (an aggregate set with
///             designated initialisers for single blocks; a std::tuple of the parts' configs for
///             nn::sequential); S::bind<B, T> is the bound layer for every Backend B and T in
///             {float, double}.
template <class S>
concept LayerSpec = requires { typename S::config; } && std::default_initializable<typename S::config> &&
                    std::copy_constructible<typename S::config>;

/// Layer: a bound, stateful block on backend B with element type T.
///   requires: constructible as L(const config&, rng& init) - parameters drawn from `init` only,
///             so a seed fixes the initial weights;
///             y = forward(ctx, x): returns a reference to the layer's own output buffer, valid
///             until the next forward; x must stay alive and unchanged until backward;
///             dx = backward(ctx, dy): dy has the shape of the last forward's output; returns a
///             reference to the layer's input-gradient buffer and *overwrites* the gradients of
///             the layer's parameters (it does not accumulate);
///             parameters(): the trainable tensors with their gradients (empty if none).
///   ensures:  after the first call at a given input shape, forward/backward do not allocate
///             (workspaces are reused across the ~1000 iterations of per-image training);
///             invalid input shapes throw tessel::error naming the layer and the shapes.
template <class L, class B, class T = float>
concept Layer = requires(L& l, context<B>& ctx, const tensor<T, B>& x) {
    { l.forward(ctx, x) } -> std::convertible_to<const tensor<T, B>&>;
    { l.backward(ctx, x) } -> std::convertible_to<const tensor<T, B>&>;
    { l.parameters() } -> std::convertible_to<parameter_list<T, B>>;
};

/// Optional: a layer with state that is not a parameter (batch norm's running statistics) exposes
/// it as buffers(), returning a buffer_list<T, B>; containers collect their parts' buffers with
/// buffers_of. A layer without buffers need not declare anything.
template <class L, class B, class T = float>
concept HasBuffers = requires(L& l) {
    { l.buffers() } -> std::convertible_to<buffer_list<T, B>>;
};

/// The buffers of any layer: l.buffers() if it has them, else none.
template <class T, Backend B, class L>
buffer_list<T, B> buffers_of(L& l) {
    if constexpr (HasBuffers<L, B, T>)
        return l.buffers();
    else
        return {};
}

/// Layers may skip computing the input gradient when nobody needs it (the first layer of a
/// network): if a layer has set_input_grad_needed(bool), sequential calls it with false on its
/// first layer, and backward then returns an unspecified tensor.
template <class L>
concept SkipsInputGrad = requires(L& l) { l.set_input_grad_needed(false); };

/// Optional: the input gradient written into a caller-provided tensor.
///   requires: backward_into(ctx, dy, dx) with dx not aliasing dy (or any buffer the layer reads);
///   ensures:  dx is resized to the input shape and overwritten (unless the layer skips its input
///             gradient, when dx is left untouched); parameter gradients are overwritten, as by
///             backward(). The layer's own input-gradient buffer is then never allocated.
/// Containers (sequential, repeat, inception) call it with scratch tensors from ctx.scratch, so a
/// network holds a few gradient buffers instead of one per layer.
template <class L, class B, class T = float>
concept BackwardsInto = requires(L& l, context<B>& ctx, const tensor<T, B>& dy, tensor<T, B>& dx) {
    l.backward_into(ctx, dy, dx);
};

/// Optional: the layer can run in place on its input (ReLU).
///   requires: forward_inplace(ctx, x) overwrites x with the output and remembers x as its output
///             (x must stay alive and unchanged until backward, which reads it); the tensor then
///             serves as this layer's output for the layer after it.
/// sequential runs such a layer in place only on the output of a layer with overwritable_output.
template <class L, class B, class T = float>
concept InPlace = requires(L& l, context<B>& ctx, tensor<T, B>& x) { l.forward_inplace(ctx, x); };

/// Optional: the output written into a caller-provided tensor.
///   requires: forward_into(ctx, x, y) with y not aliasing x; the layer keeps no reference to y
///             (its backward does not read its output), so the caller may reuse y as soon as it
///             has consumed it. inception uses it to put each branch's output in one borrowed
///             buffer on its way into the concatenation.
template <class L, class B, class T = float>
concept ForwardsInto = requires(L& l, context<B>& ctx, const tensor<T, B>& x, tensor<T, B>& y) {
    l.forward_into(ctx, x, y);
};

/// Optional: the output can be dropped once the next layer has read it, and recomputed before
/// that layer's backward (nn::inception_fused: from its saved conv outputs, by elementwise passes).
///   requires: release_output(ctx) after forward: the output tensor (the same object forward
///             returned) loses its contents, and its memory goes to ctx.scratch; restore_output(ctx)
///             before this layer's own backward: the same values in the same tensor object. Each
///             is a no-op when there is nothing to do (already released, or never released).
///   ensures:  the next forward works whether or not the output was released.
/// sequential and repeat release layer i's output after layer i + 1's forward (unless i + 1 passed
/// it through), restore it just before layer i + 1's backward and release it again after, so
/// that between forward and backward the activations of these layers take no memory.
template <class L, class B, class T = float>
concept ReleasesOutput = requires(L& l, context<B>& ctx) {
    l.release_output(ctx);
    l.restore_output(ctx);
};

/// Optional: a layer whose backward never reads its own output buffer (conv2d, batch_norm,
/// max_pool2d, inception) declares `static constexpr bool overwritable_output = true`; the buffer
/// returned by forward may then be modified in place by the next layer (same shape).
template <class L>
concept OverwritableOutput = requires { requires L::overwritable_output; };

/// Optional: a layer whose outputs are all >= 0 (inception: every branch ends in a ReLU) declares
/// `static constexpr bool nonnegative_output = true`; an in-place layer that leaves non-negative
/// values unchanged (`static constexpr bool identity_on_nonnegative = true`: ReLU) may then run in
/// place on it even if its backward reads the output, since nothing changes.
template <class L>
concept NonnegativeOutput = requires { requires L::nonnegative_output; };
template <class L>
concept IdentityOnNonnegative = requires { requires L::identity_on_nonnegative; };

}  // namespace tessel::nn
