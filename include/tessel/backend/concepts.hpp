// tessel/backend/concepts.hpp: what a backend tag must provide.
#pragma once
#include <concepts>
#include <string_view>
#include <type_traits>

#include "tessel/backend/tags.hpp"

namespace tessel {

/// Backend: an empty tag type naming where and how hot loops run.
///   requires: B is empty; B::name is a string naming it; backend_traits<B> is specialised with
///             a storage template vector<T> and a bool is_device.
///   ensures:  operations overloaded on B run on that backend; cpu_omp falls back to cpu_serial
///             overloads by derived-to-base conversion.
template <class B>
concept Backend = std::is_empty_v<B> && requires {
    { B::name } -> std::convertible_to<std::string_view>;
    typename storage_t<B, float>;
    { backend_traits<B>::is_device } -> std::convertible_to<bool>;
};

/// HostBackend: a backend whose memory the CPU can read directly (cpu_serial, cpu_omp).
template <class B>
concept HostBackend = Backend<B> && !backend_traits<B>::is_device;

/// DeviceBackend: a backend whose memory lives on an accelerator (cuda).
template <class B>
concept DeviceBackend = Backend<B> && backend_traits<B>::is_device;

static_assert(HostBackend<cpu_serial> && HostBackend<cpu_omp> && DeviceBackend<cuda>);

}  // namespace tessel
