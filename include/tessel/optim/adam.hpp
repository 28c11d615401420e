// tessel/optim/adam.hpp: Adam and AdamW, PyTorch's torch.optim.Adam / AdamW (no amsgrad).
//
// Per element at step t (from 1), g the gradient:
//   Adam:   g += weight_decay * p                    (L2 penalty folded into the gradient)
//   AdamW:  p *= 1 - lr * weight_decay               (decoupled decay, default 0.01)
//   m = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2
//   p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// eps is added after the square root of the bias-corrected second moment, as PyTorch does.
// GraPL trains with Adam lr 0.01 (METHODS.md §5).
#pragma once
#include <cmath>
#include <type_traits>
#include <vector>

#include "tessel/optim/concepts.hpp"

namespace tessel::optim {

namespace detail {
template <class T>
struct adam_fn {
    T* p;
    const T* g;
    T *m, *v;
    T beta1, beta2, eps, weight_decay, decay_factor, step_size, bc2_sqrt;
    bool decoupled;
    TESSEL_HD void operator()(index_t i) const {
        T grad = g[i];
        if (decoupled)
            p[i] *= decay_factor;
        else if (weight_decay != T(0))
            grad += weight_decay * p[i];
        m[i] += (T(1) - beta1) * (grad - m[i]);
        v[i] = beta2 * v[i] + (T(1) - beta2) * grad * grad;
        const T denom = std::sqrt(v[i]) / bc2_sqrt + eps;
        p[i] -= step_size * m[i] / denom;
    }
};

struct adam_config {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.0;
};
/// AdamW's settings: Adam's, with PyTorch's AdamW default weight decay.
struct adamw_config {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.01;
};

template <Backend B, class T, bool Decoupled>
class adam_impl {
public:
    using config = std::conditional_t<Decoupled, adamw_config, adam_config>;
    static constexpr std::string_view where = Decoupled ? "tessel::optim::adamw" : "tessel::optim::adam";

    adam_impl(nn::parameter_list<T, B> params, const config& cfg) : m_params(std::move(params)), m_cfg(cfg) {
        check_setting(where, cfg.lr >= 0, "lr", cfg.lr);
        check_setting(where, cfg.beta1 >= 0 && cfg.beta1 < 1, "beta1", cfg.beta1);
        check_setting(where, cfg.beta2 >= 0 && cfg.beta2 < 1, "beta2", cfg.beta2);
        check_setting(where, cfg.eps >= 0, "eps", cfg.eps);
        check_setting(where, cfg.weight_decay >= 0, "weight_decay", cfg.weight_decay);
        m_shapes = check_parameters(where, m_params);
        for (const auto& s : m_shapes) {
            m_m.emplace_back(s);
            m_v.emplace_back(s);
        }
    }

    void step() {
        check_step(where, m_params, m_shapes);
        ++m_steps;
        // Scalars in double, as PyTorch computes them in Python floats.
        const double t = static_cast<double>(m_steps);
        const double bc1 = 1.0 - std::pow(m_cfg.beta1, t);
        const double bc2 = 1.0 - std::pow(m_cfg.beta2, t);
        for (std::size_t k = 0; k < m_params.size(); ++k) {
            auto& p = m_params[k];
            parallel_for(B{}, p.value->numel(),
                         adam_fn<T>{p.value->data(), p.grad->data(), m_m[k].data(), m_v[k].data(),
                                    static_cast<T>(m_cfg.beta1), static_cast<T>(m_cfg.beta2),
                                    static_cast<T>(m_cfg.eps), static_cast<T>(m_cfg.weight_decay),
                                    static_cast<T>(1.0 - m_cfg.lr * m_cfg.weight_decay),
                                    static_cast<T>(m_cfg.lr / bc1), static_cast<T>(std::sqrt(bc2)), Decoupled});
        }
    }
    void zero_grad() { optim::zero_grad(m_params); }
    [[nodiscard]] double learning_rate() const noexcept { return m_cfg.lr; }
    void set_learning_rate(double lr) {
        check_setting(where, lr >= 0, "lr", lr);
        m_cfg.lr = lr;
    }
    [[nodiscard]] const nn::parameter_list<T, B>& parameters() const noexcept { return m_params; }
    [[nodiscard]] const config& settings() const noexcept { return m_cfg; }
    [[nodiscard]] index_t steps() const noexcept { return m_steps; }
    /// The moments per parameter (in parameters() order) and the step count, for checkpoints
    /// that resume training exactly (examples/train.cpp).
    std::vector<tensor<T, B>>& first_moments() noexcept { return m_m; }
    std::vector<tensor<T, B>>& second_moments() noexcept { return m_v; }
    void set_steps(index_t steps) {
        check_setting(where, steps >= 0, "steps", static_cast<double>(steps));
        m_steps = steps;
    }
    /// Zeroes the moments and the step count.
    void reset_state() {
        for (std::size_t k = 0; k < m_m.size(); ++k) {
            parallel_for(B{}, m_m[k].numel(), autograd::detail::fill_fn<T>{m_m[k].data(), T(0)});
            parallel_for(B{}, m_v[k].numel(), autograd::detail::fill_fn<T>{m_v[k].data(), T(0)});
        }
        m_steps = 0;
    }

private:
    nn::parameter_list<T, B> m_params;
    config m_cfg;
    std::vector<shape> m_shapes;
    std::vector<tensor<T, B>> m_m, m_v;  // first and second moments
    index_t m_steps = 0;
};
}  // namespace detail

/// Adam; weight_decay (default 0) is an L2 penalty added to the gradient.
/// @code optim::adam::bind<cpu_omp> opt(params, {.lr = 0.01}); @endcode
struct adam {
    using config = detail::adam_config;
    template <Backend B, class T = float>
    using bind = detail::adam_impl<B, T, false>;
};

/// AdamW; weight_decay (default 0.01) shrinks the weights directly, decoupled from the moments.
struct adamw {
    using config = detail::adamw_config;
    template <Backend B, class T = float>
    using bind = detail::adam_impl<B, T, true>;
};

static_assert(OptimizerSpec<adam, cpu_serial, float> && OptimizerSpec<adam, cpu_omp, double>);
static_assert(OptimizerSpec<adamw, cpu_serial, float>);

}  // namespace tessel::optim
