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
#include <type_traits>

#include "tessel/core/tensor.hpp"
#include "tessel/ops/gemm.hpp"
#include "tessel/ops/im2col.hpp"

namespace tessel::ops {

/// Default column-buffer budget of a convolution layer, per thread (bytes). Small bands keep the
/// column block of a GEMM in L2 (measured fastest here: docs/nn_conv.md).
inline constexpr std::size_t default_conv_workspace_bytes = std::size_t(4) << 20;

template <Backend B, class T>
class conv2d_engine {
#if defined(_OPENMP)
    /// On cpu_omp, whole bands are distributed over the threads (each runs im2col and a serial
    /// GEMM on its own column buffer) rather than parallelising inside every band: one parallel
    /// region per image instead of two per band, and dynamic scheduling, so a thread slowed down
    /// by another process on its core simply takes fewer bands.
    static constexpr bool band_parallel = std::is_same_v<B, cpu_omp>;
#else
    static constexpr bool band_parallel = false;
#endif

public:
    /// Sets the geometry (input side; g.finish() must have run) and the number of output
    /// channels, and sizes the column buffers: bands of rows such that col_rows x rows x OW
    /// elements fit in workspace_bytes (at least one row), one buffer per band-parallel thread.
    /// A pointwise convolution has no column buffer; its GEMMs are cut into blocks of
    /// pointwise_block pixels, which cpu_omp hands out to its threads like bands (the blocking
    /// itself neither helps nor hurts the serial speed: docs/nn_conv.md).
    /// With external_workspace, the engine allocates no column buffer: the caller lends one of
    /// workspace_numel() elements through use_workspace() before each call (layers that run one
    /// after another can then share a single buffer, nn::context's workspace).
    void configure(const conv_geometry& g, index_t out_channels, std::size_t workspace_bytes,
                   bool external_workspace = false) {
        m_g = g;
        m_out_channels = out_channels;
        const index_t P = g.out_height * g.out_width;
        if (g.is_pointwise()) {
            m_band = g.out_height;
            m_items = (P + pointwise_block - 1) / pointwise_block;
            m_slice = 0;
        } else {
            const std::size_t row_bytes = static_cast<std::size_t>(g.col_rows() * g.out_width) * sizeof(T);
            m_band = std::clamp<index_t>(static_cast<index_t>(workspace_bytes / std::max<std::size_t>(row_bytes, 1)),
                                         1, g.out_height);
            m_items = (g.out_height + m_band - 1) / m_band;
            m_slice = g.col_rows() * m_band * g.out_width;
        }
        m_threads = band_parallel && m_items > 1 ? std::max(1, num_threads(B{})) : 1;
        m_col.resize(shape{external_workspace ? 0 : m_threads * m_slice});
        m_ext = nullptr;
        m_groups = m_threads > 1 ? std::min<index_t>(m_items, max_band_groups) : 1;
        m_dw_part.resize(shape{m_threads > 1 ? m_groups * m_out_channels * g.col_rows() : 0});
    }
    [[nodiscard]] const conv_geometry& geometry() const noexcept { return m_g; }
    /// Output rows per band (the whole image for a pointwise convolution).
    [[nodiscard]] index_t band_rows() const noexcept { return m_band; }
    /// Work items per image: bands of rows, or pixel blocks of a pointwise convolution.
    [[nodiscard]] index_t bands() const noexcept { return m_items; }
    /// Column-buffer elements the engine needs (all threads).
    [[nodiscard]] index_t workspace_numel() const noexcept { return m_threads * m_slice; }
    /// The column buffer for the next calls (external_workspace mode), >= workspace_numel().
    void use_workspace(T* col) noexcept { m_ext = col; }
    [[nodiscard]] std::size_t workspace_bytes() const noexcept {
        return static_cast<std::size_t>(m_col.numel() + m_dw_part.numel()) * sizeof(T);
    }

    /// y = W col(x) + beta y for one image (x: Ci x H x W, y: Co x OH x OW, W: Co x K).
    void forward(const T* w, const T* x, T* y, T beta) {
#if defined(_OPENMP)
        if (band_parallel && m_threads > 1) {
            const index_t nb = m_items;
#  pragma omp parallel num_threads(m_threads)
            {
                T* col = col_base() + omp_get_thread_num() * m_slice;
#  pragma omp for schedule(dynamic, 1)
                for (index_t b = 0; b < nb; ++b) item_forward(cpu_serial{}, w, x, y, beta, b, col);
            }
            return;
        }
#endif
        for (index_t b = 0; b < m_items; ++b) item_forward(B{}, w, x, y, beta, b, col_base());
    }

    /// dW = dy col(x)^T + beta_w dW and, if dx is not null, dx = col2im(W^T dy) (+ dx when
    /// accumulate_dx: a block summing several branches' input gradients then needs no temporary),
    /// for one image. Both share one im2col per band.
    void backward(const T* w, const T* x, const T* dy, T* dw, T beta_w, T* dx, bool accumulate_dx = false) {
        const index_t K = m_g.col_rows();
        const bool pointwise = m_g.is_pointwise();
        if (dx && !pointwise && !accumulate_dx) fill(dx, m_g.channels * m_g.height * m_g.width);
        const T beta_x = accumulate_dx ? T(1) : T(0);
#if defined(_OPENMP)
        // Bands b and b + 2 write disjoint input rows when (rows + 1) * stride >= kernel extent, so
        // col2im can run on all even bands, then all odd bands, without two threads sharing a row.
        // Pointwise blocks never overlap.
        const index_t span = m_g.dilation * (m_g.kernel - 1) + 1;
        const bool phased = dx && !pointwise;
        if (band_parallel && m_threads > 1 && (!phased || (m_band + 1) * m_g.stride >= span)) {
            // The bands are cut into m_groups groups fixed by the geometry, each summing its
            // bands' weight gradients in band order into its own partial; groups go to threads
            // dynamically (a shared core then costs less) and the partials are added in group
            // order, so dW depends neither on the thread count (above 1) nor on which thread
            // ran which band.
            const index_t nb = m_items, CoK = m_out_channels * K, G = m_groups;
            T* parts = m_dw_part.data();
            fill(parts, G * CoK);
#  pragma omp parallel num_threads(m_threads)
            {
                T* col = col_base() + omp_get_thread_num() * m_slice;
                for (int phase = 0; phase < (phased ? 2 : 1); ++phase) {
                    const index_t count = phased ? (nb - phase + 1) / 2 : nb;
#  pragma omp for schedule(dynamic, 1)
                    for (index_t grp = 0; grp < G; ++grp)
                        for (index_t i = grp * count / G; i < (grp + 1) * count / G; ++i) {
                            const index_t b = phased ? 2 * i + phase : i;
                            item_backward(cpu_serial{}, w, x, dy, parts + grp * CoK, T(1), dx, beta_x, b, col);
                        }
                }
            }
            parallel_for(B{}, CoK, sum_parts_fn{parts, dw, CoK, G, beta_w});
            return;
        }
#endif
        for (index_t b = 0; b < m_items; ++b) {
            item_backward(B{}, w, x, dy, dw, beta_w, dx, beta_x, b, col_base());
            beta_w = T(1);
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
                                   .b = dy + oh * m_g.out_width, .ldb = P, .beta = T(0), .c = col_base(), .ldc = n});
            col2im(B{}, m_g, col_base(), oh, oh_end, dx);
        }
    }

    /// dW[Co, K] = a col(x)^T + beta dW for any a of shape Co x (OH*OW). conv_transpose2d's
    /// weight gradient is this product with a = its input and x = its output gradient.
    void weight_product(const T* a, const T* x, T* dw, T beta) { backward(nullptr, x, a, dw, beta, nullptr); }

private:
    /// Work item b of y = W col(x) + beta y (band b of output rows, or pixel block b of a
    /// pointwise convolution), run on backend E with column buffer col.
    template <class E>
    void item_forward(E e, const T* w, const T* x, T* y, T beta, index_t b, T* col) const {
        const index_t K = m_g.col_rows(), P = m_g.out_height * m_g.out_width;
        if (m_g.is_pointwise()) {
            const index_t p0 = b * pointwise_block, n = std::min(pointwise_block, P - p0);
            gemm(e, gemm_args<T>{.m = m_out_channels, .n = n, .k = K, .a = w, .lda = K, .b = x + p0, .ldb = P,
                                 .beta = beta, .c = y + p0, .ldc = P});
            return;
        }
        const index_t oh = b * m_band, oh_end = std::min(oh + m_band, m_g.out_height), n = (oh_end - oh) * m_g.out_width;
        im2col(e, m_g, x, oh, oh_end, col);
        gemm(e, gemm_args<T>{.m = m_out_channels, .n = n, .k = K, .a = w, .lda = K, .b = col, .ldb = n, .beta = beta,
                             .c = y + oh * m_g.out_width, .ldc = P});
    }
    /// Work item b of the backward pass: dw = dy_b col_b^T + beta_w dw; dx += col2im(W^T dy_b)
    /// (pointwise: dx = W^T dy_b + beta_x dx).
    template <class E>
    void item_backward(E e, const T* w, const T* x, const T* dy, T* dw, T beta_w, T* dx, T beta_x, index_t b,
                       T* col) const {
        const index_t K = m_g.col_rows(), P = m_g.out_height * m_g.out_width;
        if (m_g.is_pointwise()) {
            const index_t p0 = b * pointwise_block, n = std::min(pointwise_block, P - p0);
            gemm(e, gemm_args<T>{.trans_b = op::trans, .m = m_out_channels, .n = K, .k = n, .a = dy + p0, .lda = P,
                                 .b = x + p0, .ldb = P, .beta = beta_w, .c = dw, .ldc = K});
            if (dx)
                gemm(e, gemm_args<T>{.trans_a = op::trans, .m = K, .n = n, .k = m_out_channels, .a = w, .lda = K,
                                     .b = dy + p0, .ldb = P, .beta = beta_x, .c = dx + p0, .ldc = P});
            return;
        }
        const index_t oh = b * m_band, oh_end = std::min(oh + m_band, m_g.out_height), n = (oh_end - oh) * m_g.out_width;
        const T* dy_band = dy + oh * m_g.out_width;
        im2col(e, m_g, x, oh, oh_end, col);
        gemm(e, gemm_args<T>{.trans_b = op::trans, .m = m_out_channels, .n = K, .k = n, .a = dy_band, .lda = P,
                             .b = col, .ldb = n, .beta = beta_w, .c = dw, .ldc = K});
        if (dx) {
            // The column buffer is free again: reuse it for W^T dy.
            gemm(e, gemm_args<T>{.trans_a = op::trans, .m = K, .n = n, .k = m_out_channels, .a = w, .lda = K,
                                 .b = dy_band, .ldb = P, .beta = T(0), .c = col, .ldc = n});
            col2im(e, m_g, col, oh, oh_end, dx);
        }
    }

    struct zero_fn {
        T* p;
        TESSEL_HD void operator()(index_t i) const { p[i] = T(0); }
    };
    struct sum_parts_fn {  // dw = beta dw + sum over band groups of their partial dW, in group order
        const T* parts;
        T* dw;
        index_t size;
        index_t groups;
        T beta;
        TESSEL_HD void operator()(index_t i) const {
            T s = beta == T(0) ? T(0) : beta * dw[i];
            for (index_t g = 0; g < groups; ++g) s += parts[g * size + i];
            dw[i] = s;
        }
    };
    static void fill(T* p, index_t n) { parallel_for(B{}, n, zero_fn{p}); }

    static constexpr index_t pointwise_block = 4096;

    conv_geometry m_g{};
    index_t m_out_channels = 0;
    index_t m_items = 0;
    index_t m_band = 1;
    index_t m_slice = 0;
    int m_threads = 1;
    T* col_base() noexcept { return m_ext != nullptr ? m_ext : m_col.data(); }

    tensor<T, B> m_col, m_dw_part;
    index_t m_groups = 1;  // band groups of the parallel weight gradient
    /// At most this many partial weight gradients (memory: groups x Co x K).
    static constexpr index_t max_band_groups = 8;
    T* m_ext = nullptr;
};

}  // namespace tessel::ops
