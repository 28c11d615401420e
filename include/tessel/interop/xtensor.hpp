// tessel/interop/xtensor.hpp: copies between tessel tensors and xtensor arrays, and zero-copy
// adaptors over tessel storage.
//
// Opt-in (link tessel::xtensor). Works with Debian's xtensor 0.24 (flat header layout,
// <xtensor/xarray.hpp>) and with xtensor >= 0.26 (<xtensor/containers/xarray.hpp>).
#pragma once
#if __has_include(<xtensor/containers/xarray.hpp>)
#  include <xtensor/containers/xadapt.hpp>
#  include <xtensor/containers/xarray.hpp>
#else
#  include <xtensor/xadapt.hpp>
#  include <xtensor/xarray.hpp>
#endif
#include <vector>

#include "tessel/core/tensor.hpp"

namespace tessel::interop {

/// A copy of a host tensor as an xt::xarray with the same shape (row-major).
template <class T, HostBackend B>
xt::xarray<T> to_xarray(const tensor<T, B>& t) {
    std::vector<std::size_t> dims;
    for (int i = 0; i < t.rank(); ++i) dims.push_back(static_cast<std::size_t>(t.dim(i)));
    xt::xarray<T> out = xt::xarray<T>::from_shape(dims);
    std::copy(t.data(), t.data() + t.numel(), out.data());
    return out;
}

/// A copy of any xtensor expression as a tessel tensor (row-major, at most 6 dimensions).
template <HostBackend B = cpu_serial, class E>
auto from_xtensor(const xt::xexpression<E>& expr) {
    using T = typename E::value_type;
    const xt::xarray<T, xt::layout_type::row_major> a = expr.derived_cast();
    expects(a.dimension() <= static_cast<std::size_t>(max_rank), "tessel::interop::from_xtensor",
            "rank ", a.dimension(), " exceeds tessel's maximum of ", max_rank);
    shape s;
    for (std::size_t i = 0; i < a.dimension(); ++i) s.dims[s.rank++] = static_cast<index_t>(a.shape()[i]);
    tensor<T, B> t(s);
    std::copy(a.data(), a.data() + a.size(), t.data());
    return t;
}

/// A non-owning xtensor view over a host tensor's storage (writes go to the tensor).
template <class T, HostBackend B>
auto adapt(tensor<T, B>& t) {
    std::vector<std::size_t> dims;
    for (int i = 0; i < t.rank(); ++i) dims.push_back(static_cast<std::size_t>(t.dim(i)));
    return xt::adapt(t.data(), static_cast<std::size_t>(t.numel()), xt::no_ownership(), dims);
}

}  // namespace tessel::interop
