// tessel/optim/sgd.hpp: stochastic gradient descent with momentum, PyTorch's torch.optim.SGD.
//
// Per element, with d = g + weight_decay * p:
//   momentum != 0:  buf = d on the first step, then buf = momentum * buf + (1 - dampening) * d;
//                   d = nesterov ? d + momentum * buf : buf
//   p -= lr * d
// Kanezaki 2018 and Kim 2020 train with lr 0.1, momentum 0.9 (METHODS.md §2.4).
#pragma once
#include <vector>

#include "tessel/optim/concepts.hpp"

namespace tessel::optim {

namespace detail {
template <class T>
struct sgd_fn {
    T* p;
    const T* g;
    T* buf;  // null without momentum
    T lr, momentum, dampening, weight_decay;
    bool first, nesterov;
    TESSEL_HD void operator()(index_t i) const {
        T d = g[i];
        if (weight_decay != T(0)) d += weight_decay * p[i];
        if (buf) {
            const T b = first ? d : momentum * buf[i] + (T(1) - dampening) * d;
            buf[i] = b;
            d = nesterov ? d + momentum * b : b;
        }
        p[i] -= lr * d;
    }
};
}  // namespace detail

struct sgd {
    struct config {
        double lr = 1e-3;
        double momentum = 0.0;
        double dampening = 0.0;
        double weight_decay = 0.0;
        bool nesterov = false;
    };

    /// @code
    /// optim::sgd::bind<cpu_omp> opt(net.parameters(), {.lr = 0.1, .momentum = 0.9});
    /// for (...) { ...; net.backward(ctx, dy); opt.step(); }
    /// @endcode
    template <Backend B, class T = float>
    class bind {
    public:
        bind(nn::parameter_list<T, B> params, const config& cfg) : m_params(std::move(params)), m_cfg(cfg) {
            constexpr std::string_view where = "tessel::optim::sgd";
            detail::check_setting(where, cfg.lr >= 0, "lr", cfg.lr);
            detail::check_setting(where, cfg.momentum >= 0, "momentum", cfg.momentum);
            detail::check_setting(where, cfg.dampening >= 0 && cfg.dampening <= 1, "dampening", cfg.dampening);
            detail::check_setting(where, cfg.weight_decay >= 0, "weight_decay", cfg.weight_decay);
            expects(!cfg.nesterov || (cfg.momentum > 0 && cfg.dampening == 0), where,
                    "nesterov needs momentum > 0 and dampening 0, got momentum ", cfg.momentum, " and dampening ",
                    cfg.dampening);
            m_shapes = detail::check_parameters(where, m_params);
            if (cfg.momentum != 0)
                for (const auto& s : m_shapes) m_buf.emplace_back(s);
        }

        void step() {
            detail::check_step("tessel::optim::sgd::step", m_params, m_shapes);
            for (std::size_t k = 0; k < m_params.size(); ++k) {
                auto& p = m_params[k];
                parallel_for(B{}, p.value->numel(),
                             detail::sgd_fn<T>{p.value->data(), p.grad->data(),
                                               m_cfg.momentum != 0 ? m_buf[k].data() : nullptr,
                                               static_cast<T>(m_cfg.lr), static_cast<T>(m_cfg.momentum),
                                               static_cast<T>(m_cfg.dampening), static_cast<T>(m_cfg.weight_decay),
                                               m_steps == 0, m_cfg.nesterov});
            }
            ++m_steps;
        }
        void zero_grad() { optim::zero_grad(m_params); }
        [[nodiscard]] double learning_rate() const noexcept { return m_cfg.lr; }
        void set_learning_rate(double lr) {
            detail::check_setting("tessel::optim::sgd::set_learning_rate", lr >= 0, "lr", lr);
            m_cfg.lr = lr;
        }
        [[nodiscard]] const nn::parameter_list<T, B>& parameters() const noexcept { return m_params; }
        [[nodiscard]] const config& settings() const noexcept { return m_cfg; }
        [[nodiscard]] index_t steps() const noexcept { return m_steps; }
        /// Forgets the momentum buffers (the next step starts them again from the gradient).
        void reset_state() noexcept { m_steps = 0; }

    private:
        nn::parameter_list<T, B> m_params;
        config m_cfg;
        std::vector<shape> m_shapes;      // at bind time
        std::vector<tensor<T, B>> m_buf;  // momentum buffers (none without momentum)
        index_t m_steps = 0;
    };
};

static_assert(OptimizerSpec<sgd, cpu_serial, float> && OptimizerSpec<sgd, cpu_omp, double>);

}  // namespace tessel::optim
