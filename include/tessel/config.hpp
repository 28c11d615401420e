// tessel/config.hpp: the macros every tessel header relies on.
//
// TESSEL_HD marks functions that run on the host and, under nvcc, on the device: the hot-loop
// functors are written once with it and dispatched through Thrust on every backend.
// TESSEL_CUDA_COMPILER is 1 only when nvcc compiles the current translation unit; only then are
// CUDA kernels defined (backend/cuda/*.cuh). TESSEL_HAS_CUDA / TESSEL_HAS_OPENMP come from the
// CMake targets tessel::cuda and tessel::openmp.
#pragma once
#include "tessel/version.hpp"

#if defined(__CUDACC__)
#  define TESSEL_HD __host__ __device__
#  define TESSEL_CUDA_COMPILER 1
#else
#  define TESSEL_HD
#  define TESSEL_CUDA_COMPILER 0
#endif

#ifndef TESSEL_HAS_CUDA
#  define TESSEL_HAS_CUDA 0
#endif
#ifndef TESSEL_HAS_OPENMP
#  define TESSEL_HAS_OPENMP 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#  define TESSEL_RESTRICT __restrict__
#else
#  define TESSEL_RESTRICT
#endif
