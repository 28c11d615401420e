// tessel/ops/gemm.hpp: general matrix multiply, C = alpha op(A) op(B) + beta C, row-major.
//
// The one dense kernel behind conv2d, conv_transpose2d and linear. On the CPU backends it is
// Eigen's blocked GEMM applied to Eigen::Map views of the caller's buffers (no copies, no link
// dependency); cpu_serial runs it on one thread, cpu_omp on OpenMP's threads. Under nvcc the cuda
// overload lives in backend/cuda/cublas.cuh and is pulled in here. Needs tessel::eigen.
#pragma once
#include <algorithm>

#if !__has_include(<Eigen/Core>)
#  error "tessel/ops/gemm.hpp needs Eigen 3.4: link the tessel::eigen target"
#endif
#include <Eigen/Core>

#include "tessel/backend/parallel.hpp"
#include "tessel/core/error.hpp"
#include "tessel/core/shape.hpp"
#include "tessel/ops/gemm_args.hpp"

#if defined(_OPENMP)
#  include <omp.h>
#endif

namespace tessel::ops {

namespace detail {

template <class T>
void check_gemm(const gemm_args<T>& g) {
    constexpr const char* where = "tessel::ops::gemm";
    expects(g.m >= 0 && g.n >= 0 && g.k >= 0, where, "negative size m=", g.m, " n=", g.n, " k=", g.k);
    const index_t a_cols = g.trans_a == op::none ? g.k : g.m;
    const index_t b_cols = g.trans_b == op::none ? g.n : g.k;
    expects(g.lda >= std::max<index_t>(1, a_cols), where, "lda=", g.lda, " is smaller than A's row length ", a_cols);
    expects(g.ldb >= std::max<index_t>(1, b_cols), where, "ldb=", g.ldb, " is smaller than B's row length ", b_cols);
    expects(g.ldc >= std::max<index_t>(1, g.n), where, "ldc=", g.ldc, " is smaller than C's row length ", g.n);
}

/// Eigen's product on Map views of the caller's storage. Eigen parallelises a product itself
/// when it is built with OpenMP, with as many threads as omp_get_max_threads() says; callers
/// set that per thread (an ICV, so this is thread-safe) to choose serial or parallel.
template <class T>
void eigen_gemm(const gemm_args<T>& g) {
    using mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using stride = Eigen::OuterStride<>;
    using cmap = Eigen::Map<const mat, Eigen::Unaligned, stride>;
    using map = Eigen::Map<mat, Eigen::Unaligned, stride>;
    if (g.m == 0 || g.n == 0) return;
    map c(g.c, g.m, g.n, stride(g.ldc));
    if (g.k == 0 || g.alpha == T(0)) {
        if (g.beta == T(0))
            c.setZero();
        else
            c *= g.beta;
        return;
    }
    const bool ta = g.trans_a == op::trans, tb = g.trans_b == op::trans;
    cmap a(g.a, ta ? g.k : g.m, ta ? g.m : g.k, stride(g.lda));
    cmap b(g.b, tb ? g.n : g.k, tb ? g.k : g.n, stride(g.ldb));
    auto run = [&](const auto& lhs, const auto& rhs) {
        if (g.beta == T(0)) {
            c.noalias() = g.alpha * (lhs * rhs);  // never reads C, so NaN garbage in C is harmless
        } else {
            if (g.beta != T(1)) c *= g.beta;
            c.noalias() += g.alpha * (lhs * rhs);
        }
    };
    if (!ta && !tb) run(a, b);
    else if (ta && !tb) run(a.transpose(), b);
    else if (!ta && tb) run(a, b.transpose());
    else run(a.transpose(), b.transpose());
}

/// Sets this thread's OpenMP thread budget for the lifetime of the guard.
class omp_threads_guard {
public:
    explicit omp_threads_guard([[maybe_unused]] int threads) {
#if defined(_OPENMP)
        m_old = omp_get_max_threads();
        omp_set_num_threads(threads);
#endif
    }
    ~omp_threads_guard() {
#if defined(_OPENMP)
        omp_set_num_threads(m_old);
#endif
    }
    omp_threads_guard(const omp_threads_guard&) = delete;
    omp_threads_guard& operator=(const omp_threads_guard&) = delete;

private:
    [[maybe_unused]] int m_old = 1;
};

}  // namespace detail

/// C = alpha op(A) op(B) + beta C on one thread. With beta = 0, C is not read.
template <class T>
void gemm(cpu_serial, const gemm_args<T>& g) {
    detail::check_gemm(g);
    detail::omp_threads_guard one(1);
    detail::eigen_gemm(g);
}

/// C = alpha op(A) op(B) + beta C on OpenMP's threads (omp_get_max_threads(), e.g.
/// OMP_NUM_THREADS). C is cut into one block of rows or columns per thread (the longer side) and
/// each thread runs the serial kernel on its block. Measured on the 2-core machine this beat
/// Eigen's own parallel GEMM for the conv shapes (m = 100 channels, n = thousands of pixels),
/// where Eigen's per-panel barriers cost more than they save, and it is less hurt by a core being
/// shared with another process (docs/nn_conv.md).
template <class T>
void gemm(cpu_omp, const gemm_args<T>& g) {
    detail::check_gemm(g);
#if defined(_OPENMP)
    const int threads = omp_get_max_threads();
    // Below ~1 MFLOP a parallel region costs more than it saves.
    if (threads > 1 && g.m * g.n * std::max<index_t>(g.k, 1) >= (index_t(1) << 19)) {
        const bool split_cols = g.n >= g.m;
        const index_t len = split_cols ? g.n : g.m;
        detail::omp_threads_guard inner(1);  // each block is computed serially by its thread
#  pragma omp parallel num_threads(threads)
        {
            const index_t t = omp_get_thread_num(), nt = omp_get_num_threads();
            // Block edges on multiples of 16 keep the per-thread column blocks vector-aligned.
            auto edge = [&](index_t i) { return i == nt ? len : std::min(len, (len * i / nt) & ~index_t(15)); };
            const index_t b0 = edge(t), b1 = edge(t + 1);
            if (b1 > b0) {
                gemm_args<T> part = g;
                if (split_cols) {
                    part.n = b1 - b0;
                    part.b = g.trans_b == op::none ? g.b + b0 : g.b + b0 * g.ldb;
                    part.c = g.c + b0;
                } else {
                    part.m = b1 - b0;
                    part.a = g.trans_a == op::none ? g.a + b0 * g.lda : g.a + b0;
                    part.c = g.c + b0 * g.ldc;
                }
                detail::eigen_gemm(part);
            }
        }
        return;
    }
#endif
    detail::omp_threads_guard one(1);
    detail::eigen_gemm(g);
}

}  // namespace tessel::ops

#if TESSEL_CUDA_COMPILER
#  include "tessel/backend/cuda/cublas.cuh"
#endif
