// tessel/interop/eigen.hpp: zero-copy views and copies between tessel tensors and Eigen matrices.
//
// Opt-in (link tessel::eigen): the only header besides ops/gemm.hpp where Eigen types appear.
// as_eigen(t) maps a rank-2 host tensor as a row-major Eigen::Map without copying; to_tensor(m)
// copies any Eigen matrix expression into a rank-2 tensor. Higher-rank tensors map after a
// reshape to two dimensions.
#pragma once
#include <Eigen/Core>

#include "tessel/core/tensor.hpp"

namespace tessel::interop {

template <class T>
using eigen_row_matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A row-major Eigen view of a rank-2 host tensor; valid while the tensor's storage is.
template <class T, HostBackend B>
Eigen::Map<eigen_row_matrix<T>> as_eigen(tensor<T, B>& t) {
    expects(t.rank() == 2, "tessel::interop::as_eigen", "needs a rank-2 tensor, got shape ", t.shape().str());
    return {t.data(), t.dim(0), t.dim(1)};
}
template <class T, HostBackend B>
Eigen::Map<const eigen_row_matrix<T>> as_eigen(const tensor<T, B>& t) {
    expects(t.rank() == 2, "tessel::interop::as_eigen", "needs a rank-2 tensor, got shape ", t.shape().str());
    return {t.data(), t.dim(0), t.dim(1)};
}

/// Copies an Eigen matrix (any storage order) into a rank-2 row-major tensor.
template <HostBackend B = cpu_serial, class Derived>
tensor<typename Derived::Scalar, B> to_tensor(const Eigen::MatrixBase<Derived>& m) {
    using T = typename Derived::Scalar;
    tensor<T, B> t(shape{static_cast<index_t>(m.rows()), static_cast<index_t>(m.cols())});
    Eigen::Map<eigen_row_matrix<T>>(t.data(), m.rows(), m.cols()) = m;
    return t;
}

}  // namespace tessel::interop
