// The losses at the sizes that reach every branch of their kernels, against naive references
// written here from the definitions (long double, one sample at a time):
//   * cross_entropy keeps the exponentials of the first 128 classes for its gradient pass and
//     recomputes the rest, so class counts below, at and past 128 take different code (presets use
//     100 classes; users may pass more); soft_cross_entropy has no such cache, but is checked at
//     the same counts, since a change to either would be tempted to share one;
//   * spatial_continuity at odd and even sizes, two rows or two columns (the smallest accepted),
//     and refusing one row or one column;
//   * cpu_omp on 1 and 2 threads: elementwise gradients must be bit-identical.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "support/backend_test.hpp"
#include "tessel/autograd/check_gradients.hpp"
#include "tessel/loss/cross_entropy.hpp"
#include "tessel/loss/spatial_continuity.hpp"

#if TESSEL_HAS_OPENMP
#  include <omp.h>
#endif

namespace ts = tessel;

namespace {

// Class counts on both sides of cross_entropy's 128-class exponential cache, and 1 (valid: a
// single class has loss 0 and gradient 0 everywhere).
constexpr ts::index_t class_counts[] = {1, 3, 100, 127, 128, 129, 300};

template <class T, class B>
ts::tensor<T, B> random_tensor(const ts::shape& s, std::uint64_t seed, double lo, double hi) {
    ts::rng g(seed);
    ts::tensor<T, B> t(s);
    for (ts::index_t i = 0; i < t.numel(); ++i) t[i] = static_cast<T>(g.uniform(lo, hi));
    return t;
}

/// Labels [N, H, W] for C classes: random, except that sample 0 has the last class and sample 1
/// is ignored, so that a label past the cache and an ignored sample occur at every C.
template <class B>
ts::tensor<ts::label_t, B> random_labels(const ts::shape& s, ts::index_t C, std::uint64_t seed) {
    ts::rng g(seed);
    ts::tensor<ts::label_t, B> y(s);
    for (ts::index_t i = 0; i < y.numel(); ++i) y[i] = static_cast<ts::label_t>(g.below(static_cast<std::uint64_t>(C)));
    y[0] = static_cast<ts::label_t>(C - 1);
    y[1] = -100;
    return y;
}

struct reference {
    long double value = 0;
    std::vector<long double> grad;
};

/// Mean over non-ignored samples of logsumexp(z) - z[label]; gradient (softmax - onehot) / count.
template <class T, class B>
reference naive_cross_entropy(const ts::tensor<T, B>& z, const ts::tensor<ts::label_t, B>& y, ts::label_t ignore) {
    const ts::index_t N = z.dim(0), C = z.dim(1), S = z.numel() / (N * C);
    reference r;
    r.grad.assign(static_cast<std::size_t>(z.numel()), 0.0L);
    long double counted = 0;
    for (ts::index_t i = 0; i < y.numel(); ++i) counted += y[i] != ignore ? 1 : 0;
    for (ts::index_t n = 0; n < N; ++n)
        for (ts::index_t s = 0; s < S; ++s) {
            const ts::label_t lab = y[n * S + s];
            if (lab == ignore) continue;
            auto at = [&](ts::index_t k) { return static_cast<std::size_t>((n * C + k) * S + s); };
            long double sum = 0;
            for (ts::index_t k = 0; k < C; ++k) sum += std::exp(static_cast<long double>(z[at(k)]));
            r.value += (std::log(sum) - static_cast<long double>(z[at(lab)])) / counted;
            for (ts::index_t k = 0; k < C; ++k)
                r.grad[at(k)] = (std::exp(static_cast<long double>(z[at(k)])) / sum - (k == lab ? 1 : 0)) / counted;
        }
    return r;
}

/// Mean over samples of sum_k y_k (logsumexp(z) - z_k); gradient (softmax sum(y) - y) / samples.
template <class T, class B>
reference naive_soft_cross_entropy(const ts::tensor<T, B>& z, const ts::tensor<T, B>& y) {
    const ts::index_t N = z.dim(0), C = z.dim(1), S = z.numel() / (N * C);
    reference r;
    r.grad.assign(static_cast<std::size_t>(z.numel()), 0.0L);
    const auto samples = static_cast<long double>(N * S);
    for (ts::index_t n = 0; n < N; ++n)
        for (ts::index_t s = 0; s < S; ++s) {
            auto at = [&](ts::index_t k) { return static_cast<std::size_t>((n * C + k) * S + s); };
            long double sum = 0, ysum = 0;
            for (ts::index_t k = 0; k < C; ++k) {
                sum += std::exp(static_cast<long double>(z[at(k)]));
                ysum += y[at(k)];
            }
            const long double lse = std::log(sum);
            for (ts::index_t k = 0; k < C; ++k) {
                r.value += y[at(k)] * (lse - z[at(k)]) / samples;
                r.grad[at(k)] = (std::exp(static_cast<long double>(z[at(k)])) / sum * ysum - y[at(k)]) / samples;
            }
        }
    return r;
}

template <class T, class B>
void expect_matches(double value, const ts::tensor<T, B>& grad, const reference& ref, double tol) {
    CHECK(std::abs(value - static_cast<double>(ref.value)) <= tol * std::max(1.0, std::abs(double(ref.value))));
    REQUIRE(static_cast<std::size_t>(grad.numel()) == ref.grad.size());
    double worst = 0;
    ts::index_t where = -1;
    for (ts::index_t i = 0; i < grad.numel(); ++i) {
        const double e = std::abs(static_cast<double>(grad[i]) - static_cast<double>(ref.grad[static_cast<std::size_t>(i)]));
        if (e > worst) worst = e, where = i;
    }
    INFO("largest gradient error " << worst << " at element " << where);
    CHECK(worst <= tol);
}

/// Normalised probabilities along channels, except sample 2 which sums to 1.5 (PyTorch accepts
/// unnormalised targets; the gradient then carries sum(y)).
template <class B>
ts::tensor<double, B> soft_targets(const ts::shape& s, std::uint64_t seed) {
    auto p = random_tensor<double, B>(s, seed, 0.0, 1.0);
    const ts::index_t N = s[0], C = s[1], S = p.numel() / (N * C);
    for (ts::index_t n = 0; n < N; ++n)
        for (ts::index_t i = 0; i < S; ++i) {
            double sum = 0;
            for (ts::index_t c = 0; c < C; ++c) sum += p[(n * C + c) * S + i];
            const double want = n * S + i == 2 ? 1.5 : 1.0;
            for (ts::index_t c = 0; c < C; ++c) p[(n * C + c) * S + i] *= want / sum;
        }
    return p;
}

}  // namespace

template <class B>
void cross_entropy_every_class_count() {
    for (const ts::index_t C : class_counts) {
        CAPTURE(C);
        // 2 images of 3 x 5: odd sizes, and samples not a multiple of any vector width.
        const ts::shape s{2, C, 3, 5};
        const auto z = random_tensor<double, B>(s, 10 + static_cast<std::uint64_t>(C), -4, 4);
        const auto y = random_labels<B>(ts::shape{2, 3, 5}, C, 20 + static_cast<std::uint64_t>(C));
        const ts::loss::cross_entropy ce{};
        ts::tensor<double, B> g;
        const double v = ce.value_and_grad(z, y, g);
        const auto ref = naive_cross_entropy(z, y, -100);
        expect_matches(v, g, ref, 1e-12);
        CHECK(ce.value(z, y) == v);

        // float, as the methods run it: the same cache, a float tolerance.
        const auto zf = random_tensor<float, B>(s, 10 + static_cast<std::uint64_t>(C), -4, 4);
        ts::tensor<float, B> gf;
        const double vf = ce.value_and_grad(zf, y, gf);
        expect_matches(vf, gf, naive_cross_entropy(zf, y, -100), 2e-5);
    }
}
TESSEL_BACKEND_TEST("cross_entropy: 1 to 300 classes, past the exponential cache, equals a naive reference",
                    cross_entropy_every_class_count)

template <class B>
void soft_cross_entropy_every_class_count() {
    for (const ts::index_t C : class_counts) {
        CAPTURE(C);
        const ts::shape s{2, C, 2, 3};
        const auto z = random_tensor<double, B>(s, 30 + static_cast<std::uint64_t>(C), -4, 4);
        const auto p = soft_targets<B>(s, 40 + static_cast<std::uint64_t>(C));
        const ts::loss::soft_cross_entropy sce{};
        ts::tensor<double, B> g;
        const double v = sce.value_and_grad(z, p, g);
        expect_matches(v, g, naive_soft_cross_entropy(z, p), 1e-12);
    }
}
TESSEL_BACKEND_TEST("soft_cross_entropy: 1 to 300 classes equals a naive reference", soft_cross_entropy_every_class_count)

TEST_CASE("cross_entropy at 300 classes: gradient matches finite differences of the value") {
    // Independent of the naive reference above: the loss's own value, differenced.
    auto z = random_tensor<double, ts::cpu_serial>(ts::shape{1, 300, 2, 3}, 3, -3, 3);
    const auto y = random_labels<ts::cpu_serial>(ts::shape{1, 2, 3}, 300, 4);
    const ts::loss::cross_entropy ce{};
    ts::tensor<double> g;
    ce.value_and_grad(z, y, g);
    ts::autograd::gradient_check_options opt;
    opt.max_coords = 600;  // past the cache: classes 128..299 of every sample are among them
    const auto r = ts::autograd::check_scalar_gradient([&] { return ce.value(z, y); }, z, g, opt);
    INFO(r.report);
    CHECK(r.passed);
}

#if TESSEL_HAS_OPENMP
TEST_CASE("cross_entropy and soft_cross_entropy: cpu_omp gradients bit-identical on 1 and 2 threads") {
    // Each sample's gradient is written by one call, so the partition must not change a bit; the
    // value is a reduction whose order may differ, so it is only required to agree closely.
    const int before = omp_get_max_threads();
    for (const ts::index_t C : {3, 129, 300}) {
        CAPTURE(C);
        const ts::shape s{2, C, 5, 4};
        const auto z = random_tensor<double, ts::cpu_omp>(s, 50, -4, 4);
        const auto y = random_labels<ts::cpu_omp>(ts::shape{2, 5, 4}, C, 51);
        const auto p = soft_targets<ts::cpu_omp>(s, 52);
        std::vector<std::vector<double>> hard, soft;
        std::vector<double> values;
        for (const int threads : {1, 2}) {
            omp_set_num_threads(threads);
            ts::tensor<double, ts::cpu_omp> g;
            values.push_back(ts::loss::cross_entropy{}.value_and_grad(z, y, g));
            hard.push_back(g.to_vector());
            ts::loss::soft_cross_entropy{}.value_and_grad(z, p, g);
            soft.push_back(g.to_vector());
        }
        CHECK(hard[0] == hard[1]);
        CHECK(soft[0] == soft[1]);
        CHECK(values[0] == doctest::Approx(values[1]).epsilon(1e-13));
    }
    omp_set_num_threads(before);
}
#endif

namespace {
/// mean |r[y+1,x] - r[y,x]| over N q (H-1) W vertical pairs + mean |r[y,x+1] - r[y,x]| over
/// N q H (W-1) horizontal pairs, and the subgradient (sign(0) = 0).
template <class B>
reference naive_continuity(const ts::tensor<double, B>& r) {
    const ts::index_t planes = r.dim(0) * r.dim(1), H = r.dim(2), W = r.dim(3);
    const long double ny = static_cast<long double>(planes * (H - 1) * W), nx = static_cast<long double>(planes * H * (W - 1));
    reference ref;
    ref.grad.assign(static_cast<std::size_t>(r.numel()), 0.0L);
    auto sign = [](long double d) { return d > 0 ? 1.0L : (d < 0 ? -1.0L : 0.0L); };
    for (ts::index_t p = 0; p < planes; ++p)
        for (ts::index_t y = 0; y < H; ++y)
            for (ts::index_t x = 0; x < W; ++x) {
                const auto i = static_cast<std::size_t>((p * H + y) * W + x);
                if (y + 1 < H) {
                    const long double d = static_cast<long double>(r[i + static_cast<std::size_t>(W)]) - r[i];
                    ref.value += std::abs(d) / ny;
                    ref.grad[i + static_cast<std::size_t>(W)] += sign(d) / ny;
                    ref.grad[i] -= sign(d) / ny;
                }
                if (x + 1 < W) {
                    const long double d = static_cast<long double>(r[i + 1]) - r[i];
                    ref.value += std::abs(d) / nx;
                    ref.grad[i + 1] += sign(d) / nx;
                    ref.grad[i] -= sign(d) / nx;
                }
            }
    return ref;
}
}  // namespace

template <class B>
void continuity_every_size() {
    struct hw {
        ts::index_t h, w;
    };
    for (const hw sz : {hw{2, 2}, hw{2, 7}, hw{7, 2}, hw{3, 4}, hw{4, 3}, hw{5, 5}, hw{6, 8}}) {
        CAPTURE(sz.h);
        CAPTURE(sz.w);
        auto r = random_tensor<double, B>(ts::shape{2, 3, sz.h, sz.w}, 60 + static_cast<std::uint64_t>(sz.h * 10 + sz.w), -1, 1);
        // Two equal neighbours in every image: sign(0) = 0 must hold at a tie, too.
        r[1] = r[0];
        r[r.numel() - 1] = r[r.numel() - 1 - sz.w];
        const ts::loss::spatial_continuity cont{};
        ts::tensor<double, B> g;
        const double v = cont.value_and_grad(r, g);
        expect_matches(v, g, naive_continuity(r), 1e-12);
    }
}
TESSEL_BACKEND_TEST("spatial_continuity: odd, even, two-row and two-column maps equal a naive reference",
                    continuity_every_size)

TEST_CASE("spatial_continuity: a single row or a single column is refused, naming the sizes") {
    // One row has no vertical pair: PyTorch's mean over none is NaN; tessel refuses instead.
    const ts::loss::spatial_continuity cont{};
    for (const ts::shape s : {ts::shape{1, 3, 1, 6}, ts::shape{1, 3, 6, 1}, ts::shape{2, 1, 1, 1}}) {
        CAPTURE(s.str());
        const ts::tensor<double> r(s);
        try {
            (void)cont.value(r);
            FAIL("accepted a map of shape " << s.str());
        } catch (const ts::error& e) {
            const std::string what = e.what();
            CHECK(what.find("at least 2 rows and 2 columns") != std::string::npos);
            CHECK(what.find("H = " + std::to_string(s[2]) + ", W = " + std::to_string(s[3])) != std::string::npos);
        }
    }
}

#if TESSEL_HAS_OPENMP
TEST_CASE("spatial_continuity: cpu_omp gradient bit-identical on 1 and 2 threads") {
    const int before = omp_get_max_threads();
    const auto r = random_tensor<double, ts::cpu_omp>(ts::shape{2, 4, 9, 6}, 70, -1, 1);
    std::vector<std::vector<double>> grads;
    for (const int threads : {1, 2}) {
        omp_set_num_threads(threads);
        ts::tensor<double, ts::cpu_omp> g;
        ts::loss::spatial_continuity{}.value_and_grad(r, g);
        grads.push_back(g.to_vector());
    }
    omp_set_num_threads(before);
    CHECK(grads[0] == grads[1]);
}
#endif
