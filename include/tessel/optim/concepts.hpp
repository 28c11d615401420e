// tessel/optim/concepts.hpp: the contract of an optimizer, and helpers every optimizer uses.
//
// Optimizers follow the layers' spec/bind split: optim::sgd is a backend-free spec with an
// aggregate config (lr, momentum, ...), and optim::sgd::bind<B, T> is the stateful optimizer
// bound to a network's nn::parameter_list, owning its state (momentum buffers, Adam moments) on
// backend B. step() reads each parameter's gradient (which layers' backward overwrite, so no
// zero_grad is needed between iterations) and updates the values in place.
#pragma once
#include <cmath>
#include <concepts>
#include <string_view>
#include <vector>

#include "tessel/autograd/tape.hpp"
#include "tessel/backend/parallel.hpp"
#include "tessel/nn/context.hpp"

namespace tessel::optim {

/// Optimizer: a bound, stateful update rule.
///   requires: step() applies one update to every parameter from its current gradient;
///             learning_rate() / set_learning_rate(lr) read and change the step size (schedules);
///             zero_grad() sets every gradient to 0; parameters() is the bound list.
///   ensures:  step() does not allocate; a parameter whose value or gradient shape changed since
///             binding makes step() throw tessel::error naming the optimizer and the parameter;
///             the arithmetic follows PyTorch's torch.optim of the same name (METHODS.md §1.2).
template <class O>
concept Optimizer = requires(O& o, const O& co, double lr) {
    o.step();
    o.zero_grad();
    o.set_learning_rate(lr);
    { co.learning_rate() } -> std::convertible_to<double>;
    { o.parameters() };
};

/// OptimizerSpec<S, B, T>: a backend-free optimizer description.
///   requires: S::config is a default-constructible aggregate of run-time settings;
///             S::bind<B, T>(params, config) is an Optimizer over params on backend B.
///   ensures:  invalid settings (negative lr, beta outside [0,1), ...) throw tessel::error at bind.
template <class S, class B, class T = float>
concept OptimizerSpec = requires { typename S::config; } && std::default_initializable<typename S::config> &&
                        std::constructible_from<typename S::template bind<B, T>, nn::parameter_list<T, B>,
                                                const typename S::config&> &&
                        Optimizer<typename S::template bind<B, T>>;

/// Sets every gradient of params to zero (layers overwrite their gradients, so a training loop
/// only needs this when it adds gradients from several backward passes by hand).
template <class T, Backend B>
void zero_grad(const nn::parameter_list<T, B>& params) {
    for (const auto& p : params)
        if (p.grad) parallel_for(B{}, p.grad->numel(), autograd::detail::fill_fn<T>{p.grad->data(), T(0)});
}

namespace detail {
/// Checks the list and returns the shapes at bind time.
template <class T, Backend B>
std::vector<shape> check_parameters(std::string_view where, const nn::parameter_list<T, B>& params) {
    std::vector<shape> shapes;
    for (std::size_t k = 0; k < params.size(); ++k) {
        const auto& p = params[k];
        expects(p.value != nullptr && p.grad != nullptr, where, "parameter '", p.name, "' (#", k,
                ") has no value or gradient tensor");
        shapes.push_back(p.value->shape());
    }
    return shapes;
}
/// Before a step: each gradient has its value's shape, and the value kept its shape since bind.
template <class T, Backend B>
void check_step(std::string_view where, const nn::parameter_list<T, B>& params, const std::vector<shape>& bound) {
    for (std::size_t k = 0; k < params.size(); ++k) {
        const auto& p = params[k];
        expects(p.grad->shape() == p.value->shape(), where, "parameter '", p.name, "' (#", k, ") has shape ",
                p.value->shape().str(), " but its gradient has shape ", p.grad->shape().str());
        expects(bound[k] == p.value->shape(), where, "parameter '", p.name, "' (#", k, ") changed shape from ",
                bound[k].str(), " to ", p.value->shape().str(), " after binding");
    }
}
inline void check_setting(std::string_view where, bool ok, std::string_view what, double v) {
    expects(ok && std::isfinite(v), where, what, " is out of range: ", v);
}
}  // namespace detail

}  // namespace tessel::optim
