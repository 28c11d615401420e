// Test support for tape gradient checks: runs a recording as a scalar function of its inputs so
// check_scalar_gradient can compare tape.backward() with central differences.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "tessel/autograd/check_gradients.hpp"
#include "tessel/autograd/functions.hpp"
#include "tessel/core/random.hpp"

namespace tessel::testing {

using dtape = autograd::tape<cpu_serial, double>;
using dvar = autograd::var<cpu_serial, double>;

inline tensor<double> random_tensor(const shape& s, rng& gen, double lo = -1.0, double hi = 1.0) {
    tensor<double> t(s);
    for (index_t i = 0; i < t.numel(); ++i) t[i] = gen.uniform(lo, hi);
    return t;
}

/// Records build(tape, input vars) and checks the gradient of the resulting scalar with respect
/// to every input. Returns the worst result (passed only if all pass).
inline autograd::gradient_check_result check_tape_gradient(
    const std::function<dvar(dtape&, std::vector<dvar>&)>& build, std::vector<tensor<double>*> inputs,
    autograd::gradient_check_options opt = {}) {
    dtape t;
    std::vector<dvar> vars;
    auto run = [&]() {
        t.reset();
        vars.clear();
        for (auto* x : inputs) vars.push_back(t.input(*x));
        return build(t, vars);
    };
    auto loss = run();
    t.backward(loss);
    std::vector<tensor<double>> grads;
    for (auto& v : vars) grads.push_back(v.grad());
    auto f = [&]() { return run().value()[0]; };
    autograd::gradient_check_result worst;
    worst.passed = true;
    for (std::size_t k = 0; k < inputs.size(); ++k) {
        auto r = autograd::check_scalar_gradient(f, *inputs[k], grads[k], opt);
        worst.coords_checked += r.coords_checked;
        if (r.input_error >= worst.input_error) {
            worst.input_error = r.input_error;
            worst.report = "input " + std::to_string(k) + ": " + r.report;
        }
        worst.passed = worst.passed && r.passed;
    }
    return worst;
}

}  // namespace tessel::testing
