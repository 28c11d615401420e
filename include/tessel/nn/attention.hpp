// tessel/nn/attention.hpp: multi-head self-attention of a vision transformer (timm/DINO's
// Attention), for inference.
//
// For tokens x [T, D] and h heads of width d = D / h:
//   qkv = x W_qkv^T + b_qkv  [T, 3D], laid out [q | k | v], head i at columns i*d .. i*d + d - 1;
//   o_i = softmax(q_i k_i^T * scale) v_i  (scale = d^-1/2), heads concatenated: channel = i*d + j;
//   y = o W_proj^T + b_proj.
// Every product is an ops::gemm on strided views of the qkv buffer (no per-head copies). The
// score matrix is formed for a band of query rows at a time, so memory is
// O(T * D + rows * T) rather than O(h * T^2): at 3,026 tokens (a 224 x 224 image at stride 4) and
// the default 512-row band the scores take 6 MB.
#pragma once
#include <algorithm>
#include <cmath>

#include "tessel/backend/parallel.hpp"
#include "tessel/core/tensor.hpp"
#include "tessel/ops/gemm.hpp"

namespace tessel::nn {

namespace detail {
template <class T>
struct add_row_bias_fn {  // y[r, :] += b
    T* y;
    const T* b;
    index_t cols;
    TESSEL_HD void operator()(index_t i) const { y[i] += b[i % cols]; }
};
template <class T>
struct row_softmax_fn {  // in place over rows of length n, max subtracted first
    T* s;
    index_t n;
    TESSEL_HD void operator()(index_t r) const {
        T* row = s + r * n;
        T m = row[0];
        for (index_t j = 1; j < n; ++j) m = row[j] > m ? row[j] : m;
        T sum = T(0);
        for (index_t j = 0; j < n; ++j) {
            row[j] = std::exp(row[j] - m);
            sum += row[j];
        }
        const T inv = T(1) / sum;
        for (index_t j = 0; j < n; ++j) row[j] *= inv;
    }
};
}  // namespace detail

/// y = x W^T + b for x [R, I], W [O, I], b [O] (or empty); y is resized to [R, O]. The weights
/// may live on another backend of the same memory space.
template <class T, Backend B, Backend BW>
    requires(HostBackend<B> == HostBackend<BW>)
void linear_forward(const tensor<T, B>& x, const tensor<T, BW>& w, const tensor<T, BW>& b, tensor<T, B>& y) {
    constexpr auto where = "tessel::nn::linear_forward";
    expects(x.rank() == 2 && w.rank() == 2 && x.dim(1) == w.dim(1), where, "input ", x.shape().str(),
            " does not match weight ", w.shape().str());
    expects(b.empty() || (b.rank() == 1 && b.dim(0) == w.dim(0)), where, "bias ", b.shape().str(), " for weight ",
            w.shape().str());
    const index_t R = x.dim(0), I = x.dim(1), O = w.dim(0);
    y.resize(shape{R, O});
    ops::gemm(B{}, ops::gemm_args<T>{.trans_b = ops::op::trans, .m = R, .n = O, .k = I, .a = x.data(), .lda = I,
                                     .b = w.data(), .ldb = I, .c = y.data(), .ldc = O});
    if (!b.empty()) parallel_for(B{}, R * O, detail::add_row_bias_fn<T>{y.data(), b.data(), O});
}

/// The weights of one attention layer.
template <class T = float, Backend B = cpu_serial>
struct attention_weights {
    tensor<T, B> qkv_weight, qkv_bias;    ///< [3D, D], [3D]
    tensor<T, B> proj_weight, proj_bias;  ///< [D, D], [D]
    index_t heads = 1;
};

/// Multi-head self-attention for inference, with reusable workspaces.
template <class T = float, Backend B = cpu_serial>
class multi_head_attention {
public:
    /// Query rows per score band (memory vs. GEMM efficiency).
    index_t band_rows = 512;

    /// y = Attn(x) for x [T, D].
    template <Backend BW>
        requires(HostBackend<B> == HostBackend<BW>)
    void forward(const attention_weights<T, BW>& w, const tensor<T, B>& x, tensor<T, B>& y) {
        constexpr auto where = "tessel::nn::multi_head_attention";
        expects(x.rank() == 2 && x.numel() > 0, where, "expects non-empty tokens [T, D], got ", x.shape().str());
        const index_t Tn = x.dim(0), D = x.dim(1), H = w.heads;
        expects(H >= 1 && D % H == 0, where, "width ", D, " is not divisible by ", H, " heads");
        expects(w.qkv_weight.shape() == shape{3 * D, D} && w.proj_weight.shape() == shape{D, D}, where,
                "qkv weight ", w.qkv_weight.shape().str(), " / proj weight ", w.proj_weight.shape().str(),
                " do not fit width ", D);
        expects(band_rows >= 1, where, "band_rows must be >= 1, got ", band_rows);
        const index_t d = D / H;
        const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(d)));
        linear_forward(x, w.qkv_weight, w.qkv_bias, m_qkv);
        m_out.resize(shape{Tn, D});
        const index_t rows = std::min(band_rows, Tn);
        m_scores.resize(shape{rows * Tn});
        const T* qkv = m_qkv.data();
        for (index_t h = 0; h < H; ++h)
            for (index_t r0 = 0; r0 < Tn; r0 += rows) {
                const index_t nr = std::min(rows, Tn - r0);
                // scores[nr, T] = scale * q[r0.., h] k[:, h]^T
                ops::gemm(B{}, ops::gemm_args<T>{.trans_b = ops::op::trans, .m = nr, .n = Tn, .k = d, .alpha = scale,
                                                 .a = qkv + r0 * 3 * D + h * d, .lda = 3 * D,
                                                 .b = qkv + D + h * d, .ldb = 3 * D, .c = m_scores.data(), .ldc = Tn});
                parallel_for(B{}, nr, detail::row_softmax_fn<T>{m_scores.data(), Tn});
                // out[r0.., h] = scores v[:, h]
                ops::gemm(B{}, ops::gemm_args<T>{.m = nr, .n = d, .k = Tn, .a = m_scores.data(), .lda = Tn,
                                                 .b = qkv + 2 * D + h * d, .ldb = 3 * D,
                                                 .c = m_out.data() + r0 * D + h * d, .ldc = D});
            }
        linear_forward(m_out, w.proj_weight, w.proj_bias, y);
    }

    /// The [q | k | v] projection of the last forward (or of qkv_only), [T, 3D].
    [[nodiscard]] const tensor<T, B>& last_qkv() const noexcept { return m_qkv; }
    /// Only the qkv projection (the feature extractor's last block needs just the keys).
    template <Backend BW>
    const tensor<T, B>& qkv_only(const attention_weights<T, BW>& w, const tensor<T, B>& x) {
        linear_forward(x, w.qkv_weight, w.qkv_bias, m_qkv);
        return m_qkv;
    }

private:
    tensor<T, B> m_qkv, m_out, m_scores;
};

}  // namespace tessel::nn
