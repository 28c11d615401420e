// ops::gemm against a triple loop (all transpose combinations, strided operands, alpha/beta),
// and im2col/col2im against their definitions (col2im is the adjoint of im2col).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "support/backend_test.hpp"
#include "tessel/core/random.hpp"
#include "tessel/ops/gemm.hpp"
#include "tessel/ops/im2col.hpp"

namespace ts = tessel;
using ts::index_t;

namespace {
template <class T>
std::vector<T> random_vec(std::size_t n, std::uint64_t seed) {
    ts::rng g(seed);
    std::vector<T> v(n);
    for (auto& x : v) x = static_cast<T>(g.uniform(-1.0, 1.0));
    return v;
}
}  // namespace

template <class B>
void gemm_matches_loops() {
    struct dims {
        index_t m, n, k;
    };
    for (const auto d : {dims{1, 1, 1}, dims{5, 7, 3}, dims{64, 200, 33}, dims{130, 17, 90}, dims{3, 4, 0}}) {
        for (int ta = 0; ta < 2; ++ta)
            for (int tb = 0; tb < 2; ++tb) {
                CAPTURE(d.m);
                CAPTURE(d.n);
                CAPTURE(d.k);
                CAPTURE(ta);
                CAPTURE(tb);
                // Padded leading dimensions check that strides are honoured.
                const index_t lda = (ta ? d.m : d.k) + 3, ldb = (tb ? d.k : d.n) + 2, ldc = d.n + 5;
                const auto a = random_vec<double>(static_cast<std::size_t>((ta ? d.k : d.m) * lda), 1);
                const auto b = random_vec<double>(static_cast<std::size_t>((tb ? d.n : d.k) * ldb), 2);
                auto c = random_vec<double>(static_cast<std::size_t>(d.m * ldc), 3);
                const auto c0 = c;
                const double alpha = 0.75, beta = -0.5;
                ts::ops::gemm(B{}, ts::ops::gemm_args<double>{.trans_a = ta ? ts::ops::op::trans : ts::ops::op::none,
                                                             .trans_b = tb ? ts::ops::op::trans : ts::ops::op::none,
                                                             .m = d.m, .n = d.n, .k = d.k, .alpha = alpha,
                                                             .a = a.data(), .lda = lda, .b = b.data(), .ldb = ldb,
                                                             .beta = beta, .c = c.data(), .ldc = ldc});
                double err = 0;
                for (index_t i = 0; i < d.m; ++i)
                    for (index_t j = 0; j < ldc; ++j) {
                        double ref = c0[static_cast<std::size_t>(i * ldc + j)];
                        if (j < d.n) {
                            double s = 0;
                            for (index_t l = 0; l < d.k; ++l)
                                s += (ta ? a[static_cast<std::size_t>(l * lda + i)] : a[static_cast<std::size_t>(i * lda + l)]) *
                                     (tb ? b[static_cast<std::size_t>(j * ldb + l)] : b[static_cast<std::size_t>(l * ldb + j)]);
                            ref = alpha * s + beta * ref;
                        }
                        err = std::max(err, std::abs(ref - c[static_cast<std::size_t>(i * ldc + j)]));
                    }
                CHECK(err < 1e-12);
            }
    }
}
TESSEL_BACKEND_TEST("gemm: equals a triple loop for every transpose and stride", gemm_matches_loops)

template <class B>
void gemm_beta_zero_ignores_c() {
    // With beta = 0, C's old contents (NaN here) must not leak into the result, as in BLAS.
    std::vector<float> a{1, 2, 3, 4}, b{1, 0, 0, 1}, c(4, std::numeric_limits<float>::quiet_NaN());
    ts::ops::gemm(B{}, ts::ops::gemm_args<float>{.m = 2, .n = 2, .k = 2, .a = a.data(), .lda = 2, .b = b.data(),
                                                 .ldb = 2, .c = c.data(), .ldc = 2});
    CHECK(c == std::vector<float>{1, 2, 3, 4});
    // A product large enough to be split between threads on cpu_omp, against cpu_serial.
    const index_t m = 150, n = 333, k = 70;
    const auto x = random_vec<float>(static_cast<std::size_t>(m * k), 4), y = random_vec<float>(static_cast<std::size_t>(k * n), 5);
    std::vector<float> c1(static_cast<std::size_t>(m * n)), c2(c1.size());
    ts::ops::gemm_args<float> g{.m = m, .n = n, .k = k, .a = x.data(), .lda = k, .b = y.data(), .ldb = n, .c = c1.data(), .ldc = n};
    ts::ops::gemm(ts::cpu_serial{}, g);
    g.c = c2.data();
    ts::ops::gemm(B{}, g);
    for (std::size_t i = 0; i < c1.size(); ++i) REQUIRE(std::abs(c1[i] - c2[i]) < 1e-4f);
}
TESSEL_BACKEND_TEST("gemm: beta = 0 never reads C; backends agree", gemm_beta_zero_ignores_c)

TEST_CASE("gemm: invalid arguments are rejected with their values") {
    std::vector<float> a(4), b(4), c(4);
    ts::ops::gemm_args<float> g{.m = 2, .n = 2, .k = 2, .a = a.data(), .lda = 1, .b = b.data(), .ldb = 2, .c = c.data(), .ldc = 2};
    CHECK_THROWS_WITH_AS(ts::ops::gemm(ts::cpu_serial{}, g), doctest::Contains("lda=1"), ts::error);
    g.lda = 2;
    g.m = -1;
    CHECK_THROWS_AS(ts::ops::gemm(ts::cpu_serial{}, g), ts::error);
}

template <class B>
void im2col_definition_and_adjoint() {
    struct gcase {
        index_t k, s, p, d;
    };
    for (const auto q : {gcase{3, 1, 1, 1}, gcase{3, 2, 0, 1}, gcase{2, 1, 1, 2}, gcase{5, 3, 2, 1}, gcase{1, 2, 1, 1}}) {
        CAPTURE(q.k);
        CAPTURE(q.s);
        CAPTURE(q.p);
        CAPTURE(q.d);
        ts::ops::conv_geometry g{.channels = 2, .height = 7, .width = 9, .kernel = q.k, .stride = q.s, .padding = q.p,
                                 .dilation = q.d};
        g.finish("test");
        const index_t K = g.col_rows(), P = g.out_height * g.out_width;
        const auto x = random_vec<double>(static_cast<std::size_t>(2 * 7 * 9), 7);
        // The whole image, and the same in bands of 2 rows: identical columns.
        std::vector<double> col(static_cast<std::size_t>(K * P));
        ts::ops::im2col(B{}, g, x.data(), 0, g.out_height, col.data());
        for (index_t c = 0; c < 2; ++c)
            for (index_t kh = 0; kh < q.k; ++kh)
                for (index_t kw = 0; kw < q.k; ++kw)
                    for (index_t oh = 0; oh < g.out_height; ++oh)
                        for (index_t ow = 0; ow < g.out_width; ++ow) {
                            const index_t ih = oh * q.s - q.p + kh * q.d, iw = ow * q.s - q.p + kw * q.d;
                            const double want = (ih >= 0 && ih < 7 && iw >= 0 && iw < 9) ? x[static_cast<std::size_t>((c * 7 + ih) * 9 + iw)] : 0.0;
                            REQUIRE(col[static_cast<std::size_t>(((c * q.k + kh) * q.k + kw) * P + oh * g.out_width + ow)] == want);
                        }
        // Adjoint: <im2col(x), z> == <x, col2im(z)>, with col2im accumulated band by band.
        const auto z = random_vec<double>(col.size(), 8);
        std::vector<double> back(x.size(), 0.0);
        for (index_t oh = 0; oh < g.out_height; oh += 2) {
            const index_t e = std::min(oh + 2, g.out_height), rows = e - oh;
            std::vector<double> band(static_cast<std::size_t>(K * rows * g.out_width));
            for (index_t k = 0; k < K; ++k)
                for (index_t i = 0; i < rows * g.out_width; ++i)
                    band[static_cast<std::size_t>(k * rows * g.out_width + i)] = z[static_cast<std::size_t>(k * P + oh * g.out_width + i)];
            ts::ops::col2im(B{}, g, band.data(), oh, e, back.data());
        }
        double lhs = 0, rhs = 0;
        for (std::size_t i = 0; i < col.size(); ++i) lhs += col[i] * z[i];
        for (std::size_t i = 0; i < x.size(); ++i) rhs += x[i] * back[i];
        CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
    }
}
TESSEL_BACKEND_TEST("im2col: matches its definition; col2im is its adjoint", im2col_definition_and_adjoint)

TEST_CASE("conv_geometry: invalid parameters name the caller and the values") {
    ts::ops::conv_geometry g{.channels = 1, .height = 4, .width = 4, .kernel = 3, .stride = 0};
    CHECK_THROWS_WITH_AS(g.finish("tessel::test"), doctest::Contains("stride must be >= 1, got 0"), ts::error);
    ts::ops::conv_geometry h{.channels = 1, .height = 2, .width = 4, .kernel = 3, .dilation = 2};
    CHECK_THROWS_WITH_AS(h.finish("tessel::test"), doctest::Contains("kernel extent 5"), ts::error);
}
