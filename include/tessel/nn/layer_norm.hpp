// tessel/nn/layer_norm.hpp: layer normalisation over the last axis (torch.nn.LayerNorm), for
// token matrices of vision transformers.
//
// For x of shape [..., D]: y = (x - mean) / sqrt(var + eps) * gamma + beta per row, with the
// biased variance, as PyTorch computes it. DINO's ViTs use eps = 1e-6 (METHODS.md §6.2), PyTorch's
// default is 1e-5. Inference only: the ViT feature extractor runs with fixed pretrained weights.
// Row statistics are accumulated in double, so a 384-wide row loses nothing to cancellation.
#pragma once
#include <cmath>

#include "tessel/backend/parallel.hpp"
#include "tessel/core/tensor.hpp"

namespace tessel::nn {

namespace detail {
template <class T>
struct layer_norm_rows_fn {
    const T* x;
    const T* gamma;
    const T* beta;
    T* y;
    index_t D;
    double eps;
    TESSEL_HD void operator()(index_t r) const {
        const T* xr = x + r * D;
        T* yr = y + r * D;
        double s = 0;
        for (index_t j = 0; j < D; ++j) s += static_cast<double>(xr[j]);
        const double mean = s / static_cast<double>(D);
        double ss = 0;
        for (index_t j = 0; j < D; ++j) {
            const double d = static_cast<double>(xr[j]) - mean;
            ss += d * d;
        }
        const double inv = 1.0 / std::sqrt(ss / static_cast<double>(D) + eps);
        for (index_t j = 0; j < D; ++j)
            yr[j] = static_cast<T>((static_cast<double>(xr[j]) - mean) * inv) * gamma[j] + beta[j];
    }
};
}  // namespace detail

/// y = LayerNorm(x) over the last axis with affine gamma, beta (each [D]); y is resized to x.
/// The parameters may live on another backend of the same memory space (host weights shared by a
/// cpu_serial and a cpu_omp model).
template <class T, Backend B, Backend BW>
    requires(HostBackend<B> == HostBackend<BW>)
void layer_norm(const tensor<T, B>& x, const tensor<T, BW>& gamma, const tensor<T, BW>& beta, double eps,
                tensor<T, B>& y) {
    constexpr auto where = "tessel::nn::layer_norm";
    expects(x.rank() >= 1 && x.numel() > 0, where, "empty input of shape ", x.shape().str());
    const index_t D = x.dim(x.rank() - 1);
    expects(gamma.rank() == 1 && gamma.dim(0) == D && beta.shape() == gamma.shape(), where, "gamma ",
            gamma.shape().str(), " and beta ", beta.shape().str(), " must both be [", D, "] for input ",
            x.shape().str());
    expects(eps > 0 && std::isfinite(eps), where, "eps must be positive and finite, got ", eps);
    y.resize(x.shape());
    parallel_for(B{}, x.numel() / D, detail::layer_norm_rows_fn<T>{x.data(), gamma.data(), beta.data(), y.data(), D, eps});
}

/// LayerNorm with its own parameters, for inference.
template <class T = float, Backend B = cpu_serial>
struct layer_norm_inference {
    tensor<T, B> gamma, beta;
    double eps = 1e-6;
    void forward(const tensor<T, B>& x, tensor<T, B>& y) const { layer_norm(x, gamma, beta, eps, y); }
};

}  // namespace tessel::nn
