// The two losses of Deep Superpixel Cut: the SuperAE's template reconstruction (Eq. 1-2) and the
// soft superpixel cut (Eq. 5-8), against direct references and finite differences.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "tessel/autograd/check_gradients.hpp"
#include "tessel/loss/soft_cut.hpp"
#include "tessel/loss/superpixel_reconstruction.hpp"

namespace ts = tessel;
using T2 = ts::tensor<double, ts::cpu_serial>;

namespace {
T2 random(const ts::shape& s, std::uint64_t seed, double lo, double hi) {
    ts::rng g(seed);
    T2 t(s);
    for (ts::index_t i = 0; i < t.numel(); ++i) t[i] = g.uniform(lo, hi);
    return t;
}
/// Regions of a W x H map: vertical stripes of width sw, offset per row block (non-convex unions
/// are fine: only membership matters).
ts::label_map stripes(ts::index_t W, ts::index_t H, ts::index_t sw) {
    ts::label_map m(W, H);
    for (ts::index_t y = 0; y < H; ++y)
        for (ts::index_t x = 0; x < W; ++x) m(x, y) = static_cast<ts::label_t>(x / sw + 10 * (y >= H / 2 ? 1 : 0));
    return m;
}
}  // namespace

TEST_CASE("superpixel_reconstruction: value against a direct reference, both template means") {
    // 1 image, 1 channel, 4 pixels; regions {0, 1} and {2, 3}; x = 0, 1, 2, 4; r = 0.5 everywhere.
    T2 x(ts::shape{1, 1, 1, 4}, {0.0, 1.0, 2.0, 4.0});
    T2 r(ts::shape{1, 1, 1, 4}, {0.5, 0.5, 0.5, 0.5});
    ts::tensor<ts::label_t, ts::cpu_serial> t(ts::shape{1, 1, 4}, {7, 7, 3, 3});
    // Input means v = 0.5 and 3: term 1 = (.25 + .25 + 2.25 + 12.25) / 4 = 3.75;
    // term 2 = (0 + 0 + 6.25 + 6.25) / 4 = 3.125.
    const ts::loss::superpixel_reconstruction plain{.lambda = 2.0};
    CHECK(plain.value(r, x, t) == doctest::Approx(3.75 + 2.0 * 3.125).epsilon(1e-14));
    // Means of r: 0.5 in both regions, so the template term vanishes.
    const ts::loss::superpixel_reconstruction own{.lambda = 2.0, .template_mean_of_reconstruction = true};
    CHECK(own.value(r, x, t) == doctest::Approx(3.75).epsilon(1e-14));
    CHECK_THROWS_AS((void)ts::loss::superpixel_reconstruction{.lambda = -1}.value(r, x, t), ts::error);
    ts::tensor<ts::label_t, ts::cpu_serial> wrong(ts::shape{1, 2, 2}, {0, 0, 1, 1});
    CHECK_THROWS_WITH_AS((void)plain.value(r, x, wrong), doctest::Contains("does not match"), ts::error);
}

TEST_CASE("superpixel_reconstruction: gradient matches finite differences (batch of 2, 3 channels, odd sizes)") {
    for (bool own : {false, true}) {
        INFO("template_mean_of_reconstruction " << own);
        const ts::loss::superpixel_reconstruction l{.lambda = 0.7, .template_mean_of_reconstruction = own};
        T2 r = random(ts::shape{2, 3, 5, 7}, 3, 0, 1), x = random(ts::shape{2, 3, 5, 7}, 4, 0, 1), g;
        ts::tensor<ts::label_t, ts::cpu_serial> t(ts::shape{2, 5, 7});
        for (ts::index_t i = 0; i < t.numel(); ++i) t[i] = static_cast<ts::label_t>((i * 7) % 5 + (i % 3 == 0 ? 2 : 0));
        l.value_and_grad(r, x, t, g, {.weight = 1.5});
        auto res = ts::autograd::check_scalar_gradient([&] { return 1.5 * l.value(r, x, t); }, r, g);
        INFO(res.report);
        CHECK(res.passed);
        // Accumulating adds to what is there.
        T2 acc(r.shape(), 1.0);
        l.value_and_grad(r, x, t, acc, {.weight = 1.5, .accumulate = true});
        for (ts::index_t i = 0; i < acc.numel(); ++i) CHECK(acc[i] == doctest::Approx(g[i] + 1.0));
    }
}

TEST_CASE("soft_cut_graph: regions, centroids and the pairs within d = 2 sqrt(N/M)") {
    const ts::label_map sp = stripes(8, 4, 2);  // 8 regions of 2 x 2
    const auto g = ts::loss::soft_cut_graph::build(sp);
    CHECK(g.regions == 8);
    CHECK(g.distance == doctest::Approx(2.0 * std::sqrt(32.0 / 8.0)));
    CHECK(g.cx[0] == doctest::Approx(0.5));
    CHECK(g.cy[0] == doctest::Approx(0.5));
    // d = 4: pairs strictly closer than 4 (centroids 2 apart in x, 2 apart in y): distances 0, 2,
    // 2 sqrt 2 and 2 sqrt 5 < 4, but 4 (two stripes apart) and beyond are excluded.
    std::size_t from0 = 0;
    for (std::size_t e = 0; e < g.pair_i.size(); ++e) from0 += g.pair_i[e] == 0 ? 1 : 0;
    CHECK(from0 == 4);  // itself, its right neighbour, the one below, the diagonal one
    CHECK_THROWS_AS((void)ts::loss::soft_cut_graph::build(sp, 0.0), ts::error);
}

namespace {
/// Direct reference of L2: softmax per pixel, region means, W from G over the centroid test, or
/// the given frozen weights (one per pair of g, in g's order).
double reference_cut(const T2& F, const ts::loss::soft_cut_graph& g, double sigma, bool from_g,
                     const std::vector<double>* frozen = nullptr, int* off_diagonal = nullptr) {
    const ts::index_t K = F.dim(1), P = g.width * g.height, M = g.regions;
    const auto k3 = static_cast<std::size_t>(K);
    std::vector<double> G(static_cast<std::size_t>(M) * k3, 0), Q(G.size(), 0), n(static_cast<std::size_t>(M), 0);
    for (ts::index_t i = 0; i < P; ++i) {
        const auto j = static_cast<std::size_t>(g.region[static_cast<std::size_t>(i)]);
        n[j] += 1;
        double mx = -1e300, s = 0;
        for (ts::index_t k = 0; k < K; ++k) mx = std::max(mx, F[k * P + i]);
        for (ts::index_t k = 0; k < K; ++k) s += std::exp(F[k * P + i] - mx);
        for (ts::index_t k = 0; k < K; ++k) {
            G[j * k3 + static_cast<std::size_t>(k)] += F[k * P + i];
            Q[j * k3 + static_cast<std::size_t>(k)] += std::exp(F[k * P + i] - mx) / s;
        }
    }
    for (std::size_t j = 0; j < static_cast<std::size_t>(M); ++j)
        for (std::size_t k = 0; k < k3; ++k) {
            G[j * k3 + k] /= n[j];
            Q[j * k3 + k] /= n[j];
        }
    if (from_g)
        for (std::size_t j = 0; j < static_cast<std::size_t>(M); ++j) {
            double s = 0;
            for (std::size_t k = 0; k < k3; ++k) s += std::exp(G[j * k3 + k]);
            for (std::size_t k = 0; k < k3; ++k) Q[j * k3 + k] = std::exp(G[j * k3 + k]) / s;
        }
    double L = 0;
    std::size_t e = 0;
    for (std::size_t a = 0; a < static_cast<std::size_t>(M); ++a)
        for (std::size_t b = 0; b < static_cast<std::size_t>(M); ++b) {
            const double dx = g.cx[a] - g.cx[b], dy = g.cy[a] - g.cy[b];
            if (std::sqrt(dx * dx + dy * dy) >= g.distance) continue;
            if (a != b && off_diagonal) ++*off_diagonal;
            double d = 0;
            for (std::size_t k = 0; k < k3; ++k) d += (G[a * k3 + k] - G[b * k3 + k]) * (G[a * k3 + k] - G[b * k3 + k]);
            const double w = frozen ? (*frozen)[e] : std::exp(-d / (sigma * sigma));
            ++e;
            for (std::size_t k = 0; k < k3; ++k) L += Q[a * k3 + k] * w * (1 - Q[b * k3 + k]);
        }
    return L;
}
}  // namespace

TEST_CASE("soft_cut: value equals sum_k Q_k^T W (1 - Q_k) computed densely") {
    const ts::label_map sp = stripes(6, 4, 2);  // 6 regions
    const auto g = ts::loss::soft_cut_graph::build(sp, 1.5);
    for (bool from_g : {false, true}) {
        INFO("q_from_softmax_of_g " << from_g);
        T2 F = random(ts::shape{1, 3, 4, 6}, 9, -3, 3);
        ts::loss::soft_cut::bind<ts::cpu_serial, double> cut({.sigma = 2.0, .q_from_softmax_of_g = from_g});
        int off = 0;
        const double expected = reference_cut(F, g, 2.0, from_g, nullptr, &off);
        CHECK(off > 0);
        CHECK(off < static_cast<int>(g.regions * (g.regions - 1)));  // the distance test cuts some pairs
        CHECK(cut.value(F, g) == doctest::Approx(expected).epsilon(1e-12));
    }
    ts::loss::soft_cut::bind<ts::cpu_serial, double> cut;
    T2 wrong(ts::shape{1, 3, 4, 5});
    CHECK_THROWS_WITH_AS((void)cut.value(wrong, g), doctest::Contains("superpixel graph is 6x4"), ts::error);
    CHECK_THROWS_AS((ts::loss::soft_cut::bind<ts::cpu_serial, double>({.sigma = 0.0})), ts::error);
}

TEST_CASE("soft_cut: gradient matches finite differences with W held constant (Eq. 11)") {
    // The loss differentiates Q only, W being a constant of the step (METHODS.md §7.2): the
    // finite differences are taken of the reference with W frozen at the base point. Without
    // the freeze, at a small sigma, they differ: the W term is real and deliberately dropped.
    const ts::label_map sp = stripes(7, 5, 2);
    const auto g = ts::loss::soft_cut_graph::build(sp, 2.0);
    for (bool from_g : {false, true}) {
        INFO("q_from_softmax_of_g " << from_g);
        T2 F = random(ts::shape{1, 4, 5, 7}, 11, -1, 1), dF;
        ts::loss::soft_cut::bind<ts::cpu_serial, double> cut({.sigma = 0.7, .q_from_softmax_of_g = from_g});
        cut.value_and_grad(F, g, dF, {.weight = 0.5});
        const std::vector<double> frozen = cut.last_weights();
        auto res = ts::autograd::check_scalar_gradient(
            [&] { return 0.5 * reference_cut(F, g, 0.7, from_g, &frozen); }, F, dF);
        INFO(res.report);
        CHECK(res.passed);
        CHECK_FALSE(ts::autograd::check_scalar_gradient([&] { return 0.5 * reference_cut(F, g, 0.7, from_g); }, F, dF)
                        .passed);
        T2 acc(F.shape(), 2.0);
        cut.value_and_grad(F, g, acc, {.weight = 0.5, .accumulate = true});
        for (ts::index_t i = 0; i < acc.numel(); ++i) CHECK(acc[i] == doctest::Approx(dF[i] + 2.0));
    }
}
