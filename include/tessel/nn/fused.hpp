// tessel/nn/fused.hpp: PiCNet's fused activation, y = w_relu * relu(x) + w_tanh * tanh(x).
//
// The PiCNet summary (papers/000_ea1617b28a568a4f.txt) says only "a weighted sum of ReLU and
// tanh"; the weights are left open. METHODS.md §8.2 proposes a convex mix a*relu + (1-a)*tanh
// with a fixed a = 0.5, and as an option a learnable a initialised to 0.5 and clamped to [0, 1].
// This block does both, in one node with a hand-derived backward (no relu/tanh/scale/add chain):
//   * default: fixed weights (0.5, 0.5), no parameters;
//   * learnable = true, convex = true: one parameter "mix" = a, used as clamp(a, 0, 1);
//   * learnable = true, convex = false: two free parameters "weights" = (w_relu, w_tanh).
// See docs/nn_blocks.md.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <type_traits>

#include "tessel/backend/parallel.hpp"
#include "tessel/ops/vector_math.hpp"
#include "tessel/nn/concepts.hpp"
#include "tessel/nn/detail/checks.hpp"

namespace tessel::nn {

namespace detail {

/// The effective (w_relu, w_tanh): from the config when p is null, else read from the parameter
/// on the device, so a learnable weight never needs a copy to the host.
template <class T>
struct fused_weights {
    const T* p;
    T fixed_relu, fixed_tanh;
    bool convex;
    TESSEL_HD void get(T& wr, T& wt) const {
        if (p == nullptr) {
            wr = fixed_relu;
            wt = fixed_tanh;
        } else if (convex) {
            const T a = p[0] < T(0) ? T(0) : (p[0] > T(1) ? T(1) : p[0]);
            wr = a;
            wt = T(1) - a;
        } else {
            wr = p[0];
            wt = p[1];
        }
    }
};

template <class T>
struct fused_forward_fn {
    fused_weights<T> w;
    const T* x;
    T* y;
    TESSEL_HD void operator()(index_t i) const {
        T wr, wt;
        w.get(wr, wt);
        const T v = x[i];
        y[i] = wr * (v > T(0) ? v : T(0)) + wt * std::tanh(v);
    }
};

// dy/dx = w_relu * [x > 0] + w_tanh * (1 - tanh^2 x); the relu gradient at 0 is 0, as in PyTorch.
template <class T>
struct fused_backward_fn {
    fused_weights<T> w;
    const T* x;
    const T* dy;
    T* dx;
    TESSEL_HD void operator()(index_t i) const {
        T wr, wt;
        w.get(wr, wt);
        const T t = std::tanh(x[i]);
        dx[i] = dy[i] * ((x[i] > T(0) ? wr : T(0)) + wt * (T(1) - t * t));
    }
};

/// One term of a weight gradient: dy * relu(x), dy * tanh(x), or dy * (relu(x) - tanh(x)) (the
/// derivative with respect to the convex mix a).
template <class T>
struct fused_weight_grad_fn {
    enum term_t { relu_term, tanh_term, mix_term };
    const T* x;
    const T* dy;
    term_t term;
    TESSEL_HD T operator()(index_t i) const {
        const T r = x[i] > T(0) ? x[i] : T(0);
        const T t = std::tanh(x[i]);
        return dy[i] * (term == relu_term ? r : (term == tanh_term ? t : r - t));
    }
};

}  // namespace detail

struct fused_relu_tanh {
    static constexpr const char* name = "tessel::nn::fused_relu_tanh";
    struct config {
        double relu_weight = 0.5;  ///< w_relu; with convex = true, the mix a (in [0, 1])
        double tanh_weight = 0.5;  ///< w_tanh; with convex = true it must equal 1 - relu_weight
        bool learnable = false;    ///< fixed weights (default, METHODS.md §8.2) or trained ones
        /// true: the weights are (a, 1 - a), a learnable a is clamped to [0, 1] in the forward
        /// pass (gradient 0 once outside, as torch.clamp); false: two independent weights.
        bool convex = true;
    };

    template <Backend B, class T = float>
    class bind {
    public:
        bind() : bind(config{}) {}
        bind(const config& cfg, rng&) : bind(cfg) {}

        const tensor<T, B>& forward(context<B>&, const tensor<T, B>& x) {
            detail::expect_nonempty(name, x);
            m_x = &x;
            m_y.resize(x.shape());
            if constexpr (host_float) {
                const auto w = weights();
                const float* xs = x.data();
                float* ys = m_y.data();
                for_host_blocks(x.numel(), [=](index_t i0, index_t len, const float* t) {
                    float wr, wt;
                    w.get(wr, wt);
                    for (index_t i = 0; i < len; ++i) ys[i0 + i] = wr * std::max(xs[i0 + i], 0.0f) + wt * t[i];
                }, xs);
            } else {
                parallel_for(B{}, x.numel(), detail::fused_forward_fn<T>{weights(), x.data(), m_y.data()});
            }
            return m_y;
        }
        const tensor<T, B>& backward(context<B>& ctx, const tensor<T, B>& dy) {
            backward_into(ctx, dy, m_dx);
            return m_dx;
        }
        /// The input gradient into dx (not aliasing dy): containers lend a shared buffer, so the
        /// layer keeps none of its own (nn::BackwardsInto).
        void backward_into(context<B>&, const tensor<T, B>& dy, tensor<T, B>& dx_out) {
            expects(m_x != nullptr, name, "backward called before forward");
            expect_same_shape(name, dy, m_y);
            dx_out.resize(dy.shape());
            const index_t n = dy.numel();
            if constexpr (host_float) {
                const auto w = weights();
                const float *xs = m_x->data(), *g = dy.data();
                float* dx = dx_out.data();
                for_host_blocks(n, [=](index_t i0, index_t len, const float* t) {
                    float wr, wt;
                    w.get(wr, wt);
                    for (index_t i = 0; i < len; ++i)
                        dx[i0 + i] = g[i0 + i] * ((xs[i0 + i] > 0.0f ? wr : 0.0f) + wt * (1.0f - t[i] * t[i]));
                }, xs);
            } else {
                parallel_for(B{}, n, detail::fused_backward_fn<T>{weights(), m_x->data(), dy.data(), dx_out.data()});
            }
            if (m_cfg.learnable) {
                using g = detail::fused_weight_grad_fn<T>;
                if (m_cfg.convex) {
                    // torch.clamp passes the gradient on [0, 1] inclusive, so a at a bound can move back.
                    T a;
                    if constexpr (HostBackend<B>)
                        a = m_param[0];
                    else
                        a = m_param.to_vector()[0];
                    const T da = (a >= T(0) && a <= T(1))
                                     ? parallel_sum(B{}, n, T(0), g{m_x->data(), dy.data(), g::mix_term})
                                     : T(0);
                    const std::array<T, 1> host{da};
                    m_grad.assign(m_param.shape(), host.begin(), host.end());
                } else {
                    const std::array<T, 2> host{parallel_sum(B{}, n, T(0), g{m_x->data(), dy.data(), g::relu_term}),
                                                parallel_sum(B{}, n, T(0), g{m_x->data(), dy.data(), g::tanh_term})};
                    m_grad.assign(m_param.shape(), host.begin(), host.end());
                }
            }
        }
        parameter_list<T, B> parameters() {
            if (!m_cfg.learnable) return {};
            return {{&m_param, &m_grad, m_cfg.convex ? "mix" : "weights"}};
        }
        /// The weights in use now, (w_relu, w_tanh), after clamping.
        [[nodiscard]] std::array<double, 2> current_weights() const {
            if (!m_cfg.learnable) return {m_cfg.relu_weight, m_cfg.tanh_weight};
            const auto p = m_param.to_vector();
            if (m_cfg.convex) {
                const double a = std::min(1.0, std::max(0.0, static_cast<double>(p[0])));
                return {a, 1.0 - a};
            }
            return {static_cast<double>(p[0]), static_cast<double>(p[1])};
        }

    private:
        static constexpr bool host_float = HostBackend<B> && std::is_same_v<T, float>;

        /// Host float tensors: runs body(first, count, tanh of x[first, first + count)) over
        /// blocks of the n elements on the backend's threads, with the tanh of each block computed
        /// on the target's vectors (ops/vector_math.hpp) into a stack buffer instead of one libm
        /// call per element.
        template <class Body>
        static void for_host_blocks(index_t n, Body body, const float* x) {
            constexpr index_t block = 2048;
            parallel_for(B{}, (n + block - 1) / block, [=](index_t b) {
                const index_t i0 = b * block, len = std::min(block, n - i0);
                float t[block];
                ops::vmath::tanh(x + i0, t, len);
                body(i0, len, t);
            });
        }

        explicit bind(const config& cfg) : m_cfg(cfg) {
            expects(std::isfinite(cfg.relu_weight) && std::isfinite(cfg.tanh_weight), name,
                    "weights must be finite, got relu_weight ", cfg.relu_weight, " and tanh_weight ",
                    cfg.tanh_weight);
            if (cfg.convex) {
                expects(cfg.relu_weight >= 0 && cfg.relu_weight <= 1, name,
                        "with convex = true relu_weight is the mix a and must lie in [0, 1], got ",
                        cfg.relu_weight);
                expects(std::abs(cfg.tanh_weight - (1 - cfg.relu_weight)) <= 1e-12, name,
                        "with convex = true tanh_weight must be 1 - relu_weight = ", 1 - cfg.relu_weight,
                        ", got ", cfg.tanh_weight, " (set convex = false for independent weights)");
            }
            if (cfg.learnable) {
                const std::array<T, 2> init{static_cast<T>(cfg.relu_weight), static_cast<T>(cfg.tanh_weight)};
                const shape s = cfg.convex ? shape{1} : shape{2};
                m_param.assign(s, init.begin(), init.begin() + s[0]);
                m_grad = tensor<T, B>(s);
            }
        }
        detail::fused_weights<T> weights() const {
            return {m_cfg.learnable ? m_param.data() : nullptr, static_cast<T>(m_cfg.relu_weight),
                    static_cast<T>(m_cfg.tanh_weight), m_cfg.convex};
        }

        config m_cfg{};
        tensor<T, B> m_param, m_grad;
        const tensor<T, B>* m_x = nullptr;
        tensor<T, B> m_y, m_dx;
    };
};

static_assert(LayerSpec<fused_relu_tanh>);
static_assert(Layer<fused_relu_tanh::bind<cpu_serial>, cpu_serial>);

}  // namespace tessel::nn
