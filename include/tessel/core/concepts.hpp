// tessel/core/concepts.hpp: the concepts of tessel's vocabulary types.
#pragma once
#include <concepts>

#include "tessel/core/tensor.hpp"

namespace tessel {

/// Tensor: an owning n-d array on a backend.
///   requires: T::value_type, T::backend_type (a Backend), shape() returning tessel::shape, data()
///             returning a pointer to numel() contiguous row-major elements in the backend's memory.
///   ensures:  data() stays valid until the tensor is resized, reassigned or destroyed.
template <class T>
concept Tensor = requires(const T& t) {
    typename T::value_type;
    typename T::backend_type;
    requires Backend<typename T::backend_type>;
    { t.shape() } -> std::convertible_to<shape>;
    { t.data() } -> std::same_as<const typename T::value_type*>;
    { t.numel() } -> std::convertible_to<index_t>;
};

/// TensorOf<T, V, B>: a Tensor of element type V on backend B.
template <class T, class V, class B>
concept TensorOf = Tensor<T> && std::same_as<typename T::value_type, V> && std::same_as<typename T::backend_type, B>;

static_assert(TensorOf<tensor<float, cpu_serial>, float, cpu_serial>);
static_assert(TensorOf<tensor<double, cpu_omp>, double, cpu_omp>);

}  // namespace tessel
