// tessel/nn/activation.hpp: pointwise activations and the channel softmax.
//
// tanh, sigmoid, silu, selu, leaky_relu, gelu (exact erf) and elu are elementwise: each is an `op` (value and derivative
// as TESSEL_HD members) wrapped by nn::pointwise<Op>, which supplies the spec/bind plumbing once.
// softmax and log_softmax normalise over the channel axis (dim 1 of NCHW, or of any tensor of
// rank >= 2), subtracting the per-position maximum first so large logits do not overflow.
// relu lives in nn/relu.hpp. Formulas and constants follow PyTorch's torch.nn modules.
#pragma once
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "tessel/backend/parallel.hpp"
#include "tessel/nn/concepts.hpp"
#include "tessel/nn/detail/checks.hpp"
#include "tessel/ops/vector_math.hpp"

namespace tessel::nn {

namespace detail {

/// The logistic function without overflow for large |x|: exp is only taken of non-positive values.
template <class T>
TESSEL_HD inline T stable_sigmoid(T x) {
    if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
    const T e = std::exp(x);
    return e / (T(1) + e);
}

template <class Op, class T>
struct pointwise_forward_fn {
    Op op;
    const T* x;
    T* y;
    TESSEL_HD void operator()(index_t i) const { y[i] = op.value(x[i]); }
};
template <class Op, class T>
struct pointwise_backward_fn {
    Op op;
    const T* x;
    const T* y;
    const T* dy;
    T* dx;
    TESSEL_HD void operator()(index_t i) const { dx[i] = dy[i] * op.derivative(x[i], y[i]); }
};

/// An op may add a host member value_block(x, y, n) that computes n float values at once on the
/// target's vectors; pointwise then uses it for float tensors on host backends, in blocks of
/// host_block_size elements, instead of calling value per element.
template <class Op>
concept HasHostValueBlock = requires(const Op& op, const float* x, float* y, index_t n) { op.value_block(x, y, n); };
inline constexpr index_t host_block_size = 4096;

struct tanh_op {
    static constexpr const char* name = "tessel::nn::tanh";
    struct config {};
    explicit tanh_op(const config&) {}
    template <class T>
    TESSEL_HD T value(T x) const { return std::tanh(x); }
    /// Vectorised on the host (ops/vector_math.hpp; within 6 ulp of the exact value).
    void value_block(const float* x, float* y, index_t n) const { ops::vmath::tanh(x, y, n); }
    template <class T>
    TESSEL_HD T derivative(T, T y) const { return T(1) - y * y; }
};

struct sigmoid_op {
    static constexpr const char* name = "tessel::nn::sigmoid";
    struct config {};
    explicit sigmoid_op(const config&) {}
    template <class T>
    TESSEL_HD T value(T x) const { return stable_sigmoid(x); }
    template <class T>
    TESSEL_HD T derivative(T, T y) const { return y * (T(1) - y); }
};

/// SiLU (swish with beta = 1): x * sigmoid(x).
struct silu_op {
    static constexpr const char* name = "tessel::nn::silu";
    struct config {};
    explicit silu_op(const config&) {}
    template <class T>
    TESSEL_HD T value(T x) const { return x * stable_sigmoid(x); }
    template <class T>
    TESSEL_HD T derivative(T x, T) const {
        const T s = stable_sigmoid(x);
        return s * (T(1) + x * (T(1) - s));
    }
};

/// SELU (Klambauer et al. 2017) with PyTorch's constants; expm1 keeps precision near 0.
struct selu_op {
    static constexpr const char* name = "tessel::nn::selu";
    static constexpr double alpha = 1.6732632423543772848170429916717;
    static constexpr double scale = 1.0507009873554804934193349852946;
    struct config {};
    explicit selu_op(const config&) {}
    template <class T>
    TESSEL_HD T value(T x) const {
        return x > T(0) ? T(scale) * x : T(scale * alpha) * std::expm1(x);
    }
    template <class T>
    TESSEL_HD T derivative(T x, T) const { return x > T(0) ? T(scale) : T(scale * alpha) * std::exp(x); }
};

/// Leaky ReLU; as in PyTorch the slope at exactly 0 is the negative slope.
struct leaky_relu_op {
    static constexpr const char* name = "tessel::nn::leaky_relu";
    struct config {
        double negative_slope = 0.01;
    };
    explicit leaky_relu_op(const config& cfg) : slope(cfg.negative_slope) {
        expects(std::isfinite(cfg.negative_slope), name, "negative_slope must be finite, got ", cfg.negative_slope);
    }
    double slope;
    template <class T>
    TESSEL_HD T value(T x) const { return x > T(0) ? x : T(slope) * x; }
    template <class T>
    TESSEL_HD T derivative(T x, T) const { return x > T(0) ? T(1) : T(slope); }
};

/// GELU in its exact form (PyTorch's default, approximate='none'): x * Phi(x), with
/// Phi(x) = (1 + erf(x / sqrt 2)) / 2; the derivative is Phi(x) + x * phi(x).
struct gelu_op {
    static constexpr const char* name = "tessel::nn::gelu";
    struct config {};
    explicit gelu_op(const config&) {}
    template <class T>
    TESSEL_HD T value(T x) const { return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440))); }
    template <class T>
    TESSEL_HD T derivative(T x, T) const {
        const T cdf = T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440)));
        return cdf + x * T(0.39894228040143267794) * std::exp(T(-0.5) * x * x);
    }
};

/// ELU (alpha = 1 by default, as torch.nn.ELU): x for x > 0, alpha * (exp(x) - 1) otherwise.
struct elu_op {
    static constexpr const char* name = "tessel::nn::elu";
    struct config {
        double alpha = 1.0;
    };
    explicit elu_op(const config& cfg) : alpha(cfg.alpha) {
        expects(std::isfinite(cfg.alpha), name, "alpha must be finite, got ", cfg.alpha);
    }
    double alpha;
    template <class T>
    TESSEL_HD T value(T x) const { return x > T(0) ? x : T(alpha) * std::expm1(x); }
    template <class T>
    TESSEL_HD T derivative(T x, T) const { return x > T(0) ? T(1) : T(alpha) * std::exp(x); }
};

/// The activations a method may choose at run time (UnSegGNet's `activation` option).
enum class activation_kind { selu, silu, gelu, relu, elu, tanh, identity };

/// An activation chosen by a config value rather than a type: one layer type for a network
/// whose activation is a user option. ReLU's derivative at 0 is 0, as in PyTorch.
struct selectable_op {
    static constexpr const char* name = "tessel::nn::activation";
    struct config {
        activation_kind kind = activation_kind::selu;
    };
    explicit selectable_op(const config& cfg) : kind(cfg.kind) {}
    activation_kind kind;
    template <class T>
    TESSEL_HD T value(T x) const {
        switch (kind) {
            case activation_kind::selu: return selu_op(selu_op::config{}).value(x);
            case activation_kind::silu: return silu_op(silu_op::config{}).value(x);
            case activation_kind::gelu: return gelu_op(gelu_op::config{}).value(x);
            case activation_kind::relu: return x > T(0) ? x : T(0);
            case activation_kind::elu: return x > T(0) ? x : std::expm1(x);
            case activation_kind::tanh: return std::tanh(x);
            default: return x;
        }
    }
    template <class T>
    TESSEL_HD T derivative(T x, T y) const {
        switch (kind) {
            case activation_kind::selu: return selu_op(selu_op::config{}).derivative(x, y);
            case activation_kind::silu: return silu_op(silu_op::config{}).derivative(x, y);
            case activation_kind::gelu: return gelu_op(gelu_op::config{}).derivative(x, y);
            case activation_kind::relu: return x > T(0) ? T(1) : T(0);
            case activation_kind::elu: return x > T(0) ? T(1) : std::exp(x);
            case activation_kind::tanh: return T(1) - y * y;
            default: return T(1);
        }
    }
};

}  // namespace detail

/// An elementwise activation y = op.value(x), dx = dy * op.derivative(x, y).
///   requires: Op is copyable into device code, constructible from Op::config, and names itself
///             in Op::name; value/derivative are TESSEL_HD templates over the element type.
template <class Op>
struct pointwise {
    using config = typename Op::config;

    template <Backend B, class T = float>
    class bind {
    public:
        bind() : m_op(config{}) {}
        bind(const config& cfg, rng&) : m_op(cfg) {}

        const tensor<T, B>& forward(context<B>&, const tensor<T, B>& x) {
            detail::expect_nonempty(Op::name, x);
            m_x = &x;
            m_y.resize(x.shape());
            if constexpr (HostBackend<B> && std::is_same_v<T, float> && detail::HasHostValueBlock<Op>) {
                constexpr index_t block = detail::host_block_size;
                const index_t n = x.numel();
                const float* xs = x.data();
                float* ys = m_y.data();
                const Op op = m_op;
                parallel_for(B{}, (n + block - 1) / block, [=](index_t b) {
                    const index_t i0 = b * block;
                    op.value_block(xs + i0, ys + i0, std::min(block, n - i0));
                });
            } else {
                parallel_for(B{}, x.numel(), detail::pointwise_forward_fn<Op, T>{m_op, x.data(), m_y.data()});
            }
            return m_y;
        }
        const tensor<T, B>& backward(context<B>&, const tensor<T, B>& dy) {
            expects(m_x != nullptr, Op::name, "backward called before forward");
            expect_same_shape(Op::name, dy, m_y);
            m_dx.resize(dy.shape());
            parallel_for(B{}, dy.numel(),
                         detail::pointwise_backward_fn<Op, T>{m_op, m_x->data(), m_y.data(), dy.data(), m_dx.data()});
            return m_dx;
        }
        parameter_list<T, B> parameters() { return {}; }

    private:
        Op m_op;
        const tensor<T, B>* m_x = nullptr;  // the contract keeps the input alive until backward
        tensor<T, B> m_y, m_dx;
    };
};

using tanh = pointwise<detail::tanh_op>;
using sigmoid = pointwise<detail::sigmoid_op>;
using silu = pointwise<detail::silu_op>;
using selu = pointwise<detail::selu_op>;
using leaky_relu = pointwise<detail::leaky_relu_op>;
using gelu = pointwise<detail::gelu_op>;
using elu = pointwise<detail::elu_op>;
/// An activation picked at run time: nn::activation::config{.kind = nn::activation_kind::silu}.
using activation = pointwise<detail::selectable_op>;
using detail::activation_kind;

// ---- softmax over channels ---------------------------------------------------------------------

namespace detail {

/// Positions are (n, s) with s running over everything after the channel axis; channel c of
/// position p sits at base(p) + c * inner.
struct channel_layout {
    index_t channels;
    index_t inner;
    TESSEL_HD index_t base(index_t p) const { return (p / inner) * channels * inner + p % inner; }
};

template <class T, bool Log>
struct softmax_forward_fn {
    channel_layout L;
    const T* x;
    T* y;
    TESSEL_HD void operator()(index_t p) const {
        const index_t b = L.base(p);
        T m = x[b];
        for (index_t c = 1; c < L.channels; ++c) m = x[b + c * L.inner] > m ? x[b + c * L.inner] : m;
        T sum = 0;
        for (index_t c = 0; c < L.channels; ++c) sum += std::exp(x[b + c * L.inner] - m);
        if constexpr (Log) {
            const T log_sum = std::log(sum);
            for (index_t c = 0; c < L.channels; ++c) y[b + c * L.inner] = x[b + c * L.inner] - m - log_sum;
        } else {
            const T inv = T(1) / sum;
            for (index_t c = 0; c < L.channels; ++c) y[b + c * L.inner] = std::exp(x[b + c * L.inner] - m) * inv;
        }
    }
};

// softmax:     dx_c = y_c (dy_c - sum_k dy_k y_k)
// log_softmax: dx_c = dy_c - exp(y_c) sum_k dy_k
template <class T, bool Log>
struct softmax_backward_fn {
    channel_layout L;
    const T* y;
    const T* dy;
    T* dx;
    TESSEL_HD void operator()(index_t p) const {
        const index_t b = L.base(p);
        T s = 0;
        for (index_t c = 0; c < L.channels; ++c) {
            const index_t i = b + c * L.inner;
            s += Log ? dy[i] : dy[i] * y[i];
        }
        for (index_t c = 0; c < L.channels; ++c) {
            const index_t i = b + c * L.inner;
            if constexpr (Log)
                dx[i] = dy[i] - std::exp(y[i]) * s;
            else
                dx[i] = y[i] * (dy[i] - s);
        }
    }
};

template <bool Log>
struct channel_softmax {
    static constexpr const char* name = Log ? "tessel::nn::log_softmax" : "tessel::nn::softmax";
    struct config {};

    template <Backend B, class T = float>
    class bind {
    public:
        bind() = default;
        bind(const config&, rng&) {}

        const tensor<T, B>& forward(context<B>&, const tensor<T, B>& x) {
            expects(x.rank() >= 2, name, "normalises over dim 1 and needs rank >= 2, got shape ", x.shape().str());
            expect_nonempty(name, x);
            m_y.resize(x.shape());
            const channel_layout L = layout(x.shape());
            parallel_for(B{}, x.numel() / L.channels, softmax_forward_fn<T, Log>{L, x.data(), m_y.data()});
            return m_y;
        }
        const tensor<T, B>& backward(context<B>&, const tensor<T, B>& dy) {
            expects(!m_y.empty(), name, "backward called before forward");
            expect_same_shape(name, dy, m_y);
            m_dx.resize(dy.shape());
            const channel_layout L = layout(dy.shape());
            parallel_for(B{}, dy.numel() / L.channels,
                         softmax_backward_fn<T, Log>{L, m_y.data(), dy.data(), m_dx.data()});
            return m_dx;
        }
        parameter_list<T, B> parameters() { return {}; }

    private:
        static channel_layout layout(const shape& s) {
            index_t inner = 1;
            for (int a = 2; a < s.rank; ++a) inner *= s[a];
            return {s[1], inner};
        }
        tensor<T, B> m_y, m_dx;
    };
};

}  // namespace detail

/// Softmax over dim 1: y[n, c, ...] = exp(x[n, c, ...]) / sum_k exp(x[n, k, ...]).
using softmax = detail::channel_softmax<false>;
/// Log-softmax over dim 1, computed as x - max - log(sum exp(x - max)) (never log of a softmax).
using log_softmax = detail::channel_softmax<true>;

static_assert(LayerSpec<tanh> && LayerSpec<leaky_relu> && LayerSpec<softmax>);
static_assert(Layer<selu::bind<cpu_serial>, cpu_serial> && Layer<log_softmax::bind<cpu_serial>, cpu_serial>);

}  // namespace tessel::nn
