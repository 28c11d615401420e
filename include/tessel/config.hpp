// tessel/config.hpp: the macros every tessel header relies on.
//
// TESSEL_HD marks functions that run on the host and, under nvcc, on the device: the hot-loop
// functors are written once with it and dispatched through Thrust on every backend.
// TESSEL_CUDA_COMPILER is 1 only when nvcc compiles the current translation unit; only then are
// CUDA kernels defined (backend/cuda/*.cuh). TESSEL_HAS_CUDA / TESSEL_HAS_OPENMP come from the
// CMake targets tessel::cuda and tessel::openmp; without CMake, TESSEL_HAS_OPENMP follows the
// compiler's -fopenmp (_OPENMP) unless the program defines it. The hot loops go through Thrust:
// outside nvcc its device system is the host's (THRUST_DEVICE_SYSTEM_CPP), and a missing Thrust
// is an #error naming where to get it (docs/without_cmake.md).
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
#  if defined(_OPENMP)
#    define TESSEL_HAS_OPENMP 1
#  else
#    define TESSEL_HAS_OPENMP 0
#  endif
#endif

// Thrust's device system defaults to CUDA; a host compiler must not see that default. The macro
// expands where Thrust reads it, after Thrust has defined THRUST_DEVICE_SYSTEM_CPP.
#if !defined(__CUDACC__) && !defined(THRUST_DEVICE_SYSTEM)
#  define THRUST_DEVICE_SYSTEM THRUST_DEVICE_SYSTEM_CPP
#endif
#if defined(__has_include)
#  if !__has_include(<thrust/for_each.h>)
#    error "tessel needs Thrust: install Debian's libthrust-dev, or add the CUDA toolkit's -I/usr/local/cuda/include/cccl (see docs/without_cmake.md)"
#  endif
#endif

#if defined(__GNUC__) || defined(__clang__)
#  define TESSEL_RESTRICT __restrict__
#else
#  define TESSEL_RESTRICT
#endif
