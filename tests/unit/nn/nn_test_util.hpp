// Helpers shared by the nn block tests: random inputs, closeness checks, gradient checks and the
// cpu_serial vs cpu_omp agreement check every block goes through.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tessel/autograd/check_gradients.hpp"
#include "tessel/nn/concepts.hpp"

namespace nn_test {

namespace ts = tessel;

template <class T = float, class B = ts::cpu_serial>
ts::tensor<T, B> random_tensor(const ts::shape& s, std::uint64_t seed, double lo = -2.0, double hi = 2.0) {
    ts::rng gen(seed);
    std::vector<T> v(static_cast<std::size_t>(s.numel()));
    for (auto& e : v) e = static_cast<T>(gen.uniform(lo, hi));
    ts::tensor<T, B> t;
    t.assign(s, v.begin(), v.end());
    return t;
}

/// Largest |a - b| / max(1, |b|); infinite when the sizes differ.
template <class A, class Bv>
double max_rel_diff(const A& a, const Bv& b) {
    if (a.size() != b.size()) return INFINITY;
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        m = std::max(m, std::abs(double(a[i]) - double(b[i])) / std::max(1.0, std::abs(double(b[i]))));
    return m;
}

/// Checks every element of `got` against hand-computed `expected` to a relative tolerance.
template <class T>
void check_values(const std::vector<T>& got, const std::vector<double>& expected, double tol = 2e-6) {
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        INFO("element " << i << ": got " << got[i] << ", expected " << expected[i]);
        CHECK(std::abs(double(got[i]) - expected[i]) <= tol * std::max(1.0, std::abs(expected[i])));
    }
}

/// check_gradients with the report shown on failure.
template <class Spec>
void gradient_check(const typename Spec::config& cfg, const ts::shape& s, ts::autograd::gradient_check_options opt = {}) {
    auto r = ts::autograd::check_gradients<Spec>(cfg, s, opt);
    INFO(r.report);
    CHECK(r.passed);
    CHECK(r.coords_checked > 0);
}

/// Runs forward and backward of Spec on cpu_serial and cpu_omp with the same weights, input,
/// upstream gradient and random stream, and requires the outputs, input gradients and parameter
/// gradients to agree to `tol` (reductions may sum in a different order on cpu_omp).
template <class Spec>
void serial_omp_agree(const typename Spec::config& cfg, const ts::shape& s, double tol = 1e-5, bool training = true) {
    ts::rng init_s(7), init_o(7);
    typename Spec::template bind<ts::cpu_serial> ls(cfg, init_s);
    typename Spec::template bind<ts::cpu_omp> lo(cfg, init_o);
    ts::nn::context<ts::cpu_serial> cs;
    ts::nn::context<ts::cpu_omp> co;
    cs.training = co.training = training;
    cs.gen.reseed(99);
    co.gen.reseed(99);
    const auto xs = random_tensor<float>(s, 3);
    const auto xo = xs.template to<ts::cpu_omp>();
    const auto ys = ls.forward(cs, xs).to_vector();
    const auto yo = lo.forward(co, xo).to_vector();
    CHECK(max_rel_diff(yo, ys) <= tol);
    const auto dys = random_tensor<float>(ls.forward(cs, xs).shape(), 5);
    cs.gen.reseed(99);
    ls.forward(cs, xs);  // the same random stream as the omp layer's single forward
    const auto dxs = ls.backward(cs, dys).to_vector();
    const auto dxo = lo.backward(co, dys.template to<ts::cpu_omp>()).to_vector();
    CHECK(max_rel_diff(dxo, dxs) <= tol);
    auto ps = ls.parameters();
    auto po = lo.parameters();
    REQUIRE(ps.size() == po.size());
    for (std::size_t k = 0; k < ps.size(); ++k) {
        INFO("parameter " << ps[k].name);
        CHECK(max_rel_diff(po[k].grad->to_vector(), ps[k].grad->to_vector()) <= tol);
    }
}

}  // namespace nn_test
