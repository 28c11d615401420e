// cuBLAS-backed ops::gemm for the cuda backend: row-major results against a host triple loop for
// every transpose combination. Skipped (reported as such) without a GPU.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "support/backend_test.hpp"
#include "tessel/backend/cuda/cublas.cuh"
#include "tessel/core/random.hpp"
#include "tessel/core/tensor.hpp"

namespace ts = tessel;
using ts::index_t;

template <class B>
void cublas_gemm_matches_loops() {
    const index_t m = 37, n = 53, k = 29;
    ts::rng g(1);
    for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb) {
            CAPTURE(ta);
            CAPTURE(tb);
            const index_t lda = ta ? m : k, ldb = tb ? k : n;
            std::vector<double> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n)),
                c(static_cast<std::size_t>(m * n));
            for (auto& v : a) v = g.uniform(-1, 1);
            for (auto& v : b) v = g.uniform(-1, 1);
            for (auto& v : c) v = g.uniform(-1, 1);
            ts::tensor<double, B> da(ts::shape{m * k}, std::span<const double>(a)),
                db(ts::shape{k * n}, std::span<const double>(b)), dc(ts::shape{m * n}, std::span<const double>(c));
            ts::ops::gemm(B{}, ts::ops::gemm_args<double>{.trans_a = ta ? ts::ops::op::trans : ts::ops::op::none,
                                                         .trans_b = tb ? ts::ops::op::trans : ts::ops::op::none,
                                                         .m = m, .n = n, .k = k, .alpha = 1.5, .a = da.data(),
                                                         .lda = lda, .b = db.data(), .ldb = ldb, .beta = -0.5,
                                                         .c = dc.data(), .ldc = n});
            const auto out = dc.to_vector();
            double err = 0;
            for (index_t i = 0; i < m; ++i)
                for (index_t j = 0; j < n; ++j) {
                    double s = 0;
                    for (index_t l = 0; l < k; ++l)
                        s += (ta ? a[static_cast<std::size_t>(l * lda + i)] : a[static_cast<std::size_t>(i * lda + l)]) *
                             (tb ? b[static_cast<std::size_t>(j * ldb + l)] : b[static_cast<std::size_t>(l * ldb + j)]);
                    const double want = 1.5 * s - 0.5 * c[static_cast<std::size_t>(i * n + j)];
                    err = std::max(err, std::abs(want - out[static_cast<std::size_t>(i * n + j)]));
                }
            CHECK(err < 1e-12);
        }
}
TESSEL_CUDA_TEST("gemm(cuda): cuBLAS row-major product equals a triple loop", cublas_gemm_matches_loops)

TEST_CASE("cublas_handle is movable and owns one context") {
    if (!ts::cuda_device_available()) {
        MESSAGE("no CUDA device: cublas_handle not exercised");
        return;
    }
    ts::cuda_detail::cublas_handle h;
    CHECK(h.get() != nullptr);
    ts::cuda_detail::cublas_handle moved(std::move(h));
    CHECK(moved.get() != nullptr);
    CHECK(h.get() == nullptr);
}
