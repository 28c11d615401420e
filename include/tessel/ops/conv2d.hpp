// tessel/ops/conv2d.hpp: the tiled im2col + GEMM engine behind nn::conv2d and nn::conv_transpose2d.
//
// conv2d_engine<B, T> runs the three products of a convolution layer on one image at a time:
//   forward          y[Co, OH*OW]  = W[Co, K] col(x)            (K = Ci*k*k)
//   backward_data    dx            = col2im(W^T dy)
//   backward_weight  dW[Co, K]    += dy col(x)^T
// The column matrix of a whole 481x321 image with 100 channels and a 3x3 kernel is 556 MB, so the
// engine works on bands of output rows sized to keep the column buffer under a byte budget while
// each GEMM still has thousands of columns. A 1x1, stride-1, unpadded convolution skips im2col:
// the image itself is the column matrix. The buffer is allocated on first use at a size and
// reused afterwards. Details and measurements: docs/nn_conv.md.
#pragma once
#include <algorithm>
#include <cstddef>

#include "tessel/core/tensor.hpp"
#include "tessel/ops/gemm.hpp"
#include "tessel/ops/im2col.hpp"

namespace tessel::ops {

/// Default column-buffer budget of a convolution layer (per layer, bytes).
inline constexpr std::size_t default_conv_workspace_bytes = std::size_t(16) << 20;

template <Backend B, class T>
class conv2d_engine {
public:
    /// Sets the geometry (input side; g.finish() must have run) and the number of output
    /// channels, and sizes the column buffer: bands of rows such that col_rows x rows x OW
    /// elements fit in workspace_bytes (at least one row).
    void configure(const conv_geometry& g, index_t out_channels, std::size_t workspace_bytes) {
        m_g = g;
        m_out_channels = out_channels;
        if (g.is_pointwise()) {
            m_band = g.out_height;
            return;
        }
        const std::size_t row_bytes = static_cast<std::size_t>(g.col_rows() * g.out_width) * sizeof(T);
        m_band = std::clamp<index_t>(static_cast<index_t>(workspace_bytes / std::max<std::size_t>(row_bytes, 1)), 1,
                                     g.out_height);
        m_col.resize(shape{g.col_rows(), m_band * g.out_width});
    }
    [[nodiscard]] const conv_geometry& geometry() const noexcept { return m_g; }
    /// Output rows per band (the whole image for a pointwise convolution).
    [[nodiscard]] index_t band_rows() const noexcept { return m_band; }
    [[nodiscard]] std::size_t workspace_bytes() const noexcept { return static_cast<std::size_t>(m_col.numel()) * sizeof(T); }

    /// y = W col(x) + beta y for one image (x: Ci x H x W, y: Co x OH x OW, W: Co x K).
    void forward(const T* w, const T* x, T* y, T beta) {
        const index_t K = m_g.col_rows(), P = m_g.out_height * m_g.out_width;
        if (m_g.is_pointwise()) {
            gemm(B{}, gemm_args<T>{.m = m_out_channels, .n = P, .k = K, .a = w, .lda = K, .b = x, .ldb = P,
                                   .beta = beta, .c = y, .ldc = P});
            return;
        }
        for (index_t oh = 0; oh < m_g.out_height; oh += m_band) {
            const index_t oh_end = std::min(oh + m_band, m_g.out_height), n = (oh_end - oh) * m_g.out_width;
            im2col(B{}, m_g, x, oh, oh_end, m_col.data());
            gemm(B{}, gemm_args<T>{.m = m_out_channels, .n = n, .k = K, .a = w, .lda = K, .b = m_col.data(), .ldb = n,
                                   .beta = beta, .c = y + oh * m_g.out_width, .ldc = P});
        }
    }

    /// dW = dy col(x)^T + beta_w dW and, if dx is not null, dx = col2im(W^T dy), for one image.
    /// Both share one im2col per band.
    void backward(const T* w, const T* x, const T* dy, T* dw, T beta_w, T* dx) {
        const index_t K = m_g.col_rows(), P = m_g.out_height * m_g.out_width;
        if (m_g.is_pointwise()) {
            gemm(B{}, gemm_args<T>{.trans_b = op::trans, .m = m_out_channels, .n = K, .k = P, .a = dy, .lda = P,
                                   .b = x, .ldb = P, .beta = beta_w, .c = dw, .ldc = K});
            if (dx)
                gemm(B{}, gemm_args<T>{.trans_a = op::trans, .m = K, .n = P, .k = m_out_channels, .a = w, .lda = K,
                                       .b = dy, .ldb = P, .beta = T(0), .c = dx, .ldc = P});
            return;
        }
        if (dx) fill(dx, m_g.channels * m_g.height * m_g.width);
        for (index_t oh = 0; oh < m_g.out_height; oh += m_band) {
            const index_t oh_end = std::min(oh + m_band, m_g.out_height), n = (oh_end - oh) * m_g.out_width;
            const T* dy_band = dy + oh * m_g.out_width;
            im2col(B{}, m_g, x, oh, oh_end, m_col.data());
            gemm(B{}, gemm_args<T>{.trans_b = op::trans, .m = m_out_channels, .n = K, .k = n, .a = dy_band, .lda = P,
                                   .b = m_col.data(), .ldb = n, .beta = beta_w, .c = dw, .ldc = K});
            beta_w = T(1);
            if (dx) {
                // The column buffer is free again: reuse it for W^T dy.
                gemm(B{}, gemm_args<T>{.trans_a = op::trans, .m = K, .n = n, .k = m_out_channels, .a = w, .lda = K,
                                       .b = dy_band, .ldb = P, .beta = T(0), .c = m_col.data(), .ldc = n});
                col2im(B{}, m_g, m_col.data(), oh, oh_end, dx);
            }
        }
    }

    /// dx = col2im(W^T dy) + beta dx for one image (the data gradient alone; conv_transpose2d's
    /// forward pass).
    void backward_data(const T* w, const T* dy, T* dx, T beta) {
        const index_t K = m_g.col_rows(), P = m_g.out_height * m_g.out_width;
        if (m_g.is_pointwise()) {
            gemm(B{}, gemm_args<T>{.trans_a = op::trans, .m = K, .n = P, .k = m_out_channels, .a = w, .lda = K,
                                   .b = dy, .ldb = P, .beta = beta, .c = dx, .ldc = P});
            return;
        }
        if (beta == T(0)) fill(dx, m_g.channels * m_g.height * m_g.width);
        for (index_t oh = 0; oh < m_g.out_height; oh += m_band) {
            const index_t oh_end = std::min(oh + m_band, m_g.out_height), n = (oh_end - oh) * m_g.out_width;
            gemm(B{}, gemm_args<T>{.trans_a = op::trans, .m = K, .n = n, .k = m_out_channels, .a = w, .lda = K,
                                   .b = dy + oh * m_g.out_width, .ldb = P, .beta = T(0), .c = m_col.data(), .ldc = n});
            col2im(B{}, m_g, m_col.data(), oh, oh_end, dx);
        }
    }

    /// dW[Co, K] = a col(x)^T + beta dW for any a of shape Co x (OH*OW). conv_transpose2d's
    /// weight gradient is this product with a = its input and x = its output gradient.
    void weight_product(const T* a, const T* x, T* dw, T beta) {
        backward(nullptr, x, a, dw, beta, nullptr);
    }

private:
    struct zero_fn {
        T* p;
        TESSEL_HD void operator()(index_t i) const { p[i] = T(0); }
    };
    static void fill(T* p, index_t n) { parallel_for(B{}, n, zero_fn{p}); }

    conv_geometry m_g{};
    index_t m_out_channels = 0;
    index_t m_band = 1;
    tensor<T, B> m_col;
};

}  // namespace tessel::ops
