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
    struct shape {
        index_t h, w;
    };
    // 7x9 is the plain case; 150x2 and 41x3 have rows far narrower than a work item, so one item
    // covers many rows and crosses from one tap (or channel) to the next; 3x70 has rows wider than
    // an item, one row each.
    for (const auto sh : {shape{7, 9}, shape{150, 2}, shape{41, 3}, shape{3, 70}})
        for (const auto q : {gcase{3, 1, 1, 1}, gcase{3, 2, 0, 1}, gcase{2, 1, 1, 2}, gcase{5, 3, 2, 1}, gcase{1, 2, 1, 1}}) {
            if ((sh.h + 2 * q.p - q.d * (q.k - 1) - 1) < 0 || (sh.w + 2 * q.p - q.d * (q.k - 1) - 1) < 0) continue;
            CAPTURE(sh.h);
            CAPTURE(sh.w);
            CAPTURE(q.k);
            CAPTURE(q.s);
            CAPTURE(q.p);
            CAPTURE(q.d);
            const index_t C = 2, H = sh.h, W = sh.w;
            ts::ops::conv_geometry g{.channels = C, .height = H, .width = W, .kernel = q.k, .stride = q.s,
                                     .padding = q.p, .dilation = q.d};
            g.finish("test");
            const index_t K = g.col_rows(), OW = g.out_width, P = g.out_height * OW;
            // Small integers: every sum below is exact, so col2im is compared with ==.
            std::vector<double> x(static_cast<std::size_t>(C * H * W));
            for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(static_cast<int>((i * 37) % 19) - 9);
            const auto at = [&](index_t k, index_t oh, index_t ow) -> double {
                const index_t c = k / (q.k * q.k), kh = (k / q.k) % q.k, kw = k % q.k;
                const index_t ih = oh * q.s - q.p + kh * q.d, iw = ow * q.s - q.p + kw * q.d;
                return (ih >= 0 && ih < H && iw >= 0 && iw < W) ? x[static_cast<std::size_t>((c * H + ih) * W + iw)] : 0.0;
            };
            std::vector<double> col(static_cast<std::size_t>(K * P));
            ts::ops::im2col(B{}, g, x.data(), 0, g.out_height, col.data());
            for (index_t k = 0; k < K; ++k)
                for (index_t oh = 0; oh < g.out_height; ++oh)
                    for (index_t ow = 0; ow < OW; ++ow)
                        REQUIRE(col[static_cast<std::size_t>(k * P + oh * OW + ow)] == at(k, oh, ow));
            // The scatter-add definition of col2im for an integer-valued z.
            std::vector<double> z(col.size());
            for (std::size_t i = 0; i < z.size(); ++i) z[i] = static_cast<double>(static_cast<int>((i * 53) % 11) - 5);
            std::vector<double> want(x.size(), 0.0);
            for (index_t k = 0; k < K; ++k)
                for (index_t oh = 0; oh < g.out_height; ++oh)
                    for (index_t ow = 0; ow < OW; ++ow) {
                        const index_t c = k / (q.k * q.k), kh = (k / q.k) % q.k, kw = k % q.k;
                        const index_t ih = oh * q.s - q.p + kh * q.d, iw = ow * q.s - q.p + kw * q.d;
                        if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                            want[static_cast<std::size_t>((c * H + ih) * W + iw)] += z[static_cast<std::size_t>(k * P + oh * OW + ow)];
                    }
            // Bands of 5 and 7 output rows (neither divides a work item's run): each band's columns
            // equal the whole image's, and col2im accumulated band by band equals the definition.
            for (const index_t band_rows : {index_t{5}, index_t{7}, g.out_height}) {
                CAPTURE(band_rows);
                std::vector<double> back(x.size(), 0.0);
                for (index_t oh = 0; oh < g.out_height; oh += band_rows) {
                    const index_t e = std::min(oh + band_rows, g.out_height), rows = e - oh;
                    std::vector<double> band(static_cast<std::size_t>(K * rows * OW), -99.0);
                    ts::ops::im2col(B{}, g, x.data(), oh, e, band.data());
                    for (index_t k = 0; k < K; ++k)
                        for (index_t i = 0; i < rows * OW; ++i)
                            REQUIRE(band[static_cast<std::size_t>(k * rows * OW + i)] ==
                                    col[static_cast<std::size_t>(k * P + oh * OW + i)]);
                    for (index_t k = 0; k < K; ++k)
                        for (index_t i = 0; i < rows * OW; ++i)
                            band[static_cast<std::size_t>(k * rows * OW + i)] = z[static_cast<std::size_t>(k * P + oh * OW + i)];
                    ts::ops::col2im(B{}, g, band.data(), oh, e, back.data());
                }
                CHECK(back == want);
            }
            // Adjoint: <im2col(x), z> == <x, col2im(z)>.
            double lhs = 0, rhs = 0;
            for (std::size_t i = 0; i < col.size(); ++i) lhs += col[i] * z[i];
            for (std::size_t i = 0; i < x.size(); ++i) rhs += x[i] * want[i];
            CHECK(lhs == rhs);
        }
}
TESSEL_BACKEND_TEST("im2col: matches its definition; col2im is its adjoint", im2col_definition_and_adjoint)

TEST_CASE("conv_geometry: invalid parameters name the caller and the values") {
    ts::ops::conv_geometry g{.channels = 1, .height = 4, .width = 4, .kernel = 3, .stride = 0};
    CHECK_THROWS_WITH_AS(g.finish("tessel::test"), doctest::Contains("stride must be >= 1, got 0"), ts::error);
    ts::ops::conv_geometry h{.channels = 1, .height = 2, .width = 4, .kernel = 3, .dilation = 2};
    CHECK_THROWS_WITH_AS(h.finish("tessel::test"), doctest::Contains("kernel extent 5"), ts::error);
}

TEST_CASE("im2col: rows per work item") {
    // A work item covers max(1, 64 / width) rows, never more than there are, never fewer than one.
    CHECK(ts::ops::row_chunk(2, 1000) == 32);
    CHECK(ts::ops::row_chunk(3, 1000) == 21);
    CHECK(ts::ops::row_chunk(63, 1000) == 1);
    CHECK(ts::ops::row_chunk(64, 1000) == 1);
    CHECK(ts::ops::row_chunk(500, 1000) == 1);
    CHECK(ts::ops::row_chunk(2, 5) == 5);
    CHECK(ts::ops::row_chunk(0, 10) == 10);
    CHECK(ts::ops::row_chunk(2, 0) == 1);
}
