// tessel/methods/grapl_cnn.hpp: GraPL's patch network (METHODS.md 5.3) in a batched form for
// training on hundreds of 16 x 16 patches at once, and its dense (stride-1) form for prediction.
//
// The layers are those of methods::grapl_network (nn blocks): input dropout, conv3x3 -> BN ->
// tanh -> dropout (twice, no padding), and a (p-4) x (p-4) head conv. The nn blocks run a conv as
// one im2col + GEMM per image, which for 512 tiny patches per step costs thousands of small GEMMs
// and parallel regions; here activations are kept channel-major over the whole batch
// ([C][N * H * W]), so each conv is one GEMM over all patches and batch norm is a per-row
// reduction. The dense form is the same code on one S x S "patch" (N = 1), with the head conv cut
// into bands of output rows to bound the column buffer. Host backends only (cpu_serial, cpu_omp).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "tessel/core/random.hpp"
#include "tessel/core/tensor.hpp"
#include "tessel/nn/context.hpp"
#include "tessel/ops/gemm.hpp"
#include "tessel/optim/adam.hpp"

namespace tessel::methods {

namespace grapl_detail {

/// Column buffer rows (c, dy, dx) x columns (n, y, x) of a valid k x k conv over [C][N][H][W],
/// for output rows y0 .. y0 + rows - 1.
struct im2col_fn {
    const float* in;
    float* col;
    index_t N, H, W, k, y0, rows, Wo;
    TESSEL_HD void operator()(index_t job) const {  // job = (c * k * k + dy * k + dx) * N + n
        const index_t n = job % N, r = job / N, dx = r % k, dy = (r / k) % k, c = r / (k * k);
        const float* src = in + ((c * N + n) * H + y0 + dy) * W + dx;
        float* dst = col + r * (N * rows * Wo) + n * rows * Wo;
        for (index_t y = 0; y < rows; ++y)
            for (index_t x = 0; x < Wo; ++x) dst[y * Wo + x] = src[y * W + x];
    }
};

/// Adds a column buffer's gradient back into d[C][N][H][W] (full output, y0 = 0); one job per
/// (c, n) plane so no two jobs write the same value.
struct col2im_fn {
    const float* col;
    float* out;
    index_t N, H, W, k, Ho, Wo;
    TESSEL_HD void operator()(index_t job) const {  // job = c * N + n
        const index_t c = job / N, n = job % N;
        float* dst = out + (c * N + n) * H * W;
        for (index_t i = 0; i < H * W; ++i) dst[i] = 0;
        for (index_t dy = 0; dy < k; ++dy)
            for (index_t dx = 0; dx < k; ++dx) {
                const float* src = col + ((c * k + dy) * k + dx) * (N * Ho * Wo) + n * Ho * Wo;
                for (index_t y = 0; y < Ho; ++y)
                    for (index_t x = 0; x < Wo; ++x) dst[(y + dy) * W + x + dx] += src[y * Wo + x];
            }
    }
};

/// Counter-based dropout decision: a splitmix64 hash of (stream, index), so masks are drawn in
/// parallel and still fixed by the seed.
TESSEL_HD inline bool keep(std::uint64_t stream, index_t i, double p) {
    std::uint64_t z = stream + 0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(i + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53 >= p;
}

/// [N][C][P] patches -> [C][N][P], times the input dropout mask.
struct input_fn {
    const float* x;
    float* out;
    index_t N, C, P;
    std::uint64_t stream;
    double p;
    float scale;
    bool train;
    TESSEL_HD void operator()(index_t i) const {  // i over the output layout
        const index_t q = i % P, n = (i / P) % N, c = i / (P * N);
        const float v = x[(n * C + c) * P + q];
        out[i] = train ? (keep(stream, i, p) ? v * scale : 0.0f) : v;
    }
};

/// One channel row: batch norm (batch or running statistics) -> tanh -> dropout, in place.
struct bn_tanh_fn {
    float* y;          // [C][M] conv output in, activation out
    float* xhat;       // normalised values (train)
    float* h;          // tanh output before dropout (train)
    std::uint8_t* mask;
    float* mean_out;
    float* invstd_out;
    const float* gamma;
    const float* beta;
    float* run_mean;
    float* run_var;
    index_t M;
    double eps, momentum, p;
    std::uint64_t stream;
    bool train;
    TESSEL_HD void operator()(index_t c) const {
        float* row = y + c * M;
        double mean, var;
        if (train) {
            double s = 0, s2 = 0;
            for (index_t i = 0; i < M; ++i) s += row[i];
            mean = s / static_cast<double>(M);
            for (index_t i = 0; i < M; ++i) s2 += (row[i] - mean) * (row[i] - mean);
            var = s2 / static_cast<double>(M);
            run_mean[c] = static_cast<float>((1 - momentum) * run_mean[c] + momentum * mean);
            const double unbiased = M > 1 ? s2 / static_cast<double>(M - 1) : var;
            run_var[c] = static_cast<float>((1 - momentum) * run_var[c] + momentum * unbiased);
        } else {
            mean = run_mean[c];
            var = run_var[c];
        }
        const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
        mean_out[c] = static_cast<float>(mean);
        invstd_out[c] = inv;
        const float g = gamma[c], b = beta[c], m = static_cast<float>(mean);
        const float scale = static_cast<float>(1.0 / (1.0 - p));
        for (index_t i = 0; i < M; ++i) {
            const float xh = (row[i] - m) * inv;
            if (train) xhat[c * M + i] = xh;
            row[i] = g * xh + b;
        }
        // Eigen's vectorised rational tanh: the scalar libm call was a fifth of a training step.
        Eigen::Map<Eigen::ArrayXf> r(row, M);
        r = r.tanh();
        if (train)
            for (index_t i = 0; i < M; ++i) {
                const float t = row[i];
                h[c * M + i] = t;
                const bool k = keep(stream, c * M + i, p);
                mask[c * M + i] = k ? 1 : 0;
                row[i] = k ? t * scale : 0.0f;
            }
    }
};

/// Backward of bn_tanh_fn for one channel row: d (activation) -> d (conv output); writes dgamma, dbeta.
struct bn_tanh_back_fn {
    float* d;  // [C][M] in: d activation, out: d conv output
    const float* xhat;
    const float* h;
    const std::uint8_t* mask;
    const float* invstd;
    const float* gamma;
    float* dgamma;
    float* dbeta;
    index_t M;
    double p;
    TESSEL_HD void operator()(index_t c) const {
        float* row = d + c * M;
        const float scale = static_cast<float>(1.0 / (1.0 - p));
        double sg = 0, sgx = 0;
        for (index_t i = 0; i < M; ++i) {
            const index_t j = c * M + i;
            const float t = h[j];
            const float dz = mask[j] ? row[i] * scale * (1.0f - t * t) : 0.0f;  // d (gamma xhat + beta)
            row[i] = dz;
            sg += dz;
            sgx += static_cast<double>(dz) * xhat[j];
        }
        dgamma[c] = static_cast<float>(sgx);
        dbeta[c] = static_cast<float>(sg);
        const double k = gamma[c] * invstd[c], mg = sg / static_cast<double>(M), mgx = sgx / static_cast<double>(M);
        for (index_t i = 0; i < M; ++i) {
            const index_t j = c * M + i;
            row[i] = static_cast<float>(k * (row[i] - mg - xhat[j] * mgx));
        }
    }
};

struct add_bias_fn {
    float* y;
    const float* b;
    index_t M;
    TESSEL_HD void operator()(index_t c) const {
        for (index_t i = 0; i < M; ++i) y[c * M + i] += b[c];
    }
};

struct row_sum_fn {
    const float* d;
    float* out;
    index_t M;
    TESSEL_HD void operator()(index_t c) const {
        double s = 0;
        for (index_t i = 0; i < M; ++i) s += d[c * M + i];
        out[c] = static_cast<float>(s);
    }
};

}  // namespace grapl_detail

/// The batched GraPL network. Parameters follow PyTorch's default initialisation (METHODS.md 1.2)
/// drawn from `init` in layer order: conv1 weight, bias, conv2 weight, bias, head weight, bias.
template <Backend B>
class grapl_patch_cnn {
    static_assert(HostBackend<B>, "tessel::methods::grapl_patch_cnn runs on host backends");

public:
    struct config {
        index_t patch = 16, classes = 17, filters = 32, bottleneck = 8;
        double dropout = 0.2, input_dropout = 60.0 / 256.0;
        double bn_eps = 1e-5, bn_momentum = 0.1;
    };

    grapl_patch_cnn(const config& cfg, rng& init) : m_cfg(cfg) {
        const index_t F = cfg.filters, Bt = cfg.bottleneck, K = cfg.classes, hk = cfg.patch - 4;
        make(m_w1, m_dw1, shape{F, 27}, 27, init);
        make(m_b1, m_db1, shape{F}, 27, init);
        make(m_w2, m_dw2, shape{Bt, F * 9}, F * 9, init);
        make(m_b2, m_db2, shape{Bt}, F * 9, init);
        make(m_wh, m_dwh, shape{K, Bt * hk * hk}, Bt * hk * hk, init);
        make(m_bh, m_dbh, shape{K}, Bt * hk * hk, init);
        m_g1 = tensor<float, B>(shape{F}, 1.0f), m_be1 = tensor<float, B>(shape{F}, 0.0f);
        m_g2 = tensor<float, B>(shape{Bt}, 1.0f), m_be2 = tensor<float, B>(shape{Bt}, 0.0f);
        m_dg1.resize(shape{F}), m_dbe1.resize(shape{F}), m_dg2.resize(shape{Bt}), m_dbe2.resize(shape{Bt});
        m_rm1.assign(static_cast<std::size_t>(F), 0.0f), m_rv1.assign(static_cast<std::size_t>(F), 1.0f);
        m_rm2.assign(static_cast<std::size_t>(Bt), 0.0f), m_rv2.assign(static_cast<std::size_t>(Bt), 1.0f);
    }

    /// Trainable tensors in PyTorch's order (conv1, bn1, conv2, bn2, head) for the optimiser.
    nn::parameter_list<float, B> parameters() {
        return {{&m_w1, &m_dw1, "conv1.weight"}, {&m_b1, &m_db1, "conv1.bias"}, {&m_g1, &m_dg1, "bn1.gamma"},
                {&m_be1, &m_dbe1, "bn1.beta"},   {&m_w2, &m_dw2, "conv2.weight"}, {&m_b2, &m_db2, "conv2.bias"},
                {&m_g2, &m_dg2, "bn2.gamma"},    {&m_be2, &m_dbe2, "bn2.beta"},   {&m_wh, &m_dwh, "head.weight"},
                {&m_bh, &m_dbh, "head.bias"}};
    }

    /// Training / eval forward of N patches x ([N][3][p][p]). Returns logits [K][N] (class-major).
    /// `stream` seeds this step's dropout masks (train only).
    const std::vector<float>& forward_patches(const float* x, index_t N, bool train, std::uint64_t stream) {
        return forward(x, N, m_cfg.patch, train, stream);
    }

    /// Dense eval forward of one planar [3][S][S] image: logits [K][(S-p+1)^2].
    const std::vector<float>& forward_dense(const float* planar, index_t S) { return forward(planar, 1, S, false, 0); }

    /// Backward from dlogits [K][N] of the last training forward; overwrites the gradients.
    void backward(const std::vector<float>& dlogits) {
        const index_t F = m_cfg.filters, Bt = m_cfg.bottleneck, K = m_cfg.classes, p = m_cfg.patch, N = m_n;
        const index_t H1 = p - 2, H2 = p - 4, hk = H2, M1 = N * H1 * H1, M2 = N * H2 * H2;
        // Head: logits [K][N] = Wh [K][Bt*hk*hk] x colh [Bt*hk*hk][N].
        gemm_nt(K, Bt * hk * hk, N, dlogits.data(), m_colh.data(), m_dwh.data());
        parallel_for(B{}, K, grapl_detail::row_sum_fn{dlogits.data(), m_dbh.data(), N});
        m_da2.resize(static_cast<std::size_t>(Bt * M2));
        gemm_tn(Bt * hk * hk, N, K, m_wh.data(), dlogits.data(), m_dcol.data_resize(Bt * hk * hk * N));
        parallel_for(B{}, Bt * N, grapl_detail::col2im_fn{m_dcol.v.data(), m_da2.data(), N, H2, H2, hk, 1, 1});
        parallel_for(B{}, Bt, grapl_detail::bn_tanh_back_fn{m_da2.data(), m_xhat2.data(), m_h2.data(), m_mask2.data(),
                                                            m_invstd2.data(), m_g2.data(), m_dg2.data(), m_dbe2.data(),
                                                            M2, m_cfg.dropout});
        // conv2: y2 [Bt][M2] = W2 [Bt][F*9] x col2 [F*9][M2].
        gemm_nt(Bt, F * 9, M2, m_da2.data(), m_col2.data(), m_dw2.data());
        parallel_for(B{}, Bt, grapl_detail::row_sum_fn{m_da2.data(), m_db2.data(), M2});
        gemm_tn(F * 9, M2, Bt, m_w2.data(), m_da2.data(), m_dcol.data_resize(F * 9 * M2));
        m_da1.resize(static_cast<std::size_t>(F * M1));
        parallel_for(B{}, F * N, grapl_detail::col2im_fn{m_dcol.v.data(), m_da1.data(), N, H1, H1, 3, H2, H2});
        parallel_for(B{}, F, grapl_detail::bn_tanh_back_fn{m_da1.data(), m_xhat1.data(), m_h1.data(), m_mask1.data(),
                                                           m_invstd1.data(), m_g1.data(), m_dg1.data(), m_dbe1.data(),
                                                           M1, m_cfg.dropout});
        gemm_nt(F, 27, M1, m_da1.data(), m_col1.data(), m_dw1.data());
        parallel_for(B{}, F, grapl_detail::row_sum_fn{m_da1.data(), m_db1.data(), M1});
    }

    [[nodiscard]] const config& cfg() const noexcept { return m_cfg; }

private:
    struct buffer {
        std::vector<float> v;
        float* data_resize(index_t n) {
            if (static_cast<index_t>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
            return v.data();
        }
    };

    static void make(tensor<float, B>& w, tensor<float, B>& g, const shape& s, index_t fan_in, rng& init) {
        w.resize(s);
        g.resize(s);
        const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
        for (index_t i = 0; i < w.numel(); ++i) w.data()[i] = static_cast<float>(init.uniform(-bound, bound));
    }

    // C[m][n] = A[m][k] B[k][n]
    static void gemm_nn(index_t m, index_t n, index_t k, const float* a, const float* b, float* c) {
        ops::gemm(B{}, ops::gemm_args<float>{.m = m, .n = n, .k = k, .a = a, .lda = k, .b = b, .ldb = n, .c = c, .ldc = n});
    }
    // C[m][n] = A[m][k] B[n][k]^T  (weight gradients: dY x col^T)
    static void gemm_nt(index_t m, index_t n, index_t k, const float* a, const float* b, float* c) {
        ops::gemm(B{}, ops::gemm_args<float>{.trans_b = ops::op::trans, .m = m, .n = n, .k = k, .a = a, .lda = k, .b = b,
                                             .ldb = k, .c = c, .ldc = n});
    }
    // C[m][n] = A[k][m]^T B[k][n]  (column gradients: W^T x dY)
    static void gemm_tn(index_t m, index_t n, index_t k, const float* a, const float* b, float* c) {
        ops::gemm(B{}, ops::gemm_args<float>{.trans_a = ops::op::trans, .m = m, .n = n, .k = k, .a = a, .lda = m, .b = b,
                                             .ldb = n, .c = c, .ldc = n});
    }

    const std::vector<float>& forward(const float* x, index_t N, index_t side, bool train, std::uint64_t stream) {
        const index_t F = m_cfg.filters, Bt = m_cfg.bottleneck, K = m_cfg.classes, hk = m_cfg.patch - 4;
        const index_t H1 = side - 2, H2 = side - 4, Ho = side - m_cfg.patch + 1, P0 = side * side;
        const index_t M1 = N * H1 * H1, M2 = N * H2 * H2;
        m_n = N;
        // Input (dropout in training) to channel-major [3][N][side][side].
        m_a0.resize(static_cast<std::size_t>(3 * N * P0));
        parallel_for(B{}, 3 * N * P0,
                     grapl_detail::input_fn{x, m_a0.data(), N, 3, P0, stream, m_cfg.input_dropout,
                                            static_cast<float>(1.0 / (1.0 - m_cfg.input_dropout)), train});
        // conv1 + BN + tanh + dropout.
        m_col1.resize(static_cast<std::size_t>(27 * M1));
        parallel_for(B{}, 27 * N, grapl_detail::im2col_fn{m_a0.data(), m_col1.data(), N, side, side, 3, 0, H1, H1});
        m_a1.resize(static_cast<std::size_t>(F * M1));
        gemm_nn(F, M1, 27, m_w1.data(), m_col1.data(), m_a1.data());
        parallel_for(B{}, F, grapl_detail::add_bias_fn{m_a1.data(), m_b1.data(), M1});
        bn_tanh(m_a1, F, M1, m_g1, m_be1, m_rm1, m_rv1, m_xhat1, m_h1, m_mask1, m_mean1, m_invstd1, train, stream + 1);
        // conv2 + BN + tanh + dropout.
        m_col2.resize(static_cast<std::size_t>(F * 9 * M2));
        parallel_for(B{}, F * 9 * N, grapl_detail::im2col_fn{m_a1.data(), m_col2.data(), N, H1, H1, 3, 0, H2, H2});
        m_a2.resize(static_cast<std::size_t>(Bt * M2));
        gemm_nn(Bt, M2, F * 9, m_w2.data(), m_col2.data(), m_a2.data());
        parallel_for(B{}, Bt, grapl_detail::add_bias_fn{m_a2.data(), m_b2.data(), M2});
        bn_tanh(m_a2, Bt, M2, m_g2, m_be2, m_rm2, m_rv2, m_xhat2, m_h2, m_mask2, m_mean2, m_invstd2, train, stream + 2);
        // Head: a (p-4) x (p-4) conv, in bands of output rows so the column buffer stays small.
        const index_t kk = Bt * hk * hk;
        m_out.resize(static_cast<std::size_t>(K * N * Ho * Ho));
        const index_t band = std::max<index_t>(1, std::min<index_t>(Ho, (index_t{1} << 22) / std::max<index_t>(1, kk * Ho)));
        for (index_t y0 = 0; y0 < Ho; y0 += band) {
            const index_t rows = std::min(band, Ho - y0);
            float* col = (train || N > 1) ? (m_colh.resize(static_cast<std::size_t>(kk * N * rows * Ho)), m_colh.data())
                                          : m_dcol.data_resize(kk * rows * Ho);
            parallel_for(B{}, kk * N, grapl_detail::im2col_fn{m_a2.data(), col, N, H2, H2, hk, y0, rows, Ho});
            if (N == 1) {
                gemm_strided(K, rows * Ho, kk, m_wh.data(), col, m_out.data() + y0 * Ho, Ho * Ho);
            } else {
                gemm_nn(K, N * rows * Ho, kk, m_wh.data(), col, m_out.data());
            }
        }
        parallel_for(B{}, K, grapl_detail::add_bias_fn{m_out.data(), m_bh.data(), N * Ho * Ho});
        return m_out;
    }

    static void gemm_strided(index_t m, index_t n, index_t k, const float* a, const float* b, float* c, index_t ldc) {
        ops::gemm(B{}, ops::gemm_args<float>{.m = m, .n = n, .k = k, .a = a, .lda = k, .b = b, .ldb = n, .c = c, .ldc = ldc});
    }

    void bn_tanh(std::vector<float>& y, index_t C, index_t M, tensor<float, B>& g, tensor<float, B>& b,
                 std::vector<float>& rm, std::vector<float>& rv, std::vector<float>& xhat, std::vector<float>& h,
                 std::vector<std::uint8_t>& mask, std::vector<float>& mean, std::vector<float>& invstd, bool train,
                 std::uint64_t stream) {
        if (train) {
            xhat.resize(static_cast<std::size_t>(C * M));
            h.resize(static_cast<std::size_t>(C * M));
            mask.resize(static_cast<std::size_t>(C * M));
        }
        mean.resize(static_cast<std::size_t>(C));
        invstd.resize(static_cast<std::size_t>(C));
        parallel_for(B{}, C, grapl_detail::bn_tanh_fn{y.data(), xhat.data(), h.data(), mask.data(), mean.data(),
                                                      invstd.data(), g.data(), b.data(), rm.data(), rv.data(), M,
                                                      m_cfg.bn_eps, m_cfg.bn_momentum, train ? m_cfg.dropout : 0.0,
                                                      stream * 0x2545F4914F6CDD1Dull, train});
    }

    config m_cfg;
    tensor<float, B> m_w1, m_dw1, m_b1, m_db1, m_g1, m_dg1, m_be1, m_dbe1;
    tensor<float, B> m_w2, m_dw2, m_b2, m_db2, m_g2, m_dg2, m_be2, m_dbe2;
    tensor<float, B> m_wh, m_dwh, m_bh, m_dbh;
    std::vector<float> m_rm1, m_rv1, m_rm2, m_rv2;
    std::vector<float> m_a0, m_col1, m_a1, m_col2, m_a2, m_colh, m_out, m_da1, m_da2;
    std::vector<float> m_xhat1, m_h1, m_xhat2, m_h2, m_mean1, m_invstd1, m_mean2, m_invstd2;
    std::vector<std::uint8_t> m_mask1, m_mask2;
    buffer m_dcol;
    index_t m_n = 0;
};

}  // namespace tessel::methods
