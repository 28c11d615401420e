// tessel/methods/grapl_cnn.hpp: GraPL's patch network (METHODS.md 5.3) wired from the library's
// direct-convolution tile kernels, for training on hundreds of 16 x 16 patches at once and for
// the dense (stride-1) prediction over the whole image.
//
// The layers are those of methods::grapl_network (the nn composition, kept as the parity
// reference): input dropout, conv3x3 -> BN -> tanh -> dropout (twice, no padding), and a
// (p-4) x (p-4) head conv. The arithmetic is ops/conv2d_direct.hpp (3x3 convs on vector tiles,
// no column buffers) and ops/bn_tanh_dropout.hpp (the fused normalisation unit and its counter-
// hash dropout); what is GraPL's own here is the schedule. The patches of a step stay in tiles
// across all layers, the wide first layer's normalised values and activations are recomputed per
// job in cache instead of stored, and the first conv's weight gradient is assembled from three
// sums after the batch-norm reduction, which saves a backward pass over the batch.
//
// Work is split into a fixed number of jobs (chunks of patches) that depends only on the batch
// size, each with private partial sums reduced in job order, so results do not depend on the
// thread count. Host backends only (cpu_serial, cpu_omp).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "tessel/core/random.hpp"
#include "tessel/core/tensor.hpp"
#include "tessel/nn/context.hpp"
#include "tessel/ops/bn_tanh_dropout.hpp"
#include "tessel/ops/conv2d_direct.hpp"

namespace tessel::methods {

namespace direct = ops::direct;

/// The GraPL network on batches of patches and on whole images. Parameters follow PyTorch's
/// default initialisation (METHODS.md 1.2) drawn from `init` in layer order: conv1 weight, bias,
/// conv2 weight, bias, head weight, bias.
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
        constexpr auto where = "tessel::methods::grapl_patch_cnn";
        expects(cfg.patch >= 5, where, "patches must be at least 5 px, got ", cfg.patch);
        expects(cfg.classes >= 1 && cfg.filters >= 1 && cfg.bottleneck >= 1, where,
                "need classes, filters and bottleneck >= 1, got ", cfg.classes, ", ", cfg.filters, ", ", cfg.bottleneck);
        expects(cfg.dropout >= 0 && cfg.dropout < 1 && cfg.input_dropout >= 0 && cfg.input_dropout < 1, where,
                "dropout rates must lie in [0, 1), got ", cfg.dropout, " and ", cfg.input_dropout);
        const index_t F = cfg.filters, Bt = cfg.bottleneck, K = cfg.classes, hk = cfg.patch - 4;
        make(m_w1, m_dw1, shape{F, 3, 3, 3}, 27, init);
        make(m_b1, m_db1, shape{F}, 27, init);
        make(m_w2, m_dw2, shape{Bt, F, 3, 3}, F * 9, init);
        make(m_b2, m_db2, shape{Bt}, F * 9, init);
        make(m_wh, m_dwh, shape{K, Bt, hk, hk}, Bt * hk * hk, init);
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
    /// Running batch-norm statistics (mean, variance) of the two hidden layers.
    [[nodiscard]] const std::vector<float>& running_mean(int layer) const { return layer == 1 ? m_rm1 : m_rm2; }
    [[nodiscard]] const std::vector<float>& running_var(int layer) const { return layer == 1 ? m_rv1 : m_rv2; }

    /// Training / eval forward of N patches x ([N][3][p][p]). Returns logits [K][N] (class-major).
    /// `stream` seeds this step's dropout masks (train only).
    const std::vector<float>& forward_patches(const float* x, index_t N, bool train, std::uint64_t stream) {
        expects(N >= 1, "tessel::methods::grapl_patch_cnn::forward_patches", "need at least one patch");
        prepare_patches(N, train, stream);
        const index_t J = m_jobs, p = m_cfg.patch;
        parallel_for(B{}, J, [&](index_t j) { input_and_conv1(x, j, p); });
        if (train) reduce_moments(m_sum1, m_cfg.filters, m_t1, m_mean1, m_invstd1, m_rm1, m_rv1);
        parallel_for(B{}, J, [&](index_t j) { layer1_and_conv2(j); });
        if (train) reduce_moments(m_sum2, m_cfg.bottleneck, m_t2, m_mean2, m_invstd2, m_rm2, m_rv2);
        parallel_for(B{}, J, [&](index_t j) { layer2_and_head(j); });
        return m_out;
    }

    /// Dense eval forward of one planar [3][S][S] image: logits [K][(S-p+1)^2].
    const std::vector<float>& forward_dense(const float* planar, index_t S) {
        constexpr auto where = "tessel::methods::grapl_patch_cnn::forward_dense";
        const index_t p = m_cfg.patch, K = m_cfg.classes, F = m_cfg.filters, Bt = m_cfg.bottleneck, hk = p - 4;
        expects(S >= p, where, "the image side ", S, " is smaller than a patch (", p, ")");
        const index_t Ho = S - p + 1;
        const index_t band = std::min<index_t>(Ho, 64), bands = (Ho + band - 1) / band;
        eval_statistics();
        m_out.resize(static_cast<std::size_t>(K * Ho * Ho));
        const auto t0 = direct::tile::make(band + p - 1, S), t1 = direct::tile::make(band + p - 3, S - 2),
                   t2 = direct::tile::make(band + p - 5, S - 4, 0, 0, hk), to = direct::tile::make(band, Ho);
        const std::size_t per = static_cast<std::size_t>(3 * t0.plane + 2 * F * t1.plane + 2 * Bt * t2.plane + K * to.plane);
        // Padding is never written, so it stays zero once allocated; reuse the buffer across calls.
        if (m_dense_size != per * static_cast<std::size_t>(bands)) {
            m_dense_size = per * static_cast<std::size_t>(bands);
            m_dense.assign(m_dense_size, 0.0f);
        }
        parallel_for(B{}, bands, [&, t0, t1, t2, to, per](index_t b) {
            const index_t y0 = b * band, rows = std::min(band, Ho - y0);
            auto g0 = t0, g1 = t1, g2 = t2, go = to;
            g0.h = rows + p - 1, g1.h = rows + p - 3, g2.h = rows + p - 5, go.h = rows;
            float* x = m_dense.data() + per * static_cast<std::size_t>(b);
            float* y1 = x + 3 * t0.plane;
            float* a1 = y1 + F * t1.plane;
            float* y2 = a1 + F * t1.plane;
            float* a2 = y2 + Bt * t2.plane;
            float* o = a2 + Bt * t2.plane;
            for (index_t c = 0; c < 3; ++c)
                for (index_t r = 0; r < g0.h; ++r)
                    std::memcpy(x + c * t0.plane + r * t0.stride, planar + (c * S + y0 + r) * S,
                                static_cast<std::size_t>(S) * sizeof(float));
            direct::conv_forward(x, g0, 3, m_w1.data(), m_b1.data(), F, 3, y1, g1);
            direct::bn_tanh_forward(y1, nullptr, a1, g1, F, m_eval1, 0);
            direct::conv_forward(a1, g1, F, m_w2.data(), m_b2.data(), Bt, 3, y2, g2);
            direct::bn_tanh_forward(y2, nullptr, a2, g2, Bt, m_eval2, 0);
            direct::conv_forward(a2, g2, Bt, m_wh.data(), m_bh.data(), K, hk, o, go);
            for (index_t k = 0; k < K; ++k)
                for (index_t r = 0; r < rows; ++r)
                    std::memcpy(m_out.data() + (k * Ho + y0 + r) * Ho, o + k * to.plane + r * to.stride,
                                static_cast<std::size_t>(Ho) * sizeof(float));
        });
        return m_out;
    }

    /// Backward from dlogits [K][N] of the last training forward; overwrites the gradients.
    void backward(const std::vector<float>& dlogits) {
        constexpr auto where = "tessel::methods::grapl_patch_cnn::backward";
        const index_t F = m_cfg.filters, Bt = m_cfg.bottleneck, K = m_cfg.classes, N = m_n, J = m_jobs;
        expects(m_train, where, "backward needs a training forward first");
        expects(static_cast<index_t>(dlogits.size()) == K * N, where, "dlogits hold ", dlogits.size(), " values, expected ",
                K, " x ", N);
        m_dlogits = dlogits.data();
        std::fill(m_partials.begin(), m_partials.end(), 0.0);
        std::fill(m_lane_acc.begin(), m_lane_acc.end(), 0.0f);
        parallel_for(B{}, J, [&](index_t j) { head_backward(j); });
        std::vector<float> coef2, mg2, mgx2;
        bn_coefficients(offset_sum_dz2, offset_sum_dzx2, Bt, m_t2, m_g2, m_invstd2, coef2, mg2, mgx2, m_dg2, m_dbe2);
        parallel_for(B{}, J, [&](index_t j) { layer2_backward(j, coef2, mg2, mgx2); });
        std::vector<float> coef1, mg1, mgx1;
        bn_coefficients(offset_sum_dz1, offset_sum_dzx1, F, m_t1, m_g1, m_invstd1, coef1, mg1, mgx1, m_dg1, m_dbe1);
        reduce_weight_gradients(dlogits, coef1, mg1, mgx1);
    }

    [[nodiscard]] const config& cfg() const noexcept { return m_cfg; }

private:
    using vfloat = direct::vfloat;
    using tile = direct::tile;
    static constexpr index_t L = direct::lanes;

    static void make(tensor<float, B>& w, tensor<float, B>& g, const shape& s, index_t fan_in, rng& init) {
        w.resize(s);
        g.resize(s);
        const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
        for (index_t i = 0; i < w.numel(); ++i) w.data()[i] = static_cast<float>(init.uniform(-bound, bound));
    }

    // ---- layout of one step ----
    // Per patch: x (3 planes of t0), y1 (F planes of t1), y2/x_hat2, a2 and dz2 (Bt planes of t2).
    // Layer 1 is wide (F = 32 planes of 14 x 16 per patch, 15 MB per array for 512 patches), so
    // its x_hat and activation are not stored: each job recomputes them from y1 into scratch that
    // stays in cache, and the first conv's weight gradient is assembled after the batch-norm
    // reduction from three sums that do not need its coefficients (reduce_weight_gradients), which
    // saves a third backward pass over the batch. Per job: partial sums in double and per-lane
    // weight-gradient accumulators, plus scratch for x_hat1, a1, da1, dz1 and dy2 (with lead rows
    // for the transposed conv).
    index_t offset_sum_dz1 = 0, offset_sum_dzx1 = 0, offset_sum_dz2 = 0, offset_sum_dzx2 = 0, offset_sum_xhat1 = 0,
            offset_db2 = 0, partials_per_job = 0;

    void prepare_patches(index_t N, bool train, std::uint64_t stream) {
        const index_t p = m_cfg.patch, F = m_cfg.filters, Bt = m_cfg.bottleneck, K = m_cfg.classes, hk = p - 4;
        m_n = N;
        m_train = train;
        m_jobs = std::min<index_t>(N, 8);
        m_t0 = tile::make(p, p), m_t1 = tile::make(p - 2, p - 2, 0, 0, L, p), m_t2 = tile::make(p - 4, p - 4, 0, 0, L, p);
        m_t2lead = tile::make(p - 4, p - 4, 2, 2, L, p);
        m_mask1 = direct::column_masks(m_t1), m_mask2 = direct::column_masks(m_t2);
        auto grow = [](std::vector<float>& v, index_t n) {
            if (static_cast<index_t>(v.size()) < n) v.assign(static_cast<std::size_t>(n), 0.0f);
        };
        grow(m_x, N * 3 * m_t0.plane);
        grow(m_y1, N * F * m_t1.plane);
        grow(m_y2, N * Bt * m_t2.plane), grow(m_a2, N * Bt * m_t2.plane), grow(m_dz2, N * Bt * m_t2.plane);
        grow(m_job_dy2, m_jobs * Bt * m_t2lead.plane), grow(m_job_da1, m_jobs * F * m_t1.plane);
        grow(m_job_xh1, m_jobs * F * m_t1.plane), grow(m_job_a1, m_jobs * F * m_t1.plane);
        grow(m_job_dz1, m_jobs * F * m_t1.plane), grow(m_job_da2, m_jobs * Bt * m_t2.plane);
        grow(m_job_keep1, m_jobs * F * m_t1.plane);
        grow(m_valid1, m_t1.plane);
        for (index_t r = 0; r < m_t1.h; ++r)
            for (index_t x = 0; x < m_t1.stride; ++x) m_valid1[static_cast<std::size_t>(r * m_t1.stride + x)] = x < m_t1.w ? 1.0f : 0.0f;
        m_out.resize(static_cast<std::size_t>(K * N));
        // Head weights with each kernel row padded to the tile stride (zeros past p - 4).
        m_whp.assign(static_cast<std::size_t>(K * Bt * m_t2.body()), 0.0f);
        for (index_t k = 0; k < K; ++k)
            for (index_t c = 0; c < Bt; ++c)
                for (index_t y = 0; y < hk; ++y)
                    for (index_t x = 0; x < hk; ++x)
                        m_whp[static_cast<std::size_t>((k * Bt + c) * m_t2.body() + y * m_t2.stride + x)] =
                            m_wh.data()[((k * Bt + c) * hk + y) * hk + x];
        // Partial sums per job: moments of layers 1 and 2, then the backward sums.
        offset_sum_dz1 = 2 * F + 2 * Bt, offset_sum_dzx1 = offset_sum_dz1 + F, offset_sum_dz2 = offset_sum_dzx1 + F;
        offset_sum_dzx2 = offset_sum_dz2 + Bt, offset_sum_xhat1 = offset_sum_dzx2 + Bt, offset_db2 = offset_sum_xhat1 + F;
        partials_per_job = offset_db2 + Bt;
        m_partials.assign(static_cast<std::size_t>(m_jobs * partials_per_job), 0.0);
        m_sum1 = 0, m_sum2 = 2 * F;
        // Lane accumulators: sum dz1 (x) x, sum x_hat1 (x) x, sum over valid positions of x (layer
        // 1, see reduce_weight_gradients), then dW2 and the padded head gradient.
        m_lane_w1 = 0, m_lane_xh1 = F * 27 * L, m_lane_x1 = m_lane_xh1 + F * 27 * L;
        m_lane_w2 = m_lane_x1 + 27 * L, m_lane_wh = m_lane_w2 + Bt * F * 9 * L;
        m_lane_per_job = m_lane_wh + K * Bt * m_t2.body();
        if (train) {
            m_lane_acc.assign(static_cast<std::size_t>(m_jobs * m_lane_per_job), 0.0f);
            m_seed_in = static_cast<std::uint32_t>(stream * 0x9E3779B97F4A7C15ull >> 32);
            m_seed1 = static_cast<std::uint32_t>((stream + 1) * 0xBF58476D1CE4E5B9ull >> 32);
            m_seed2 = static_cast<std::uint32_t>((stream + 2) * 0x94D049BB133111EBull >> 32);
        } else {
            eval_statistics();
        }
    }

    [[nodiscard]] index_t job_begin(index_t j) const { return m_n * j / m_jobs; }
    [[nodiscard]] index_t job_end(index_t j) const { return m_n * (j + 1) / m_jobs; }
    double* partials(index_t j) { return m_partials.data() + j * partials_per_job; }

    direct::bn_tanh_params layer_params(int layer) const {
        const bool one = layer == 1;
        return {one ? m_mean1.data() : m_mean2.data(),
                one ? m_invstd1.data() : m_invstd2.data(),
                one ? m_g1.data() : m_g2.data(),
                one ? m_be1.data() : m_be2.data(),
                m_train ? m_cfg.dropout : 0.0,
                one ? m_seed1 : m_seed2,
                direct::keep_threshold(m_cfg.dropout),
                m_train};
    }

    /// Eval mode: BN uses the running statistics.
    void eval_statistics() {
        auto fill = [&](const std::vector<float>& rm, const std::vector<float>& rv, std::vector<float>& mean,
                        std::vector<float>& inv) {
            mean = rm;
            inv.resize(rv.size());
            for (std::size_t c = 0; c < rv.size(); ++c) inv[c] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(rv[c]) + m_cfg.bn_eps));
        };
        fill(m_rm1, m_rv1, m_mean1, m_invstd1);
        fill(m_rm2, m_rv2, m_mean2, m_invstd2);
        m_eval1 = {m_mean1.data(), m_invstd1.data(), m_g1.data(), m_be1.data(), 0.0, 0, 0, false};
        m_eval2 = {m_mean2.data(), m_invstd2.data(), m_g2.data(), m_be2.data(), 0.0, 0, 0, false};
    }

    // ---- forward passes (one job = a chunk of patches) ----
    void input_and_conv1(const float* x, index_t j, index_t p) {
        const index_t F = m_cfg.filters;
        const double pin = m_train ? m_cfg.input_dropout : 0.0;
        const auto thr = direct::keep_threshold(pin);
        const float scale = static_cast<float>(1.0 / (1.0 - pin));
        double* part = partials(j);
        for (index_t n = job_begin(j); n < job_end(j); ++n) {
            float* xn = m_x.data() + n * 3 * m_t0.plane;
            for (index_t c = 0; c < 3; ++c)
                for (index_t y = 0; y < p; ++y) {
                    float* row = xn + c * m_t0.plane + y * m_t0.stride;
                    const float* src = x + ((n * 3 + c) * p + y) * p;
                    for (index_t v = 0; v < m_t0.stride; v += L) {
                        vfloat val;
                        for (index_t l = 0; l < L; ++l) val[l] = v + l < p ? src[v + l] : 0.0f;
                        if (pin > 0) {
                            const auto base = static_cast<std::uint32_t>(((n * 3 + c) * p + y) * p + v);
                            vfloat kept = direct::select(direct::keep_mask(base, m_seed_in, thr), val * scale);
                            for (index_t l = 0; l < L; ++l) val[l] = v + l < p ? kept[l] : 0.0f;
                        }
                        direct::store(row + v, val);
                    }
                }
            float* y1 = m_y1.data() + n * F * m_t1.plane;
            direct::conv_forward(xn, m_t0, 3, m_w1.data(), m_b1.data(), F, 3, y1, m_t1);
            if (m_train) direct::channel_moments(y1, m_t1, F, m_mask1, part + m_sum1, part + m_sum1 + F);
        }
    }

    void layer1_and_conv2(index_t j) {
        const index_t F = m_cfg.filters, Bt = m_cfg.bottleneck;
        const auto bp = m_train ? layer_params(1) : m_eval1;
        double* part = partials(j);
        float* a1 = m_job_a1.data() + j * F * m_t1.plane;
        for (index_t n = job_begin(j); n < job_end(j); ++n) {
            const float* y1 = m_y1.data() + n * F * m_t1.plane;
            direct::bn_tanh_forward(y1, nullptr, a1, m_t1, F, bp, static_cast<std::uint32_t>(n * F * m_t1.body()));
            float* y2 = m_y2.data() + n * Bt * m_t2.plane;
            direct::conv_forward(a1, m_t1, F, m_w2.data(), m_b2.data(), Bt, 3, y2, m_t2);
            if (m_train) direct::channel_moments(y2, m_t2, Bt, m_mask2, part + m_sum2, part + m_sum2 + Bt);
        }
    }

    void layer2_and_head(index_t j) {
        const index_t Bt = m_cfg.bottleneck, K = m_cfg.classes, N = m_n, body = m_t2.body();
        const auto bp = m_train ? layer_params(2) : m_eval2;
        for (index_t n = job_begin(j); n < job_end(j); ++n) {
            float* y2 = m_y2.data() + n * Bt * m_t2.plane;
            float* a2 = m_a2.data() + n * Bt * m_t2.plane;
            direct::bn_tanh_forward(y2, m_train ? y2 : nullptr, a2, m_t2, Bt, bp, static_cast<std::uint32_t>(n * Bt * m_t2.body()),
                                          &m_mask2);
            for (index_t k = 0; k < K; ++k) {
                vfloat acc{};
                for (index_t c = 0; c < Bt; ++c) {
                    const float* w = m_whp.data() + (k * Bt + c) * body;
                    const float* a = a2 + c * m_t2.plane;
                    for (index_t q = 0; q < body; q += L) acc += direct::load(w + q) * direct::load(a + q);
                }
                m_out[static_cast<std::size_t>(k * N + n)] = direct::lane_sum(acc) + m_bh.data()[k];
            }
        }
    }

    /// Batch statistics from the job partials (biased variance for normalising, unbiased for the
    /// running estimate, as PyTorch).
    void reduce_moments(index_t offset, index_t C, const tile& t, std::vector<float>& mean, std::vector<float>& invstd,
                        std::vector<float>& rm, std::vector<float>& rv) {
        const double M = static_cast<double>(m_n * t.h * t.w);
        mean.resize(static_cast<std::size_t>(C));
        invstd.resize(static_cast<std::size_t>(C));
        for (index_t c = 0; c < C; ++c) {
            double s = 0, s2 = 0;
            for (index_t j = 0; j < m_jobs; ++j) s += partials(j)[offset + c], s2 += partials(j)[offset + C + c];
            const double mu = s / M, var = std::max(0.0, s2 / M - mu * mu);
            const auto cu = static_cast<std::size_t>(c);
            mean[cu] = static_cast<float>(mu);
            invstd[cu] = static_cast<float>(1.0 / std::sqrt(var + m_cfg.bn_eps));
            const double unbiased = M > 1 ? var * M / (M - 1) : var;
            rm[cu] = static_cast<float>((1 - m_cfg.bn_momentum) * rm[cu] + m_cfg.bn_momentum * mu);
            rv[cu] = static_cast<float>((1 - m_cfg.bn_momentum) * rv[cu] + m_cfg.bn_momentum * unbiased);
        }
    }

    // ---- backward passes ----
    void head_backward(index_t j) {
        const index_t Bt = m_cfg.bottleneck, K = m_cfg.classes, N = m_n, body = m_t2.body();
        const auto bp = layer_params(2);
        double* part = partials(j);
        float* acc = m_lane_acc.data() + j * m_lane_per_job + m_lane_wh;
        float* da2 = m_job_da2.data() + j * Bt * m_t2.plane;
        for (index_t n = job_begin(j); n < job_end(j); ++n) {
            const float* a2 = m_a2.data() + n * Bt * m_t2.plane;
            for (index_t c = 0; c < Bt; ++c) {
                float* d = da2 + c * m_t2.plane;
                for (index_t q = 0; q < body; q += L) {
                    vfloat g{};
                    for (index_t k = 0; k < K; ++k)
                        g += m_dlogits[k * N + n] * direct::load(m_whp.data() + (k * Bt + c) * body + q);
                    direct::store(d + q, g);
                }
            }
            for (index_t k = 0; k < K; ++k) {
                const float g = m_dlogits[k * N + n];
                if (g == 0.0f) continue;
                for (index_t c = 0; c < Bt; ++c) {
                    float* dst = acc + (k * Bt + c) * body;
                    const float* a = a2 + c * m_t2.plane;
                    for (index_t q = 0; q < body; q += L)
                        direct::store(dst + q, direct::load(dst + q) + g * direct::load(a + q));
                }
            }
            direct::bn_tanh_backward_dz(da2, a2, m_y2.data() + n * Bt * m_t2.plane, m_dz2.data() + n * Bt * m_t2.plane,
                                              m_t2, Bt, bp, static_cast<std::uint32_t>(n * Bt * m_t2.body()),
                                              part + offset_sum_dz2, part + offset_sum_dzx2);
        }
    }

    void layer2_backward(index_t j, const std::vector<float>& coef, const std::vector<float>& mg,
                         const std::vector<float>& mgx) {
        const index_t F = m_cfg.filters, Bt = m_cfg.bottleneck;
        const auto bp = layer_params(1);
        double* part = partials(j);
        float* lane = m_lane_acc.data() + j * m_lane_per_job;
        float* dy2 = m_job_dy2.data() + j * Bt * m_t2lead.plane;
        float* da1 = m_job_da1.data() + j * F * m_t1.plane;
        float* xh1 = m_job_xh1.data() + j * F * m_t1.plane;
        float* a1 = m_job_a1.data() + j * F * m_t1.plane;
        float* dz1 = m_job_dz1.data() + j * F * m_t1.plane;
        float* keep1 = m_job_keep1.data() + j * F * m_t1.plane;
        const tile valid{m_t1.h, m_t1.w, m_t1.stride, 0, m_t1.plane};
        for (index_t n = job_begin(j); n < job_end(j); ++n) {
            const std::size_t o2 = static_cast<std::size_t>(n * Bt * m_t2.plane), o1 = static_cast<std::size_t>(n * F * m_t1.plane);
            const float* x = m_x.data() + n * 3 * m_t0.plane;
            direct::bn_tanh_forward(m_y1.data() + o1, xh1, a1, m_t1, F, bp, static_cast<std::uint32_t>(n * F * m_t1.body()),
                                          &m_mask1, bp.p > 0 ? keep1 : nullptr);
            direct::bn_backward_dy(m_dz2.data() + o2, m_y2.data() + o2, m_t2, Bt, coef.data(), mg.data(), mgx.data(),
                                         m_mask2, dy2, m_t2lead, part + offset_db2);
            direct::conv_backward_weight(dy2, m_t2lead, Bt, a1, m_t1, F, lane + m_lane_w2);
            direct::conv_backward_data(dy2, m_t2lead, Bt, m_w2.data(), F, da1, m_t1);
            direct::bn_tanh_backward_dz(da1, a1, xh1, dz1, m_t1, F, bp, static_cast<std::uint32_t>(n * F * m_t1.body()),
                                              part + offset_sum_dz1, part + offset_sum_dzx1, bp.p > 0 ? keep1 : nullptr);
            direct::conv_backward_weight(dz1, m_t1, F, x, m_t0, 3, lane + m_lane_w1);
            direct::conv_backward_weight(xh1, m_t1, F, x, m_t0, 3, lane + m_lane_xh1);
            direct::conv_backward_weight(m_valid1.data(), valid, 1, x, m_t0, 3, lane + m_lane_x1);
            for (index_t c = 0; c < F; ++c) {
                vfloat acc{};
                for (index_t q = 0; q < m_t1.body(); q += L) acc += direct::load(xh1 + c * m_t1.plane + q);
                part[offset_sum_xhat1 + c] += direct::lane_sum(acc);
            }
        }
    }

    /// gamma / beta gradients and the coefficients of the second BN backward pass.
    void bn_coefficients(index_t off_dz, index_t off_dzx, index_t C, const tile& t, const tensor<float, B>& gamma,
                         const std::vector<float>& invstd, std::vector<float>& coef, std::vector<float>& mg,
                         std::vector<float>& mgx, tensor<float, B>& dgamma, tensor<float, B>& dbeta) {
        const double M = static_cast<double>(m_n * t.h * t.w);
        coef.resize(static_cast<std::size_t>(C)), mg.resize(static_cast<std::size_t>(C)), mgx.resize(static_cast<std::size_t>(C));
        for (index_t c = 0; c < C; ++c) {
            double s = 0, sx = 0;
            for (index_t j = 0; j < m_jobs; ++j) s += partials(j)[off_dz + c], sx += partials(j)[off_dzx + c];
            dgamma.data()[c] = static_cast<float>(sx);
            dbeta.data()[c] = static_cast<float>(s);
            const auto cu = static_cast<std::size_t>(c);
            coef[cu] = gamma.data()[c] * invstd[cu];
            mg[cu] = static_cast<float>(s / M);
            mgx[cu] = static_cast<float>(sx / M);
        }
    }

    /// Sums the job partials into the gradients. Layer 1 (dy1 = k (dz1 - mg - x_hat1 mgx) per
    /// channel, k = gamma invstd) is linear in its three per-patch sums, so
    ///   dW1[o][c][t] = k_o (sum dz1 (x) x - mg_o sum x - mgx_o sum x_hat1 (x) x),
    ///   db1[o] = k_o (sum dz1 - M mg_o - mgx_o sum x_hat1)   (float-rounding noise, as in PyTorch).
    void reduce_weight_gradients(const std::vector<float>& dlogits, const std::vector<float>& coef1,
                                 const std::vector<float>& mg1, const std::vector<float>& mgx1) {
        const index_t F = m_cfg.filters, Bt = m_cfg.bottleneck, K = m_cfg.classes, N = m_n, hk = m_cfg.patch - 4;
        auto lanes_double = [&](index_t offset, index_t i) {
            double s = 0;
            for (index_t j = 0; j < m_jobs; ++j) {
                const float* a = m_lane_acc.data() + j * m_lane_per_job + offset + i * L;
                for (index_t l = 0; l < L; ++l) s += a[l];
            }
            return s;
        };
        for (index_t o = 0; o < F; ++o)
            for (index_t t = 0; t < 27; ++t) {
                const auto ou = static_cast<std::size_t>(o);
                const double v = lanes_double(m_lane_w1, o * 27 + t) - mg1[ou] * lanes_double(m_lane_x1, t) -
                                 mgx1[ou] * lanes_double(m_lane_xh1, o * 27 + t);
                m_dw1.data()[o * 27 + t] = static_cast<float>(coef1[ou] * v);
            }
        for (index_t i = 0; i < Bt * F * 9; ++i) m_dw2.data()[i] = static_cast<float>(lanes_double(m_lane_w2, i));
        for (index_t k = 0; k < K; ++k)
            for (index_t c = 0; c < Bt; ++c)
                for (index_t y = 0; y < hk; ++y)
                    for (index_t x = 0; x < hk; ++x) {
                        double s = 0;
                        for (index_t j = 0; j < m_jobs; ++j)
                            s += m_lane_acc[static_cast<std::size_t>(j * m_lane_per_job + m_lane_wh + (k * Bt + c) * m_t2.body() +
                                                                     y * m_t2.stride + x)];
                        m_dwh.data()[((k * Bt + c) * hk + y) * hk + x] = static_cast<float>(s);
                    }
        auto job_sum = [&](index_t offset, index_t c) {
            double s = 0;
            for (index_t j = 0; j < m_jobs; ++j) s += partials(j)[offset + c];
            return s;
        };
        const double M1 = static_cast<double>(N * m_t1.h * m_t1.w);
        for (index_t c = 0; c < F; ++c) {
            const auto cu = static_cast<std::size_t>(c);
            const double v = job_sum(offset_sum_dz1, c) - M1 * mg1[cu] - mgx1[cu] * job_sum(offset_sum_xhat1, c);
            m_db1.data()[c] = static_cast<float>(coef1[cu] * v);
        }
        for (index_t c = 0; c < Bt; ++c) m_db2.data()[c] = static_cast<float>(job_sum(offset_db2, c));
        for (index_t k = 0; k < K; ++k) {
            double s = 0;
            for (index_t n = 0; n < N; ++n) s += dlogits[static_cast<std::size_t>(k * N + n)];
            m_dbh.data()[k] = static_cast<float>(s);
        }
    }

    config m_cfg;
    tensor<float, B> m_w1, m_dw1, m_b1, m_db1, m_g1, m_dg1, m_be1, m_dbe1;
    tensor<float, B> m_w2, m_dw2, m_b2, m_db2, m_g2, m_dg2, m_be2, m_dbe2;
    tensor<float, B> m_wh, m_dwh, m_bh, m_dbh;
    std::vector<float> m_rm1, m_rv1, m_rm2, m_rv2, m_mean1, m_invstd1, m_mean2, m_invstd2;
    direct::bn_tanh_params m_eval1{}, m_eval2{};
    tile m_t0, m_t1, m_t2, m_t2lead;
    std::vector<vfloat> m_mask1, m_mask2;
    std::vector<float> m_x, m_y1, m_y2, m_a2, m_dz2, m_whp, m_out, m_dense, m_valid1;
    std::vector<float> m_job_dy2, m_job_da1, m_job_xh1, m_job_a1, m_job_dz1, m_job_da2, m_job_keep1, m_lane_acc;
    std::vector<double> m_partials;
    index_t m_sum1 = 0, m_sum2 = 0, m_lane_w1 = 0, m_lane_xh1 = 0, m_lane_x1 = 0, m_lane_w2 = 0, m_lane_wh = 0,
            m_lane_per_job = 0;
    index_t m_n = 0, m_jobs = 1;
    bool m_train = false;
    std::uint32_t m_seed_in = 0, m_seed1 = 0, m_seed2 = 0;
    const float* m_dlogits = nullptr;
    std::size_t m_dense_size = 0;
};

}  // namespace tessel::methods
