// tessel/nn/init.hpp: seeded weight initialisers (PyTorch's defaults and Xavier).
//
// PyTorch initialises Conv2d and Linear weights with Kaiming-uniform, a = sqrt(5), which is
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)); biases with U(-1/sqrt(fan_in), 1/sqrt(fan_in)). The authors'
// code of every method here relies on that (METHODS.md §1.2). Values are drawn on the host from a
// tessel::rng in row-major order, so a seed gives identical weights on every backend.
#pragma once
#include <cmath>
#include <vector>

#include "tessel/core/random.hpp"
#include "tessel/core/tensor.hpp"

namespace tessel::nn::init {

/// Fills t with U(-bound, bound), drawn in row-major order.
template <class T, class B>
void uniform(tensor<T, B>& t, double bound, rng& gen) {
    std::vector<T> host(static_cast<std::size_t>(t.numel()));
    for (auto& v : host) v = static_cast<T>(gen.uniform(-bound, bound));
    t.assign(t.shape(), host.begin(), host.end());
}

/// Kaiming (He) uniform with negative slope a: bound = sqrt(6 / ((1 + a^2) fan_in)).
/// With a = sqrt(5) (PyTorch's default for conv and linear weights) this is 1/sqrt(fan_in).
template <class T, class B>
void kaiming_uniform(tensor<T, B>& t, index_t fan_in, rng& gen, double a = std::sqrt(5.0)) {
    expects(fan_in > 0, "tessel::nn::init::kaiming_uniform", "fan_in must be positive, got ", fan_in);
    uniform(t, std::sqrt(6.0 / ((1.0 + a * a) * static_cast<double>(fan_in))), gen);
}

/// PyTorch's default bias initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
template <class T, class B>
void default_bias(tensor<T, B>& t, index_t fan_in, rng& gen) {
    expects(fan_in > 0, "tessel::nn::init::default_bias", "fan_in must be positive, got ", fan_in);
    uniform(t, 1.0 / std::sqrt(static_cast<double>(fan_in)), gen);
}

/// Xavier (Glorot) uniform: bound = gain * sqrt(6 / (fan_in + fan_out)).
template <class T, class B>
void xavier_uniform(tensor<T, B>& t, index_t fan_in, index_t fan_out, rng& gen, double gain = 1.0) {
    expects(fan_in > 0 && fan_out > 0, "tessel::nn::init::xavier_uniform", "fans must be positive, got ", fan_in,
            " and ", fan_out);
    uniform(t, gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out)), gen);
}

/// How a block initialises its weights; configs carry one of these.
enum class scheme { pytorch_default, xavier_uniform };

/// Sizes and draws the weight (shape w_shape) and, if has_bias, the bias (out entries) of a
/// conv or linear layer, and sizes their gradients: weights by `s`, the bias always with
/// PyTorch's default. The weight is drawn before the bias, so a seed fixes both.
template <class T, class B>
void weight_and_bias(tensor<T, B>& w, tensor<T, B>& dw, tensor<T, B>& b, tensor<T, B>& db, const shape& w_shape,
                     index_t out, bool has_bias, index_t fan_in, index_t fan_out, scheme s, rng& gen) {
    w.resize(w_shape);
    if (s == scheme::xavier_uniform)
        xavier_uniform(w, fan_in, fan_out, gen);
    else
        kaiming_uniform(w, fan_in, gen);
    dw.resize(w.shape());
    if (has_bias) {
        b.resize(shape{out});
        default_bias(b, fan_in, gen);
        db.resize(b.shape());
    }
}

}  // namespace tessel::nn::init
