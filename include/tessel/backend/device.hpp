// tessel/backend/device.hpp: asking at run time whether a CUDA device can be used.
//
// cuda_device_available() is true only in code compiled by nvcc, with tessel::cuda linked, on a
// machine where the CUDA runtime reports at least one device. Tests use it to skip (and report as
// skipped) their GPU cases on machines without one.
#pragma once
#include "tessel/config.hpp"
#if TESSEL_CUDA_COMPILER
#  include <cuda_runtime_api.h>
#endif

namespace tessel {

inline bool cuda_device_available() noexcept {
#if TESSEL_CUDA_COMPILER
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();  // clear the sticky error so later calls are unaffected
        return false;
    }
    return count > 0;
#else
    return false;
#endif
}

}  // namespace tessel
