// tessel/nn/bn_tanh_dropout.hpp: batch norm -> tanh -> inverted dropout as one layer, NCHW.
//
// The unit after each hidden convolution of GraPL's patch network (METHODS.md 5.3), and of any
// network that stacks these three. As a chain of nn::batch_norm, nn::tanh and nn::dropout it
// keeps three activations and a mask per layer and makes five passes over them; fused it makes
// two passes forward and two backward and keeps only its output: the normalised values are
// recomputed from the saved input and statistics, and the dropout mask from its seed, since the
// mask is a counter-based hash of (seed, element index) as in nn::dropout. Semantics are exactly
// those of the chain: batch_norm's train-mode batch statistics (biased variance for normalising,
// unbiased with momentum for the running estimate) and eval-mode running statistics, the same
// tanh as nn::tanh (ops/vector_math.hpp on host floats, within 6 ulp of exact), and nn::dropout's
// mask for the same ctx.gen state (one seed per training forward).
// ops/bn_tanh_dropout.hpp is the same unit on direct-conv tiles, for methods/grapl_cnn.hpp.
#pragma once
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "tessel/backend/parallel.hpp"
#include "tessel/nn/batch_norm.hpp"
#include "tessel/nn/concepts.hpp"
#include "tessel/nn/dropout.hpp"
#include "tessel/ops/vector_math.hpp"

namespace tessel::nn {

namespace detail {

/// The dropout multiplier of element i: 0 with probability p, else 1 / (1 - p); 1 when off.
template <class T>
struct dropout_multiplier {
    std::uint64_t seed;
    double p;
    T scale;
    bool on;
    TESSEL_HD T operator()(index_t i) const {
        if (!on) return T(1);
        return counter_uniform01(seed, static_cast<std::uint64_t>(i)) < p ? T(0) : scale;
    }
};

template <class T>
struct bn_tanh_dropout_forward_fn {  // one (n, c) plane
    const T *x, *mean, *invstd, *gamma, *beta;
    T* y;
    dropout_multiplier<T> drop;
    index_t channels, plane;
    TESSEL_HD void operator()(index_t r) const {
        const index_t c = r % channels;
        const T mu = mean[c], is = invstd[c], g = gamma[c], b = beta[c];
        const T* in = x + r * plane;
        T* out = y + r * plane;
        for (index_t i = 0; i < plane; ++i) out[i] = std::tanh(g * (in[i] - mu) * is + b) * drop(r * plane + i);
    }
};

/// dz = dy * m * (1 - tanh^2) from the output y = tanh * m, where m is recomputed: where m = 0
/// the gradient is 0, elsewhere tanh = y / m.
template <class T>
TESSEL_HD inline T bn_tanh_dropout_dz(T dy, T y, T m) {
    if (m == T(0)) return T(0);
    const T t = y / m;
    return dy * m * (T(1) - t * t);
}

template <class T>
struct bn_tanh_dropout_sums_fn {  // one channel: dbeta = sum dz, dgamma = sum dz x_hat
    const T *x, *y, *dy, *mean, *invstd;
    T *dgamma, *dbeta;
    dropout_multiplier<T> drop;
    index_t batch, channels, plane;
    TESSEL_HD void operator()(index_t c) const {
        double s = 0, sx = 0;
        for (index_t n = 0; n < batch; ++n) {
            const index_t base = (n * channels + c) * plane;
            for (index_t i = 0; i < plane; ++i) {
                const T dz = bn_tanh_dropout_dz(dy[base + i], y[base + i], drop(base + i));
                s += static_cast<double>(dz);
                sx += static_cast<double>(dz) * static_cast<double>((x[base + i] - mean[c]) * invstd[c]);
            }
        }
        dbeta[c] = static_cast<T>(s);
        dgamma[c] = static_cast<T>(sx);
    }
};

template <class T>
struct bn_tanh_dropout_input_grad_fn {  // one (n, c) plane
    const T *x, *y, *dy, *mean, *invstd, *gamma, *dgamma, *dbeta;
    T* dx;
    dropout_multiplier<T> drop;
    index_t channels, plane;
    T count;
    bool training;
    TESSEL_HD void operator()(index_t r) const {
        const index_t c = r % channels;
        const T k = gamma[c] * invstd[c], mu = mean[c], is = invstd[c];
        const T a = dgamma[c] / count, b = dbeta[c] / count;
        const index_t base = r * plane;
        for (index_t i = 0; i < plane; ++i) {
            const T dz = bn_tanh_dropout_dz(dy[base + i], y[base + i], drop(base + i));
            dx[base + i] = training ? k * (dz - b - (x[base + i] - mu) * is * a) : k * dz;
        }
    }
};

}  // namespace detail

struct bn_tanh_dropout {
    static constexpr const char* name = "tessel::nn::bn_tanh_dropout";
    struct config {
        index_t channels = 0;
        double p = 0.2;  ///< dropout probability in [0, 1); active in training only
        double eps = 1e-5;
        double momentum = 0.1;
    };

    template <Backend B, class T = float>
    class bind {
    public:
        bind(const config& cfg, rng& init) : m_cfg(cfg), m_bn({cfg.channels, cfg.eps, cfg.momentum}, init) {
            expects(cfg.p >= 0 && cfg.p < 1, name, "p must lie in [0, 1), got ", cfg.p);
            m_dgamma.resize(shape{cfg.channels});
            m_dbeta.resize(shape{cfg.channels});
            m_mean.resize(shape{cfg.channels});
            m_invstd.resize(shape{cfg.channels});
        }

        const tensor<T, B>& forward(context<B>& ctx, const tensor<T, B>& x) {
            constexpr const char* where = "tessel::nn::bn_tanh_dropout::forward";
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
                             detail::bn_stats_fn<T>{x.data(), m_mean.data(), m_invstd.data(),
                                                    m_bn.running_mean().data(), m_bn.running_var().data(), N, C, P,
                                                    m_cfg.eps, m_cfg.momentum});
            } else {
                parallel_for(B{}, C,
                             detail::bn_running_fn<T>{m_bn.running_mean().data(), m_bn.running_var().data(),
                                                      m_mean.data(), m_invstd.data(), m_cfg.eps});
            }
            m_drop = {m_training && m_cfg.p > 0 ? ctx.gen.next() : 0, m_cfg.p, static_cast<T>(1.0 / (1.0 - m_cfg.p)),
                      m_training && m_cfg.p > 0};
            m_y.resize(x.shape());
            const detail::bn_tanh_dropout_forward_fn<T> plane_fn{x.data(), m_mean.data(), m_invstd.data(),
                                                                 m_bn.gamma().data(), m_bn.beta().data(), m_y.data(),
                                                                 m_drop, C, P};
            if constexpr (HostBackend<B> && std::is_same_v<T, float>) {
                // The tanh of a whole plane on the target's vectors (ops/vector_math.hpp) instead
                // of one libm call per element.
                parallel_for(B{}, N * C, [plane_fn](index_t r) {
                    const index_t c = r % plane_fn.channels, P = plane_fn.plane;
                    const float mu = plane_fn.mean[c], is = plane_fn.invstd[c], g = plane_fn.gamma[c], b = plane_fn.beta[c];
                    const float* in = plane_fn.x + r * P;
                    float* out = plane_fn.y + r * P;
                    for (index_t i = 0; i < P; ++i) out[i] = g * (in[i] - mu) * is + b;
                    ops::vmath::tanh_inplace(out, P);
                    if (plane_fn.drop.on)
                        for (index_t i = 0; i < P; ++i) out[i] *= plane_fn.drop(r * P + i);
                });
            } else {
                parallel_for(B{}, N * C, plane_fn);
            }
            m_x = &x;
            return m_y;
        }

        /// Reads the saved input, the statistics and the output (not overwritable).
        const tensor<T, B>& backward(context<B>&, const tensor<T, B>& dy) {
            constexpr const char* where = "tessel::nn::bn_tanh_dropout::backward";
            expects(m_x != nullptr, where, "backward called before forward");
            expects(dy.shape() == m_y.shape(), where, "output gradient of shape ", dy.shape().str(),
                    " does not match the forward output ", m_y.shape().str());
            const index_t N = dy.dim(0), C = m_cfg.channels, P = dy.dim(2) * dy.dim(3);
            parallel_for(B{}, C,
                         detail::bn_tanh_dropout_sums_fn<T>{m_x->data(), m_y.data(), dy.data(), m_mean.data(),
                                                            m_invstd.data(), m_dgamma.data(), m_dbeta.data(), m_drop,
                                                            N, C, P});
            m_dx.resize(dy.shape());
            parallel_for(B{}, N * C,
                         detail::bn_tanh_dropout_input_grad_fn<T>{
                             m_x->data(), m_y.data(), dy.data(), m_mean.data(), m_invstd.data(), m_bn.gamma().data(),
                             m_dgamma.data(), m_dbeta.data(), m_dx.data(), m_drop, C, P, static_cast<T>(N * P),
                             m_training});
            return m_dx;
        }

        parameter_list<T, B> parameters() {
            return {{&m_bn.gamma(), &m_dgamma, "gamma"}, {&m_bn.beta(), &m_dbeta, "beta"}};
        }
        buffer_list<T, B> buffers() { return m_bn.buffers(); }

        tensor<T, B>& gamma() noexcept { return m_bn.gamma(); }
        tensor<T, B>& beta() noexcept { return m_bn.beta(); }
        tensor<T, B>& running_mean() noexcept { return m_bn.running_mean(); }
        tensor<T, B>& running_var() noexcept { return m_bn.running_var(); }

    private:
        config m_cfg;
        batch_norm::bind<B, T> m_bn;  // holds gamma, beta and the running statistics
        tensor<T, B> m_dgamma, m_dbeta, m_mean, m_invstd, m_y, m_dx;
        detail::dropout_multiplier<T> m_drop{0, 0.0, T(1), false};
        const tensor<T, B>* m_x = nullptr;
        bool m_training = true;
    };
};

static_assert(LayerSpec<bn_tanh_dropout>);
static_assert(Layer<bn_tanh_dropout::bind<cpu_serial>, cpu_serial>);

}  // namespace tessel::nn
