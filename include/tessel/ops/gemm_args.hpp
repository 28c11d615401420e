// tessel/ops/gemm_args.hpp: the operands of one row-major GEMM, shared by every backend's gemm.
//
// Kept apart from ops/gemm.hpp so that the cuBLAS path (backend/cuda/cublas.cuh) does not need
// Eigen's headers under nvcc.
#pragma once
#include "tessel/core/shape.hpp"

namespace tessel::ops {

/// Whether a GEMM operand is used as stored or transposed (BLAS's 'N' / 'T').
enum class op : bool { none = false, trans = true };

/// The dimensions and operands of one row-major GEMM: C[m, n] = alpha op(A)[m, k] op(B)[k, n] +
/// beta C. lda is the row stride of A as stored (k for op::none, m for op::trans), and so on.
template <class T>
struct gemm_args {
    op trans_a = op::none, trans_b = op::none;
    index_t m = 0, n = 0, k = 0;
    T alpha = T(1);
    const T* a = nullptr;
    index_t lda = 0;
    const T* b = nullptr;
    index_t ldb = 0;
    T beta = T(0);
    T* c = nullptr;
    index_t ldc = 0;
};

}  // namespace tessel::ops
