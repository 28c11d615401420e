// tessel/backend/tags.hpp: the three backend tags and their traits.
//
// A backend is an empty tag type (after Thrust's execution policies and CUTLASS's arch tags):
//   cpu_serial - one thread, Thrust's cpp system; the reference for bitwise reproducibility;
//   cpu_omp    - OpenMP threads, Thrust's omp system; derives from cpu_serial, so any operation
//                without an OpenMP-specific overload falls back to the serial one;
//   cuda       - an NVIDIA GPU, Thrust's cuda system and cuBLAS; usable only from .cu files
//                compiled by nvcc with tessel::cuda linked (docs/cuda.md).
// backend_traits<B> gives the storage container and whether memory lives on a device.
#pragma once
#include <string_view>
#include <type_traits>
#include <vector>

#include "tessel/config.hpp"

namespace tessel {

struct cpu_serial {
    static constexpr std::string_view name = "cpu_serial";
};
struct cpu_omp : cpu_serial {
    static constexpr std::string_view name = "cpu_omp";
};
struct cuda {
    static constexpr std::string_view name = "cuda";
};

template <class T>
inline constexpr bool dependent_false = false;

namespace detail {
/// Storage named for the cuda backend in a translation unit that nvcc does not compile: naming
/// the type is allowed (so declarations and concepts work), using it is a readable error.
template <class T>
struct cuda_storage_unavailable {
    static_assert(dependent_false<T>,
                  "tessel: the cuda backend must be used from a .cu file compiled by nvcc "
                  "(link tessel::cuda); see docs/cuda.md");
};
}  // namespace detail

template <class B>
struct backend_traits;

template <>
struct backend_traits<cpu_serial> {
    template <class T>
    using vector = std::vector<T>;
    static constexpr bool is_device = false;
    template <class V>
    static auto raw(V& v) noexcept { return v.data(); }
};
template <>
struct backend_traits<cpu_omp> : backend_traits<cpu_serial> {};

}  // namespace tessel

#if TESSEL_CUDA_COMPILER
#  include <thrust/device_vector.h>
namespace tessel {
template <>
struct backend_traits<cuda> {
    template <class T>
    using vector = thrust::device_vector<T>;
    static constexpr bool is_device = true;
    template <class V>
    static auto raw(V& v) noexcept { return thrust::raw_pointer_cast(v.data()); }
};
}  // namespace tessel
#else
namespace tessel {
template <>
struct backend_traits<cuda> {
    template <class T>
    using vector = detail::cuda_storage_unavailable<T>;
    static constexpr bool is_device = true;
};
}  // namespace tessel
#endif

namespace tessel {
/// The container backend B stores elements of type T in.
template <class B, class T>
using storage_t = typename backend_traits<B>::template vector<T>;
}  // namespace tessel
