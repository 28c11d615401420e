// Host <-> backend copies of tensor contents for the superpixel stages (bulk copies on cuda).
#pragma once
#include <algorithm>

#include "tessel/core/tensor.hpp"
#if TESSEL_CUDA_COMPILER
#  include <thrust/copy.h>
#endif

namespace tessel::detail {

/// Replaces t's contents with the n values at host pointer src, shaped s.
template <class T, class B>
void upload(tensor<T, B>& t, const shape& s, const T* src) {
    t.assign(s, src, src + s.numel());
}

/// Copies all of t's values to host memory at dst.
template <class T, class B>
void download(const tensor<T, B>& t, T* dst) {
    if constexpr (HostBackend<B>) {
        std::copy(t.data(), t.data() + t.numel(), dst);
    } else {
#if TESSEL_CUDA_COMPILER
        thrust::copy(t.storage().begin(), t.storage().end(), dst);
#else
        static_assert(dependent_false<B>, "tessel: the cuda backend must be used from a .cu file compiled by nvcc "
                                          "(link tessel::cuda); see docs/cuda.md");
#endif
    }
}

}  // namespace tessel::detail
