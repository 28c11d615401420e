// tessel/nn/batch_norm.hpp: 2-d batch normalisation (PyTorch's BatchNorm2d), NCHW.
//
// Train mode (context::training) normalises each channel with its batch mean and *biased*
// variance over (N, H, W), and updates the running statistics with momentum m (0.1) using the
// *unbiased* variance: r <- (1 - m) r + m s. Eval mode normalises with the running statistics.
// y = gamma * (x - mean) / sqrt(var + eps) + beta, gamma = 1 and beta = 0 initially, eps = 1e-5
// (METHODS.md §1.2). Per-channel sums accumulate in double; loops are TESSEL_HD functors.
#pragma once
#include <cmath>

#include "tessel/backend/parallel.hpp"
#include "tessel/nn/concepts.hpp"

namespace tessel::nn {

namespace detail {

/// s1 += sum (a - shift), s2 += sum (a - shift)^2 over n values, in double with 8 independent
/// lanes: strict FP semantics forbid the compiler from vectorising a single running sum, but
/// eight separate sums vectorise (and are more accurate, too).
template <class T>
TESSEL_HD void shifted_sums(const T* a, index_t n, double shift, double& s1, double& s2) {
    double l1[8] = {0, 0, 0, 0, 0, 0, 0, 0}, l2[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    index_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; ++j) {
            const double d = static_cast<double>(a[i + j]) - shift;
            l1[j] += d;
            l2[j] += d * d;
        }
    for (; i < n; ++i) {
        const double d = static_cast<double>(a[i]) - shift;
        l1[0] += d;
        l2[0] += d * d;
    }
    for (int j = 0; j < 8; ++j) {
        s1 += l1[j];
        s2 += l2[j];
    }
}

/// sd += sum g, sdx += sum g (x - mu), with the same lane structure as shifted_sums.
template <class T>
TESSEL_HD void grad_sums(const T* g, const T* x, index_t n, double mu, double& sd, double& sdx) {
    double l1[8] = {0, 0, 0, 0, 0, 0, 0, 0}, l2[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    index_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; ++j) {
            const double gj = static_cast<double>(g[i + j]);
            l1[j] += gj;
            l2[j] += gj * (static_cast<double>(x[i + j]) - mu);
        }
    for (; i < n; ++i) {
        const double gj = static_cast<double>(g[i]);
        l1[0] += gj;
        l2[0] += gj * (static_cast<double>(x[i]) - mu);
    }
    for (int j = 0; j < 8; ++j) {
        sd += l1[j];
        sdx += l2[j];
    }
}

/// mean[c], var[c] (biased) and invstd[c] over (N, plane); updates the running statistics.
template <class T>
struct bn_stats_fn {
    const T* x;
    T *mean, *invstd, *running_mean, *running_var;
    index_t batch, channels, plane;
    double eps, momentum;
    TESSEL_HD void operator()(index_t c) const {
        const double count = static_cast<double>(batch * plane);
        // One pass over the data, shifted by the channel's first value so that E[d^2] - E[d]^2
        // does not cancel catastrophically when |mean| >> std.
        const double shift = static_cast<double>(x[c * plane]);
        double s1 = 0, s2 = 0;
        for (index_t n = 0; n < batch; ++n) shifted_sums(x + (n * channels + c) * plane, plane, shift, s1, s2);
        const double md = s1 / count, mu = shift + md;
        double ss = s2 - s1 * md;  // sum of squared deviations from the mean
        if (ss < 0) ss = 0;
        const double var = ss / count;
        mean[c] = static_cast<T>(mu);
        invstd[c] = static_cast<T>(1.0 / std::sqrt(var + eps));
        running_mean[c] = static_cast<T>((1 - momentum) * static_cast<double>(running_mean[c]) + momentum * mu);
        running_var[c] = static_cast<T>((1 - momentum) * static_cast<double>(running_var[c]) +
                                        momentum * ss / (count - 1));
    }
};

/// Eval mode: mean and invstd from the running statistics.
template <class T>
struct bn_running_fn {
    const T *running_mean, *running_var;
    T *mean, *invstd;
    double eps;
    TESSEL_HD void operator()(index_t c) const {
        mean[c] = running_mean[c];
        invstd[c] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps));
    }
};

/// y = gamma (x - mean) invstd + beta; work item = one (n, c) plane.
template <class T>
struct bn_apply_fn {
    const T *x, *mean, *invstd, *gamma, *beta;
    T* y;
    index_t channels, plane;
    TESSEL_HD void operator()(index_t r) const {
        const index_t c = r % channels;
        const T scale = gamma[c] * invstd[c], shift = beta[c] - mean[c] * scale;
        const T* in = x + r * plane;
        T* out = y + r * plane;
        for (index_t i = 0; i < plane; ++i) out[i] = in[i] * scale + shift;
    }
};

/// dbeta[c] = sum dy, dgamma[c] = sum dy * xhat over (N, plane).
template <class T>
struct bn_grad_sums_fn {
    const T *x, *dy, *mean, *invstd;
    T *dgamma, *dbeta;
    index_t batch, channels, plane;
    TESSEL_HD void operator()(index_t c) const {
        double sd = 0, sdx = 0;
        const double mu = static_cast<double>(mean[c]), is = static_cast<double>(invstd[c]);
        for (index_t n = 0; n < batch; ++n) {
            const index_t off = (n * channels + c) * plane;
            grad_sums(dy + off, x + off, plane, mu, sd, sdx);
        }
        sdx *= is;
        dbeta[c] = static_cast<T>(sd);
        dgamma[c] = static_cast<T>(sdx);
    }
};

/// Train mode: dx = gamma invstd / M (M dy - dbeta - xhat dgamma), M = N * plane.
/// Eval mode (statistics are constants): dx = gamma invstd dy.
template <class T>
struct bn_input_grad_fn {
    const T *x, *dy, *mean, *invstd, *gamma, *dgamma, *dbeta;
    T* dx;
    index_t channels, plane;
    T count;
    bool training;
    TESSEL_HD void operator()(index_t r) const {
        const index_t c = r % channels;
        const T is = invstd[c], k = gamma[c] * is;
        const T* in = x + r * plane;
        const T* g = dy + r * plane;
        T* out = dx + r * plane;
        if (!training) {
            for (index_t i = 0; i < plane; ++i) out[i] = k * g[i];
            return;
        }
        const T mu = mean[c], a = dgamma[c] / count, b = dbeta[c] / count;
        for (index_t i = 0; i < plane; ++i) out[i] = k * (g[i] - b - (in[i] - mu) * is * a);
    }
};

}  // namespace detail

struct batch_norm {
    struct config {
        index_t channels = 0;
        double eps = 1e-5;
        double momentum = 0.1;
    };

    template <Backend B, class T = float>
    class bind {
    public:
        bind(const config& cfg, rng&) : m_cfg(cfg) {
            constexpr const char* where = "tessel::nn::batch_norm";
            expects(cfg.channels > 0, where, "channels must be positive, got ", cfg.channels);
            expects(cfg.eps > 0, where, "eps must be positive, got ", cfg.eps);
            expects(cfg.momentum >= 0 && cfg.momentum <= 1, where, "momentum must be in [0, 1], got ", cfg.momentum);
            const shape s{cfg.channels};
            m_gamma = tensor<T, B>(s, T(1));
            m_beta = tensor<T, B>(s, T(0));
            m_running_mean = tensor<T, B>(s, T(0));
            m_running_var = tensor<T, B>(s, T(1));
            m_dgamma.resize(s);
            m_dbeta.resize(s);
            m_mean.resize(s);
            m_invstd.resize(s);
        }

        const tensor<T, B>& forward(context<B>& ctx, const tensor<T, B>& x) {
            if (m_released) ctx.scratch.take(m_y, x.numel());  // the memory lent in release_output
            m_released = false;
            forward_into(ctx, x, m_y);
            return m_y;
        }
        /// The output can be dropped once the next layer has read it and rebuilt before that
        /// layer's backward (nn::ReleasesOutput), from the saved input and statistics in one
        /// elementwise pass. sequential does so when the next layer keeps its input for backward
        /// (a conv, PiCNet's fused activation, ECA), so that the normalised map takes no memory
        /// between forward and backward: 40 MB per 64-channel map at 481 x 321.
        void release_output(context<B>& ctx) {
            if (m_released || m_y.numel() == 0 || m_x == nullptr) return;
            ctx.scratch.donate(m_y);
            m_released = true;
        }
        void restore_output(context<B>& ctx) {
            if (!m_released) return;
            ctx.scratch.take(m_y, m_x->numel());
            m_y.resize(m_x->shape());
            const index_t C = m_cfg.channels, P = m_x->dim(2) * m_x->dim(3);
            parallel_for(B{}, m_x->dim(0) * C,
                         detail::bn_apply_fn<T>{m_x->data(), m_mean.data(), m_invstd.data(), m_gamma.data(),
                                                m_beta.data(), m_y.data(), C, P});
            m_released = false;
        }
        /// The output into y (see nn::ForwardsInto); backward needs only x and the statistics.
        void forward_into(context<B>& ctx, const tensor<T, B>& x, tensor<T, B>& y) {
            constexpr const char* where = "tessel::nn::batch_norm::forward";
            expects(x.rank() == 4, where, "expects an NCHW tensor, got shape ", x.shape().str());
            expects(x.numel() > 0, where, "empty input of shape ", x.shape().str());
            expects(x.dim(1) == m_cfg.channels, where, "input has ", x.dim(1), " channels, the layer expects ",
                    m_cfg.channels, " (input shape ", x.shape().str(), ")");
            const index_t N = x.dim(0), C = m_cfg.channels, P = x.dim(2) * x.dim(3);
            m_training = ctx.training;
            if (m_training) {
                expects(N * P > 1, where, "train mode needs more than one value per channel, got input shape ",
                        x.shape().str());
                parallel_for(B{}, C,
                             detail::bn_stats_fn<T>{x.data(), m_mean.data(), m_invstd.data(), m_running_mean.data(),
                                                    m_running_var.data(), N, C, P, m_cfg.eps, m_cfg.momentum});
            } else {
                parallel_for(B{}, C,
                             detail::bn_running_fn<T>{m_running_mean.data(), m_running_var.data(), m_mean.data(),
                                                      m_invstd.data(), m_cfg.eps});
            }
            y.resize(x.shape());
            parallel_for(B{}, N * C,
                         detail::bn_apply_fn<T>{x.data(), m_mean.data(), m_invstd.data(), m_gamma.data(),
                                                m_beta.data(), y.data(), C, P});
            m_x = &x;
        }

        const tensor<T, B>& backward(context<B>& ctx, const tensor<T, B>& dy) {
            backward_into(ctx, dy, m_dx);
            return m_dx;
        }
        /// Reads the saved input and statistics, never the output (which may have been
        /// overwritten in place, e.g. by a ReLU).
        static constexpr bool overwritable_output = true;
        void backward_into(context<B>&, const tensor<T, B>& dy, tensor<T, B>& dx) {
            constexpr const char* where = "tessel::nn::batch_norm::backward";
            expects(m_x != nullptr, where, "backward called before forward");
            expects(dy.shape() == m_x->shape(), where, "output gradient of shape ", dy.shape().str(),
                    " does not match the forward output ", m_x->shape().str());
            const index_t N = dy.dim(0), C = m_cfg.channels, P = dy.dim(2) * dy.dim(3);
            parallel_for(B{}, C,
                         detail::bn_grad_sums_fn<T>{m_x->data(), dy.data(), m_mean.data(), m_invstd.data(),
                                                    m_dgamma.data(), m_dbeta.data(), N, C, P});
            dx.resize(dy.shape());
            parallel_for(B{}, N * C,
                         detail::bn_input_grad_fn<T>{m_x->data(), dy.data(), m_mean.data(), m_invstd.data(),
                                                     m_gamma.data(), m_dgamma.data(), m_dbeta.data(), dx.data(), C,
                                                     P, static_cast<T>(N * P), m_training});
        }

        parameter_list<T, B> parameters() { return {{&m_gamma, &m_dgamma, "gamma"}, {&m_beta, &m_dbeta, "beta"}}; }
        buffer_list<T, B> buffers() {
            return {{&m_running_mean, "running_mean"}, {&m_running_var, "running_var", true}};
        }

        tensor<T, B>& gamma() noexcept { return m_gamma; }
        tensor<T, B>& beta() noexcept { return m_beta; }
        tensor<T, B>& running_mean() noexcept { return m_running_mean; }
        tensor<T, B>& running_var() noexcept { return m_running_var; }

    private:
        config m_cfg;
        tensor<T, B> m_gamma, m_beta, m_dgamma, m_dbeta, m_running_mean, m_running_var;
        tensor<T, B> m_mean, m_invstd, m_y, m_dx;
        const tensor<T, B>* m_x = nullptr;
        bool m_training = true;
        bool m_released = false;  ///< m_y's memory is lent to ctx.scratch (release_output)
    };
};

static_assert(LayerSpec<batch_norm>);
static_assert(Layer<batch_norm::bind<cpu_serial>, cpu_serial>);

}  // namespace tessel::nn
