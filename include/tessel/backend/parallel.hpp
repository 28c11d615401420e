// tessel/backend/parallel.hpp: running a functor over an index range on a backend.
//
// This is the one place hot loops meet Thrust. A loop body is written once as a TESSEL_HD functor
// taking an index and is run by
//     tessel::parallel_for(B{}, n, functor);
// which calls thrust::for_each with thrust::cpp::par (cpu_serial), thrust::omp::par (cpu_omp) or
// thrust::cuda::par (cuda, nvcc only). parallel_reduce does the same for a sum of f(i).
// Functors receive raw pointers or views, never containers.
#pragma once
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/system/cpp/execution_policy.h>
#include <thrust/transform_reduce.h>
#include <thrust/functional.h>

#include "tessel/backend/concepts.hpp"
#include "tessel/core/shape.hpp"

#if TESSEL_HAS_OPENMP
#  include <omp.h>
#  include <thrust/system/omp/execution_policy.h>
#endif
#if TESSEL_CUDA_COMPILER
#  include <thrust/system/cuda/execution_policy.h>
#endif

namespace tessel {

/// The Thrust execution policy of a backend.
inline auto execution_policy(cpu_serial) { return thrust::cpp::par; }

inline auto execution_policy(cpu_omp) {
#if TESSEL_HAS_OPENMP
    return thrust::omp::par;
#else
    return thrust::cpp::par;  // built without tessel::openmp: cpu_omp runs serially
#endif
}

template <class B>
    requires std::same_as<B, cuda>
auto execution_policy(B) {
#if TESSEL_CUDA_COMPILER
    return thrust::cuda::par;
#else
    static_assert(dependent_false<B>,
                  "tessel: the cuda backend must be used from a .cu file compiled by nvcc "
                  "(link tessel::cuda); see docs/cuda.md");
    return 0;
#endif
}

/// Number of threads a backend's CPU loops use (1 for cpu_serial).
inline int num_threads(cpu_serial) { return 1; }
inline int num_threads(cpu_omp) {
#if TESSEL_HAS_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/// Calls f(i) for every i in [0, n) on backend B, in unspecified order (concurrently on cpu_omp
/// and cuda). f must be safe to call concurrently for distinct i.
template <class B, class F>
void parallel_for(B backend, index_t n, F f) {
    if (n <= 0) return;
    thrust::for_each(execution_policy(backend), thrust::counting_iterator<index_t>(0),
                     thrust::counting_iterator<index_t>(n), f);
}

/// Returns init + sum of f(i) over [0, n), with the summation order of backend B (deterministic
/// on cpu_serial).
template <class B, class T, class F>
T parallel_sum(B backend, index_t n, T init, F f) {
    if (n <= 0) return init;
    return thrust::transform_reduce(execution_policy(backend), thrust::counting_iterator<index_t>(0),
                                    thrust::counting_iterator<index_t>(n), f, init, thrust::plus<T>());
}

}  // namespace tessel
