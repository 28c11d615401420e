// loss/modularity.hpp: DMoN (as coded and in its paper form) and the normalised cut against
// naive formulas with an explicit modularity matrix, and their gradients against finite
// differences, on symmetric and asymmetric graphs at random assignments.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "tessel/autograd/check_gradients.hpp"
#include "tessel/loss/modularity.hpp"

namespace ts = tessel;

namespace {

ts::tensor<double> random_adjacency(ts::index_t n, bool symmetric, ts::rng& g) {
    ts::tensor<double> a(ts::shape{n, n});
    for (ts::index_t i = 0; i < n; ++i)
        for (ts::index_t j = 0; j < n; ++j) {
            if (symmetric && j < i) continue;
            const double v = i == j ? 1.0 : (g.uniform01() < 0.4 ? 1.0 : 0.0) * (symmetric ? 1.0 : g.uniform(0.5, 2));
            a(i, j) = v;
            if (symmetric) a(j, i) = v;
        }
    return a;
}
ts::tensor<double> random_assignment(ts::index_t n, ts::index_t k, ts::rng& g, bool softmax) {
    ts::tensor<double> s(ts::shape{n, k});
    for (ts::index_t i = 0; i < n; ++i) {
        double z = 0;
        for (ts::index_t c = 0; c < k; ++c) z += (s(i, c) = softmax ? std::exp(g.uniform(-2, 2)) : g.uniform(0.05, 1));
        if (softmax)
            for (ts::index_t c = 0; c < k; ++c) s(i, c) /= z;
    }
    return s;
}

/// -Tr(S^T B S) / (2m) with B formed explicitly, plus the collapse term, both by direct loops.
double naive_dmon(const ts::tensor<double>& s, const ts::tensor<double>& a, ts::loss::dmon_form form) {
    const ts::index_t n = s.dim(0), k = s.dim(1);
    std::vector<double> d(static_cast<std::size_t>(n));
    double total = 0;
    for (ts::index_t i = 0; i < n; ++i)
        for (ts::index_t j = 0; j < n; ++j) d[static_cast<std::size_t>(i)] += a(i, j), total += a(i, j);
    const double m = form == ts::loss::dmon_form::coded ? total : total / 2;
    double tr = 0;
    for (ts::index_t c = 0; c < k; ++c)
        for (ts::index_t i = 0; i < n; ++i)
            for (ts::index_t j = 0; j < n; ++j)
                tr += s(i, c) * (a(i, j) - d[static_cast<std::size_t>(i)] * d[static_cast<std::size_t>(j)] / (2 * m)) * s(j, c);
    double norm = 0;
    if (form == ts::loss::dmon_form::coded) {
        for (ts::index_t i = 0; i < n; ++i) {
            double r = 0;
            for (ts::index_t c = 0; c < k; ++c) r += s(i, c);
            norm += r * r;
        }
        return -tr / (2 * m) + std::sqrt(std::sqrt(static_cast<double>(k))) / n * std::sqrt(norm) - 1;
    }
    for (ts::index_t c = 0; c < k; ++c) {
        double r = 0;
        for (ts::index_t i = 0; i < n; ++i) r += s(i, c);
        norm += r * r;
    }
    return -tr / (2 * m) + std::sqrt(static_cast<double>(k)) / n * std::sqrt(norm) - 1;
}

double naive_ncut(const ts::tensor<double>& s, const ts::tensor<double>& a) {
    const ts::index_t n = s.dim(0), k = s.dim(1);
    double num = 0, den = 0;
    for (ts::index_t c = 0; c < k; ++c)
        for (ts::index_t i = 0; i < n; ++i) {
            double di = 0;
            for (ts::index_t j = 0; j < n; ++j) num += s(i, c) * a(i, j) * s(j, c), di += a(i, j);
            den += s(i, c) * di * s(i, c);
        }
    std::vector<double> p(static_cast<std::size_t>(k * k));
    for (ts::index_t c = 0; c < k; ++c)
        for (ts::index_t e = 0; e < k; ++e)
            for (ts::index_t i = 0; i < n; ++i) p[static_cast<std::size_t>(c * k + e)] += s(i, c) * s(i, e);
    double pn = 0;
    for (double v : p) pn += v * v;
    pn = std::sqrt(pn);
    double f = 0;
    for (ts::index_t c = 0; c < k; ++c)
        for (ts::index_t e = 0; e < k; ++e) {
            const double q = p[static_cast<std::size_t>(c * k + e)] / pn - (c == e ? 1 / std::sqrt(static_cast<double>(k)) : 0);
            f += q * q;
        }
    return -num / den + std::sqrt(f);
}

}  // namespace

TEST_CASE("dmon: value equals the explicit-B formula; gradients match finite differences (both forms)") {
    ts::rng g(4);
    for (bool symmetric : {true, false})
        for (ts::index_t k : {2, 3})
            for (auto form : {ts::loss::dmon_form::coded, ts::loss::dmon_form::paper}) {
                const auto a = random_adjacency(9, symmetric, g);
                auto s = random_assignment(9, k, g, false);  // not row-stochastic: the collapse term moves
                const ts::loss::dmon loss{.form = form, .symmetric = symmetric};
                ts::tensor<double> ds;
                const double v = loss.value_and_grad(s, a, ds);
                CHECK(v == doctest::Approx(naive_dmon(s, a, form)).epsilon(1e-12));
                const auto res = ts::autograd::check_scalar_gradient([&] { return loss.value(s, a); }, s, ds);
                CHECK_MESSAGE(res.passed, res.report);
            }
}

TEST_CASE("dmon as coded: the collapse term is the constant 2^(1/4)/sqrt(n) - 1 on a row-stochastic S") {
    ts::rng g(8);
    const auto a = random_adjacency(25, true, g);
    const auto s = random_assignment(25, 2, g, true);
    ts::tensor<double> ds;
    const double v = ts::loss::dmon{}.value_and_grad(s, a, ds);
    const double mod_only = naive_dmon(s, a, ts::loss::dmon_form::coded) - (std::pow(2.0, 0.25) / 5.0 - 1.0);
    CHECK(v - mod_only == doctest::Approx(std::pow(2.0, 0.25) / 5.0 - 1.0).epsilon(1e-12));
    // Paper form differs (half the m, column sums): not equal to the coded value.
    CHECK(ts::loss::dmon{.form = ts::loss::dmon_form::paper}.value(s, a) != doctest::Approx(v));
}

TEST_CASE("normalized_cut: value equals the direct formula; gradient matches finite differences") {
    ts::rng g(6);
    for (bool symmetric : {true, false})
        for (ts::index_t k : {2, 4}) {
            const auto a = random_adjacency(8, symmetric, g);
            auto s = random_assignment(8, k, g, true);
            const ts::loss::normalized_cut loss{.symmetric = symmetric};
            ts::tensor<double> ds;
            const double v = loss.value_and_grad(s, a, ds);
            CHECK(v == doctest::Approx(naive_ncut(s, a)).epsilon(1e-12));
            const auto res = ts::autograd::check_scalar_gradient([&] { return loss.value(s, a); }, s, ds);
            CHECK_MESSAGE(res.passed, res.report);
        }
}

TEST_CASE("modularity losses: invalid input is an error") {
    ts::tensor<double> s(ts::shape{3, 2}, 0.5), a(ts::shape{3, 3}, 0.0), ds;
    CHECK_THROWS_AS(ts::loss::dmon{}.value_and_grad(s, a, ds), ts::error);  // no edges
    CHECK_THROWS_AS(ts::loss::dmon{}.value_and_grad(s, ts::tensor<double>(ts::shape{4, 4}, 1.0), ds), ts::error);
    CHECK_THROWS_AS(ts::loss::normalized_cut{}.value_and_grad(ts::tensor<double>(ts::shape{3, 2}, 0.0),
                                                              ts::tensor<double>(ts::shape{3, 3}, 1.0), ds),
                    ts::error);
}
