// tessel/loss/cross_entropy.hpp: softmax cross-entropy against hard labels or soft targets.
//
// PyTorch's CrossEntropyLoss, mean reduction (METHODS.md §1.2). Logits are [N, C, d1, ...] with
// classes on axis 1; each (n, d1, ...) is a sample, so NCHW response maps give one per pixel.
//   cross_entropy:      mean over non-ignored samples of -log softmax(z)[label], labels [N, d1, ...]
//   soft_cross_entropy: mean over samples of -sum_k y_k log softmax(z)_k (PyTorch >= 1.10
//                       probability targets, shaped like the logits)
// One functor per sample computes the log-sum-exp once and writes the gradient in the same pass.
#pragma once
#include <cmath>
#include <string_view>

#include "tessel/autograd/functions.hpp"
#include "tessel/backend/parallel.hpp"
#include "tessel/loss/concepts.hpp"

namespace tessel::loss {

namespace detail {
/// Samples of logits [N, C, d1, ...]: count N * prod(d), inner stride S = prod(d).
struct class_layout {
    index_t samples = 0, classes = 0, inner = 0;
};
template <class T, class B>
class_layout check_logits(std::string_view where, const tensor<T, B>& z) {
    expects(z.rank() >= 2, where, "logits must be [N,C,...] with classes along axis 1, got shape ", z.shape().str());
    expects(z.numel() > 0, where, "empty logits (shape ", z.shape().str(), ")");
    class_layout l;
    l.classes = z.dim(1);
    l.inner = z.numel() / (z.dim(0) * l.classes);
    l.samples = z.dim(0) * l.inner;
    return l;
}

template <class T>
struct ce_hard_fn {
    const T* z;
    const label_t* y;
    autograd::grad_target<T> g;  // g.data == nullptr: value only
    index_t C, S;
    label_t ignore;
    T scale;  // weight / number of counted samples
    TESSEL_HD double operator()(index_t s) const {
        const index_t base = (s / S) * C * S + s % S;
        const T* zs = z + base;
        const label_t lab = y[s];
        if (lab == ignore) {
            if (g.data)
                for (index_t k = 0; k < C; ++k) g.write(base + k * S, T(0));
            return 0.0;
        }
        T m = zs[0];
        for (index_t k = 1; k < C; ++k) m = zs[k * S] > m ? zs[k * S] : m;
        // The exponentials of the first exp_cache classes are kept for the gradient pass: exp is
        // the dominant cost (100 classes x 154k pixels per Kim 2020 iteration).
        constexpr index_t exp_cache = 128;
        T e[exp_cache];
        T sum = 0;
        for (index_t k = 0; k < C; ++k) {
            const T ek = std::exp(zs[k * S] - m);
            if (k < exp_cache) e[k] = ek;
            sum += ek;
        }
        if (g.data) {
            const T inv = T(1) / sum;
            for (index_t k = 0; k < C; ++k) {
                const T ek = k < exp_cache ? e[k] : std::exp(zs[k * S] - m);
                g.write(base + k * S, (ek * inv - (k == lab ? T(1) : T(0))) * scale);
            }
        }
        return static_cast<double>(m + std::log(sum) - zs[static_cast<index_t>(lab) * S]);
    }
};
template <class T>
struct ce_soft_fn {
    const T* z;
    const T* y;
    autograd::grad_target<T> g;
    index_t C, S;
    T scale;
    TESSEL_HD double operator()(index_t s) const {
        const index_t base = (s / S) * C * S + s % S;
        const T* zs = z + base;
        const T* ys = y + base;
        T m = zs[0];
        for (index_t k = 1; k < C; ++k) m = zs[k * S] > m ? zs[k * S] : m;
        T sum = 0, ysum = 0;
        for (index_t k = 0; k < C; ++k) {
            sum += std::exp(zs[k * S] - m);
            ysum += ys[k * S];
        }
        const T lse = m + std::log(sum);
        T loss = 0;
        for (index_t k = 0; k < C; ++k) loss += ys[k * S] * (lse - zs[k * S]);
        if (g.data) {
            const T inv = T(1) / sum;
            for (index_t k = 0; k < C; ++k)
                g.write(base + k * S, (std::exp(zs[k * S] - m) * inv * ysum - ys[k * S]) * scale);
        }
        return static_cast<double>(loss);
    }
};
struct label_bad_fn {
    const label_t* y;
    index_t C;
    label_t ignore;
    TESSEL_HD index_t operator()(index_t i) const { return (y[i] != ignore && (y[i] < 0 || y[i] >= C)) ? 1 : 0; }
};
struct label_counted_fn {
    const label_t* y;
    label_t ignore;
    TESSEL_HD index_t operator()(index_t i) const { return y[i] != ignore ? 1 : 0; }
};

/// The hard-label loss; writes the gradient when g.data is set. Returns the unweighted loss.
template <class T, class B>
double cross_entropy_impl(const tensor<T, B>& z, const tensor<label_t, B>& y, label_t ignore,
                          autograd::grad_target<T> g, double weight) {
    constexpr std::string_view where = "tessel::loss::cross_entropy";
    const class_layout l = check_logits(where, z);
    shape expected;
    expected.rank = z.rank() - 1;
    expected[0] = z.dim(0);
    for (int a = 2; a < z.rank(); ++a) expected[a - 1] = z.dim(a);
    expects(y.shape() == expected, where, "labels of shape ", y.shape().str(), " do not match logits of shape ",
            z.shape().str(), " (expected labels ", expected.str(), ")");
    const index_t bad = parallel_sum(B{}, l.samples, index_t(0), label_bad_fn{y.data(), l.classes, ignore});
    if (bad > 0) {
        const auto host = y.to_vector();
        index_t i = 0;
        while (host[static_cast<std::size_t>(i)] == ignore || (host[static_cast<std::size_t>(i)] >= 0 &&
                                                                host[static_cast<std::size_t>(i)] < l.classes))
            ++i;
        fail(where, bad, " label(s) out of range [0,", l.classes, ") for logits of shape ", z.shape().str(),
             ": first is ", host[static_cast<std::size_t>(i)], " at sample ", i, " (ignore_index is ", ignore, ")");
    }
    const index_t counted = parallel_sum(B{}, l.samples, index_t(0), label_counted_fn{y.data(), ignore});
    // Every sample ignored: PyTorch returns NaN (0/0); tessel returns 0 with a zero gradient so
    // that one label-free image does not poison a training run.
    const double inv = counted > 0 ? 1.0 / static_cast<double>(counted) : 0.0;
    const double total = parallel_sum(
        B{}, l.samples, 0.0,
        ce_hard_fn<T>{z.data(), y.data(), g, l.classes, l.inner, ignore, static_cast<T>(weight * inv)});
    return total * inv;
}

template <class T, class B>
double soft_cross_entropy_impl(const tensor<T, B>& z, const tensor<T, B>& y, autograd::grad_target<T> g,
                               double weight) {
    constexpr std::string_view where = "tessel::loss::soft_cross_entropy";
    const class_layout l = check_logits(where, z);
    expects(y.shape() == z.shape(), where, "targets of shape ", y.shape().str(), " do not match logits of shape ",
            z.shape().str());
    const double inv = 1.0 / static_cast<double>(l.samples);
    const double total = parallel_sum(
        B{}, l.samples, 0.0, ce_soft_fn<T>{z.data(), y.data(), g, l.classes, l.inner, static_cast<T>(weight * inv)});
    return total * inv;
}

template <class T, class B>
void write_loss_value(tensor<T, B>& out, double v) {
    out.resize(shape{});
    parallel_for(B{}, 1, autograd::detail::fill_fn<T>{out.data(), static_cast<T>(v)});
}

struct cross_entropy_op : autograd::function<cross_entropy_op> {
    static constexpr std::string_view name = "tessel::loss::cross_entropy";
    template <class B, class T>
    static void forward(autograd::function_context<B, T>& ctx, tensor<T, B>& out, const tensor<T, B>& z,
                        const tensor<label_t, B>& y, label_t ignore) {
        autograd::grad_target<T> g{};
        if (ctx.needs_input_grad(0)) {
            ctx.workspace(0).resize(z.shape());
            g.data = ctx.workspace(0).data();
        }
        write_loss_value(out, cross_entropy_impl(z, y, ignore, g, 1.0));
    }
    template <class B, class T>
    static void backward(autograd::function_context<B, T>& ctx, const tensor<T, B>& dy, autograd::input_grads<B, T>& dx) {
        const auto& g = ctx.workspace(0);
        parallel_for(B{}, g.numel(), chain_saved_grad_fn<T>{dx.target(0), g.data(), dy.data()});
    }
};
struct soft_cross_entropy_op : autograd::function<soft_cross_entropy_op> {
    static constexpr std::string_view name = "tessel::loss::soft_cross_entropy";
    template <class B, class T>
    static void forward(autograd::function_context<B, T>& ctx, tensor<T, B>& out, const tensor<T, B>& z,
                        const tensor<T, B>& y) {
        autograd::grad_target<T> g{};
        if (ctx.needs_input_grad(0)) {
            ctx.workspace(0).resize(z.shape());
            g.data = ctx.workspace(0).data();
        }
        write_loss_value(out, soft_cross_entropy_impl(z, y, g, 1.0));
    }
    template <class B, class T>
    static void backward(autograd::function_context<B, T>& ctx, const tensor<T, B>& dy, autograd::input_grads<B, T>& dx) {
        const auto& g = ctx.workspace(0);
        parallel_for(B{}, g.numel(), chain_saved_grad_fn<T>{dx.target(0), g.data(), dy.data()});
    }
};
}  // namespace detail

/// Cross-entropy against hard labels, PyTorch's F.cross_entropy(z, y, ignore_index=...).
/// @code
/// loss::cross_entropy ce{};                              // ignore_index -100, as PyTorch
/// double l = ce.value_and_grad(logits, labels, dlogits);  // logits [N,C,H,W], labels [N,H,W]
/// @endcode
struct cross_entropy {
    label_t ignore_index = -100;

    template <Backend B, class T>
    using target_type = tensor<label_t, B>;

    template <class T, Backend B>
    double value(const tensor<T, B>& logits, const tensor<label_t, B>& labels) const {
        return detail::cross_entropy_impl(logits, labels, ignore_index, autograd::grad_target<T>{}, 1.0);
    }
    /// Returns the loss; writes weight * dL/dlogits into dlogits (see grad_options).
    template <class T, Backend B>
    double value_and_grad(const tensor<T, B>& logits, const tensor<label_t, B>& labels, tensor<T, B>& dlogits,
                          const grad_options& o = {}) const {
        const auto g = detail::prepare_grad("tessel::loss::cross_entropy", logits, dlogits, o);
        return detail::cross_entropy_impl(logits, labels, ignore_index, g, o.weight);
    }
    /// Records the loss on the tape of `logits`; labels must stay alive until the call returns.
    template <Backend B, class T>
    autograd::var<B, T> operator()(const autograd::var<B, T>& logits, const tensor<label_t, B>& labels) const {
        return detail::cross_entropy_op::apply(logits, labels, ignore_index);
    }
};

/// Cross-entropy against class probabilities, PyTorch's F.cross_entropy(z, p) for float p.
struct soft_cross_entropy {
    template <Backend B, class T>
    using target_type = tensor<T, B>;

    template <class T, Backend B>
    double value(const tensor<T, B>& logits, const tensor<T, B>& targets) const {
        return detail::soft_cross_entropy_impl(logits, targets, autograd::grad_target<T>{}, 1.0);
    }
    template <class T, Backend B>
    double value_and_grad(const tensor<T, B>& logits, const tensor<T, B>& targets, tensor<T, B>& dlogits,
                          const grad_options& o = {}) const {
        const auto g = detail::prepare_grad("tessel::loss::soft_cross_entropy", logits, dlogits, o);
        return detail::soft_cross_entropy_impl(logits, targets, g, o.weight);
    }
    /// Records the loss; the targets are a constant (no gradient flows to them).
    template <Backend B, class T>
    autograd::var<B, T> operator()(const autograd::var<B, T>& logits, const tensor<T, B>& targets) const {
        return detail::soft_cross_entropy_op::apply(logits, targets);
    }
};

static_assert(Loss<cross_entropy, cpu_serial, float> && Loss<cross_entropy, cpu_omp, double>);
static_assert(Loss<soft_cross_entropy, cpu_serial, float> && Loss<soft_cross_entropy, cpu_omp, double>);

}  // namespace tessel::loss
