// tessel/nn/context.hpp: the run-time state a layer sees, and how layers expose their parameters.
//
// context<B> carries what changes between calls but is not a layer's own state: train/eval mode
// (batch norm statistics, dropout) and the random stream for stochastic layers. parameter_ref
// points at one trainable tensor of a layer and its gradient; optimizers work on spans of them.
#pragma once
#include <string_view>
#include <vector>

#include "tessel/backend/concepts.hpp"
#include "tessel/core/random.hpp"
#include "tessel/core/tensor.hpp"

namespace tessel::nn {

template <Backend B>
struct context {
    bool training = true;  ///< train mode: batch statistics in batch_norm, active dropout
    rng gen{0};            ///< the stream stochastic layers (dropout) draw from
};

/// A trainable tensor and its gradient, owned by a layer. backward() overwrites grad.
template <class T, Backend B>
struct parameter_ref {
    tensor<T, B>* value = nullptr;
    tensor<T, B>* grad = nullptr;
    std::string_view name;  ///< e.g. "weight", "bias", "gamma"
};

template <class T, Backend B>
using parameter_list = std::vector<parameter_ref<T, B>>;

/// Appends every parameter of `from` to `to` (for containers of layers).
template <class T, Backend B>
void append_parameters(parameter_list<T, B>& to, const parameter_list<T, B>& from) {
    to.insert(to.end(), from.begin(), from.end());
}

/// Total number of trainable scalars.
template <class T, Backend B>
index_t count_parameters(const parameter_list<T, B>& params) {
    index_t n = 0;
    for (const auto& p : params) n += p.value->numel();
    return n;
}

}  // namespace tessel::nn
