// tessel/autograd/check_gradients.hpp: finite-difference checks of hand-written gradients.
//
// Public API, after dlib's test_layer(): every block and loss in tessel is tested with it, and a
// user writing a custom layer should be too. check_gradients<Spec>(config, input_shape) builds
// Spec::bind<B, double> (B = cpu_serial or cpu_omp), draws a random input x and a random upstream gradient r, and
// compares backward() (dL/dx and every parameter gradient, for L = sum(forward(x) * r)) with
// central differences of L. check_scalar_gradient does the same for any scalar function.
//
// Before checking, every parameter and buffer (nn::HasBuffers: running statistics) is moved away
// from its initial value, deterministically from the seed: initial values are special (gamma = 1,
// beta = 0, running mean 0 and variance 1, equal activation weights), and a gradient that drops a
// factor equal to 1 there, or mixes up two channels that start out equal, passes at them.
#pragma once
#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "tessel/core/random.hpp"
#include "tessel/core/tensor.hpp"
#include "tessel/nn/concepts.hpp"

namespace tessel::autograd {

struct gradient_check_options {
    std::uint64_t seed = 1;
    double epsilon = 1e-6;          ///< central-difference step
    double tolerance = 1e-5;        ///< maximum accepted error (see gradient_check_result)
    index_t max_coords = 256;       ///< coordinates checked per tensor (a random subset if larger)
    double input_low = -1.0, input_high = 1.0;
    bool training = true;           ///< context mode for the layer
    /// Move parameters and buffers away from their initial values first (see the top of the file).
    /// Turn off only for a layer whose parameters are valid at their initial values alone.
    bool perturb_state = true;
};

struct gradient_check_result {
    /// Largest |analytic - numeric| / max(1, |analytic|, |numeric|) over the input gradient.
    double input_error = 0;
    /// The same over all parameter gradients.
    double parameter_error = 0;
    index_t coords_checked = 0;
    bool passed = false;
    std::string report;  ///< where the largest error was, for test failure messages
};

namespace detail {
inline double scaled_error(double a, double n) {
    return std::abs(a - n) / std::max({1.0, std::abs(a), std::abs(n)});
}
inline std::vector<index_t> pick_coords(index_t n, index_t max_coords, rng& gen) {
    std::vector<index_t> idx;
    if (n <= max_coords) {
        for (index_t i = 0; i < n; ++i) idx.push_back(i);
    } else {
        for (index_t i = 0; i < max_coords; ++i) idx.push_back(static_cast<index_t>(gen.below(static_cast<std::uint64_t>(n))));
    }
    return idx;
}

/// Moves every value of t: by a random step of up to half the tensor's root mean square (0.5 for
/// an all-zero tensor), or, for a positive tensor, by a random factor in [1/2, 2] so that it
/// stays positive.
template <class T, HostBackend B>
void perturb(tensor<T, B>& t, bool positive, rng& gen) {
    if (positive) {
        for (index_t i = 0; i < t.numel(); ++i)
            t[i] = static_cast<T>(static_cast<double>(t[i]) * std::exp2(gen.uniform(-1.0, 1.0)));
        return;
    }
    double ss = 0;
    for (index_t i = 0; i < t.numel(); ++i) ss += static_cast<double>(t[i]) * static_cast<double>(t[i]);
    const double rms = t.numel() > 0 ? std::sqrt(ss / static_cast<double>(t.numel())) : 0.0;
    const double step = rms > 0 ? 0.5 * rms : 0.5;
    for (index_t i = 0; i < t.numel(); ++i)
        t[i] = static_cast<T>(static_cast<double>(t[i]) + gen.uniform(-step, step));
}

/// Perturbs every parameter and buffer of a layer (see perturb), in the order the layer lists them.
template <class T, HostBackend B, class L>
void perturb_state(L& layer, std::uint64_t seed) {
    rng gen(seed ^ 0x9e3779b97f4a7c15ull);
    for (auto& p : layer.parameters()) perturb(*p.value, false, gen);
    for (auto& b : nn::buffers_of<T, B>(layer)) perturb(*b.value, b.positive, gen);
}
}  // namespace detail

/// Checks the gradient of a scalar function f at x against `grad` (the analytic dL/dx at x).
/// f may read x freely; it is evaluated at x +- epsilon e_i for the checked coordinates.
template <class F, HostBackend B>
gradient_check_result check_scalar_gradient(F&& f, tensor<double, B>& x, const tensor<double, B>& grad,
                                            const gradient_check_options& opt = {}) {
    expect_same_shape("tessel::autograd::check_scalar_gradient", x, grad);
    gradient_check_result res;
    rng gen(opt.seed ^ 0x5bd1e995u);
    std::ostringstream rep;
    for (index_t i : detail::pick_coords(x.numel(), opt.max_coords, gen)) {
        const double old = x[i];
        x[i] = old + opt.epsilon;
        const double up = f();
        x[i] = old - opt.epsilon;
        const double down = f();
        x[i] = old;
        const double numeric = (up - down) / (2 * opt.epsilon);
        const double err = detail::scaled_error(grad[i], numeric);
        if (err > res.input_error) {
            res.input_error = err;
            rep.str("");
            rep << "largest error " << err << " at element " << i << ": analytic " << grad[i] << ", numeric " << numeric;
        }
        ++res.coords_checked;
    }
    res.passed = res.input_error <= opt.tolerance;
    res.report = rep.str();
    return res;
}

/// Checks a layer's backward against finite differences, in double precision on host backend B.
template <nn::LayerSpec Spec, HostBackend B = cpu_serial>
gradient_check_result check_gradients(const typename Spec::config& cfg, const shape& input_shape,
                                      const gradient_check_options& opt = {}) {
    using layer_t = typename Spec::template bind<B, double>;
    rng init(opt.seed);
    layer_t layer(cfg, init);
    if (opt.perturb_state) detail::perturb_state<double, B>(layer, opt.seed);
    nn::context<B> ctx;
    ctx.training = opt.training;

    tensor<double, B> x(input_shape);
    for (index_t i = 0; i < x.numel(); ++i) x[i] = init.uniform(opt.input_low, opt.input_high);

    // Stochastic layers must see the same random stream in every evaluation.
    auto run = [&]() -> const tensor<double, B>& {
        ctx.gen.reseed(opt.seed + 17);
        return layer.forward(ctx, x);
    };
    const tensor<double, B> y0 = run();
    tensor<double, B> r(y0.shape());
    for (index_t i = 0; i < r.numel(); ++i) r[i] = init.uniform(-1.0, 1.0);
    auto loss = [&]() {
        const auto& y = run();
        double s = 0;
        for (index_t i = 0; i < y.numel(); ++i) s += y[i] * r[i];
        return s;
    };

    run();
    const tensor<double, B> dx = layer.backward(ctx, r);
    auto params = layer.parameters();
    std::vector<tensor<double, B>> pgrads;
    for (auto& p : params) pgrads.push_back(*p.grad);

    gradient_check_result res;
    std::ostringstream rep;
    {
        auto in = check_scalar_gradient(loss, x, dx, opt);
        res.input_error = in.input_error;
        res.coords_checked += in.coords_checked;
        if (!in.report.empty()) rep << "input: " << in.report << "; ";
    }
    for (std::size_t k = 0; k < params.size(); ++k) {
        auto pr = check_scalar_gradient(loss, *params[k].value, pgrads[k], opt);
        res.coords_checked += pr.coords_checked;
        if (pr.input_error > res.parameter_error) {
            res.parameter_error = pr.input_error;
            rep << "parameter '" << params[k].name << "' (#" << k << "): " << pr.report << "; ";
        }
    }
    res.passed = res.input_error <= opt.tolerance && res.parameter_error <= opt.tolerance;
    res.report = rep.str();
    return res;
}

}  // namespace tessel::autograd
