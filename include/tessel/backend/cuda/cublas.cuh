// tessel/backend/cuda/cublas.cuh: cuBLAS behind tessel's row-major gemm, for the cuda backend.
//
// Only for translation units compiled by nvcc with tessel::cuda linked (ops/gemm.hpp includes it
// there). cublas_handle owns one cuBLAS context (RAII, movable, not copyable); gemm(cuda, args)
// uses one handle per host thread, created on first use. cuBLAS is column-major, so the row-major
// product C = op(A) op(B) is issued as the column-major C^T = op(B)^T op(A)^T, which reads the
// same memory without any transposition.
#pragma once
#include "tessel/config.hpp"
#if !TESSEL_CUDA_COMPILER
#  error "tessel/backend/cuda/cublas.cuh must be compiled by nvcc (link tessel::cuda); see docs/cuda.md"
#endif
#include <cublas_v2.h>

#include <type_traits>
#include <utility>

#include "tessel/backend/tags.hpp"
#include "tessel/core/error.hpp"
#include "tessel/ops/gemm_args.hpp"

namespace tessel::cuda_detail {

inline void check_cublas(cublasStatus_t st, const char* where) {
    expects(st == CUBLAS_STATUS_SUCCESS, where, "cuBLAS call failed with status ", static_cast<int>(st), " (",
            cublasGetStatusString(st), ")");
}

/// One cuBLAS context. Creating one costs milliseconds, so layers share the per-thread default.
class cublas_handle {
public:
    cublas_handle() { check_cublas(cublasCreate(&m_handle), "tessel::cublas_handle"); }
    ~cublas_handle() {
        if (m_handle) cublasDestroy(m_handle);
    }
    cublas_handle(const cublas_handle&) = delete;
    cublas_handle& operator=(const cublas_handle&) = delete;
    cublas_handle(cublas_handle&& o) noexcept : m_handle(std::exchange(o.m_handle, nullptr)) {}
    cublas_handle& operator=(cublas_handle&& o) noexcept {
        if (this != &o) {
            if (m_handle) cublasDestroy(m_handle);
            m_handle = std::exchange(o.m_handle, nullptr);
        }
        return *this;
    }
    [[nodiscard]] cublasHandle_t get() const noexcept { return m_handle; }

private:
    cublasHandle_t m_handle = nullptr;
};

/// The calling host thread's handle (cuBLAS handles must not be shared between threads).
inline cublas_handle& default_cublas_handle() {
    thread_local cublas_handle h;
    return h;
}

}  // namespace tessel::cuda_detail

namespace tessel::ops {

/// C = alpha op(A) op(B) + beta C with device pointers, through cuBLAS (float or double).
template <class T>
void gemm(cuda, const gemm_args<T>& g, cublasHandle_t handle = cuda_detail::default_cublas_handle().get()) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "tessel::ops::gemm(cuda): float or double");
    constexpr const char* where = "tessel::ops::gemm(cuda)";
    expects(g.m >= 0 && g.n >= 0 && g.k >= 0, where, "negative size m=", g.m, " n=", g.n, " k=", g.k);
    if (g.m == 0 || g.n == 0) return;
    const auto ta = g.trans_a == op::trans ? CUBLAS_OP_T : CUBLAS_OP_N;
    const auto tb = g.trans_b == op::trans ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int m = static_cast<int>(g.m), n = static_cast<int>(g.n), k = static_cast<int>(g.k);
    const int lda = static_cast<int>(g.lda), ldb = static_cast<int>(g.ldb), ldc = static_cast<int>(g.ldc);
    if constexpr (std::is_same_v<T, float>)
        cuda_detail::check_cublas(
            cublasSgemm(handle, tb, ta, n, m, k, &g.alpha, g.b, ldb, g.a, lda, &g.beta, g.c, ldc), where);
    else
        cuda_detail::check_cublas(
            cublasDgemm(handle, tb, ta, n, m, k, &g.alpha, g.b, ldb, g.a, lda, &g.beta, g.c, ldc), where);
}

}  // namespace tessel::ops
