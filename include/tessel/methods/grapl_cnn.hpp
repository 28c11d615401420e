// tessel/methods/grapl_cnn.hpp: GraPL's patch network (METHODS.md 5.3) as direct convolutions on
// the target's float vectors (core/simd.hpp: 16 lanes with AVX-512, 8 with AVX2, 4 with SSE2 or
// NEON), for training on hundreds of 16 x 16 patches at once and for the dense (stride-1)
// prediction over the whole image.
//
// The layers are those of methods::grapl_network (nn blocks): input dropout, conv3x3 -> BN ->
// tanh -> dropout (twice, no padding), and a (p-4) x (p-4) head conv. The nn blocks run a conv as
// im2col + GEMM; for GraPL's tiny channel counts (3 -> 32 -> 8) that spends most of a step moving
// column buffers (the im2col of the second conv alone is 85 MB per step). Here every tensor is a
// stack of "tiles" (one per patch, or one per band of image rows for the dense form) whose rows
// are padded to a multiple of the vector width, so an output row is a whole number of vector
// registers and a 3x3 tap is an unaligned vector load at a fixed offset: no column buffer is ever
// built. Lanes past a row's valid width compute throw-away values that no valid output reads;
// batch statistics mask them, and gradients are zero there by construction. Register blocks (how
// many output channels share a loaded input vector) are sized from the target's register count.
//
// Work is split into a fixed number of jobs (chunks of patches) that depends only on the batch
// size, each with private partial sums reduced in job order, so results do not depend on the
// thread count. Dropout masks are a hash of each element's logical index, so they do not depend on
// the vector width either (sums do: lanes are partial sums). Host backends only (cpu_serial,
// cpu_omp).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "tessel/core/random.hpp"
#include "tessel/core/simd.hpp"
#include "tessel/core/tensor.hpp"
#include "tessel/nn/context.hpp"

namespace tessel::methods {

namespace grapl_detail {

using simd::lane_sum;
using simd::lanes;
using simd::load;
using simd::splat;
using simd::store;
using simd::vfloat;
using simd::vuint;

// Register blocking. A direct conv keeps conv_rows x conv_channels accumulators, conv_rows input
// vectors and one broadcast weight live: 8 x 2 + 3 = 19 of 32 registers, 4 x 2 + 3 = 11 of 16.
// (Issue 11: fixed 64-byte vectors and 8 x 2 blocks on AVX2 meant 32 ymm accumulators, which
// spilled; 40 s per image on Zen 2.)
inline constexpr int conv_rows = 2;
inline constexpr int conv_channels = simd::vector_registers >= 32 ? 8 : 4;
// The weight gradient keeps 9 tap accumulators per output channel plus that channel's dout vector
// and either one input vector or, in the rolling form, a 3 x 3 window: two channels with the
// window are 2 x 10 + 9 = 29 registers, one channel without it 11.
inline constexpr int weight_grad_channels = simd::vector_registers >= 32 ? 2 : 1;
inline constexpr bool rolling_window_fits = 2 * (9 + 1) + 9 <= simd::vector_registers;

/// Calls run.template operator()<W>(first) over [0, count) in blocks of Widest, then 4, 2 and 1
/// channels: single-channel blocks have too few independent accumulators to hide FMA latency.
template <int Widest, class Run>
inline void in_channel_blocks(index_t count, Run&& run) {
    index_t o = 0;
    for (; o + Widest <= count; o += Widest) run.template operator()<Widest>(o);
    if constexpr (Widest > 4)
        for (; o + 4 <= count; o += 4) run.template operator()<4>(o);
    if constexpr (Widest > 2)
        for (; o + 2 <= count; o += 2) run.template operator()<2>(o);
    for (; o < count; ++o) run.template operator()<1>(o);
}

inline index_t round_up(index_t v, index_t m) { return (v + m - 1) / m * m; }

/// Counter-based dropout: a 32-bit finaliser hash of (seed, element index), kept when it reaches
/// p * 2^32; vectorises, runs in any order and is fixed by the seed.
inline vuint hash(vuint i, std::uint32_t seed) {
    vuint h = (i * 0x9E3779B1u) ^ seed;
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}
inline std::uint32_t keep_threshold(double p) {
    return p <= 0 ? 0u : static_cast<std::uint32_t>(std::min(4294967295.0, std::ldexp(p, 32)));
}
/// All-ones lanes where element base + lane is kept.
inline vuint keep_mask(std::uint32_t base, std::uint32_t seed, std::uint32_t threshold) {
    return simd::greater_equal(hash(simd::lane_index() + base, seed), splat(threshold));
}
inline vfloat select(vuint mask, vfloat v) { return simd::select(mask, v, vfloat{}); }

/// Geometry of one tile: h x w valid values per channel plane, rows `stride` floats apart (a
/// multiple of the vector width), planes `plane` floats apart with `lead` zero floats before row 0
/// (space for the negative offsets of a transposed conv) and, after the last row, `trail_rows`
/// zero rows plus room for a vector load that starts `overflow` floats past the end of the last
/// row (a k-wide kernel reads k - 1 floats past a row). Rows hold at least `min_row` floats, so that the tiles of
/// a patch's layers can share one stride (conv_backward_weight needs that).
struct tile {
    index_t h = 0, w = 0, stride = 0, lead = 0, plane = 0;
    static tile make(index_t h, index_t w, index_t lead_rows = 0, index_t trail_rows = 0, index_t overflow = lanes,
                     index_t min_row = 0) {
        tile t{h, w, round_up(std::max(w, min_row), lanes), 0, 0};
        t.lead = lead_rows > 0 ? lead_rows * t.stride + lanes : 0;
        t.plane = t.lead + (h + trail_rows) * t.stride + round_up(overflow, lanes) + lanes;
        return t;
    }
    [[nodiscard]] index_t body() const noexcept { return h * stride; }
};

/// Per-lane 0/1 masks of the valid columns of a row of `t`.
inline std::vector<vfloat> column_masks(const tile& t) {
    std::vector<vfloat> m(static_cast<std::size_t>(t.stride / lanes));
    for (index_t v = 0; v < t.stride / lanes; ++v)
        for (index_t l = 0; l < lanes; ++l) m[static_cast<std::size_t>(v)][l] = v * lanes + l < t.w ? 1.0f : 0.0f;
    return m;
}

/// Valid cross-correlation: out[o][y][x] = bias[o] + sum_{c,dy,dx} w[o][c][dy][dx] in[c][y+dy][x+dx]
/// for o in [o0, o0 + OB), y < out.h and every lane of a row (lanes past out.w are throw-away).
/// RB output rows share each broadcast weight, so the loop issues fewer loads than FMAs.
template <int OB, int RB>
inline void conv_forward_rows(const float* in, const tile& ti, index_t cin, const float* w, const float* bias, index_t k,
                              index_t o0, float* out, const tile& to, index_t y, index_t v) {
    const index_t kk = k * k, wo = cin * kk;
    vfloat acc[RB][OB];
    for (int j = 0; j < OB; ++j) {
        const vfloat b = splat(bias ? bias[o0 + j] : 0.0f);
        for (int r = 0; r < RB; ++r) acc[r][j] = b;
    }
    for (index_t c = 0; c < cin; ++c)
        for (index_t dy = 0; dy < k; ++dy) {
            const float* row = in + c * ti.plane + ti.lead + (y + dy) * ti.stride + v * lanes;
            const float* wr = w + o0 * wo + c * kk + dy * k;
            for (index_t dx = 0; dx < k; ++dx) {
                vfloat x[RB];
                for (int r = 0; r < RB; ++r) x[r] = load(row + r * ti.stride + dx);
                for (int j = 0; j < OB; ++j) {
                    const float wj = wr[j * wo + dx];
                    for (int r = 0; r < RB; ++r) acc[r][j] += wj * x[r];
                }
            }
        }
    for (int r = 0; r < RB; ++r)
        for (int j = 0; j < OB; ++j) store(out + (o0 + j) * to.plane + to.lead + (y + r) * to.stride + v * lanes, acc[r][j]);
}
template <int OB>
inline void conv_forward_block(const float* in, const tile& ti, index_t cin, const float* w, const float* bias,
                               index_t k, index_t o0, float* out, const tile& to) {
    const index_t vecs = to.stride / lanes;
    index_t y = 0;
    for (; y + conv_rows <= to.h; y += conv_rows)
        for (index_t v = 0; v < vecs; ++v) conv_forward_rows<OB, conv_rows>(in, ti, cin, w, bias, k, o0, out, to, y, v);
    for (; y < to.h; ++y)
        for (index_t v = 0; v < vecs; ++v) conv_forward_rows<OB, 1>(in, ti, cin, w, bias, k, o0, out, to, y, v);
}
inline void conv_forward(const float* in, const tile& ti, index_t cin, const float* w, const float* bias, index_t cout,
                         index_t k, float* out, const tile& to) {
    in_channel_blocks<conv_channels>(
        cout, [&]<int OB>(index_t o) { conv_forward_block<OB>(in, ti, cin, w, bias, k, o, out, to); });
}

/// Input gradient of a 3x3 valid conv, gather form: din[c][y][x] = sum_{o,dy,dx} w[o][c][dy][dx]
/// dout[o][y-dy][x-dx] over the whole input tile; dout must hold zeros outside its valid values
/// (lead rows, throw-away lanes, trailing rows).
template <int CB, int RB>
inline void conv_backward_data_rows(const float* dout, const tile& to, index_t cout, const float* w, index_t cin,
                                    index_t c0, float* din, const tile& ti, index_t y, index_t v) {
    vfloat acc[RB][CB];
    for (int r = 0; r < RB; ++r)
        for (int j = 0; j < CB; ++j) acc[r][j] = vfloat{};
    for (index_t o = 0; o < cout; ++o)
        for (index_t dy = 0; dy < 3; ++dy) {
            const float* row = dout + o * to.plane + to.lead + (y - dy) * to.stride + v * lanes;
            const float* wr = w + (o * cin + c0) * 9 + dy * 3;
            for (index_t dx = 0; dx < 3; ++dx) {
                vfloat g[RB];
                for (int r = 0; r < RB; ++r) g[r] = load(row + r * to.stride - dx);
                for (int j = 0; j < CB; ++j) {
                    const float wj = wr[j * 9 + dx];
                    for (int r = 0; r < RB; ++r) acc[r][j] += wj * g[r];
                }
            }
        }
    for (int r = 0; r < RB; ++r)
        for (int j = 0; j < CB; ++j) store(din + (c0 + j) * ti.plane + ti.lead + (y + r) * ti.stride + v * lanes, acc[r][j]);
}
template <int CB>
inline void conv_backward_data_block(const float* dout, const tile& to, index_t cout, const float* w, index_t cin,
                                     index_t c0, float* din, const tile& ti) {
    const index_t vecs = ti.stride / lanes;
    index_t y = 0;
    for (; y + conv_rows <= ti.h; y += conv_rows)
        for (index_t v = 0; v < vecs; ++v) conv_backward_data_rows<CB, conv_rows>(dout, to, cout, w, cin, c0, din, ti, y, v);
    for (; y < ti.h; ++y)
        for (index_t v = 0; v < vecs; ++v) conv_backward_data_rows<CB, 1>(dout, to, cout, w, cin, c0, din, ti, y, v);
}
inline void conv_backward_data(const float* dout, const tile& to, index_t cout, const float* w, index_t cin, float* din,
                               const tile& ti) {
    in_channel_blocks<conv_channels>(
        cin, [&]<int CB>(index_t c) { conv_backward_data_block<CB>(dout, to, cout, w, cin, c, din, ti); });
}

/// Weight gradient of a 3x3 valid conv into per-lane accumulators acc[o][c][tap][lanes]:
/// += dout[o][q] in[c][q + tap offset] over the output rows; dout is zero at throw-away lanes.
/// Output and input positions are the same offset q, so both tiles must have the same stride
/// (with 16 or 8 lanes a patch's 16-, 14- and 12-float rows all round up to 16; with 4 they would
/// not, hence tile::make's min_row).
/// OneVectorRows (rows of one vector: stride == lanes, e.g. 16-px patches with AVX-512): the input
/// vector of tap (dy, dx) at output row q is the one of tap (dy - 1, dx) at row q + 1, so a
/// rolling window of 3 rows x 3 shifts needs 3 new loads per row instead of 9; it is used only
/// where its 9 window registers fit beside the accumulators. Both forms add the same products in
/// the same order.
template <int OB, bool OneVectorRows>
inline void conv_backward_weight_block(const float* dout, const tile& to, const float* in, const tile& ti, index_t cin,
                                       index_t o0, float* acc) {
    index_t off[9];
    for (index_t t = 0; t < 9; ++t) off[t] = (t / 3) * ti.stride + t % 3;
    const index_t qv = to.body() / lanes;
    for (index_t c = 0; c < cin; ++c) {
        vfloat a[OB][9];
        for (int j = 0; j < OB; ++j)
            for (int t = 0; t < 9; ++t) a[j][t] = vfloat{};
        const float* src = in + c * ti.plane + ti.lead;
        vfloat w[3][3];  // OneVectorRows: w[dy][dx] = input row q + dy shifted by dx
        if constexpr (OneVectorRows)
            for (int dy = 0; dy < 2; ++dy)
                for (int dx = 0; dx < 3; ++dx) w[dy][dx] = load(src + dy * lanes + dx);
        for (index_t q = 0; q < qv; ++q) {
            vfloat d[OB];
            for (int j = 0; j < OB; ++j) d[j] = load(dout + (o0 + j) * to.plane + to.lead + q * lanes);
            if constexpr (OneVectorRows) {
                for (int dx = 0; dx < 3; ++dx) w[2][dx] = load(src + (q + 2) * lanes + dx);
                for (int t = 0; t < 9; ++t)
                    for (int j = 0; j < OB; ++j) a[j][t] += d[j] * w[t / 3][t % 3];
                for (int dx = 0; dx < 3; ++dx) w[0][dx] = w[1][dx], w[1][dx] = w[2][dx];
            } else {
                for (int t = 0; t < 9; ++t) {
                    const vfloat x = load(src + q * lanes + off[t]);
                    for (int j = 0; j < OB; ++j) a[j][t] += d[j] * x;
                }
            }
        }
        for (int j = 0; j < OB; ++j)
            for (int t = 0; t < 9; ++t) {
                float* dst = acc + (((o0 + j) * cin + c) * 9 + t) * lanes;
                store(dst, load(dst) + a[j][t]);
            }
    }
}
inline void conv_backward_weight(const float* dout, const tile& to, index_t cout, const float* in, const tile& ti,
                                 index_t cin, float* acc) {
    // weight_grad_channels output channels at a time: with 32 registers, 2 x 9 accumulators stay
    // in registers and three channels (27) spill.
    auto run = [&](auto one_vector_rows) {
        constexpr bool R = decltype(one_vector_rows)::value;
        in_channel_blocks<weight_grad_channels>(
            cout, [&]<int OB>(index_t o) { conv_backward_weight_block<OB, R>(dout, to, in, ti, cin, o, acc); });
    };
    if constexpr (rolling_window_fits)
        if (ti.stride == lanes) return run(std::true_type{});
    run(std::false_type{});
}

/// Per-channel sum and sum of squares of the valid values of a tile (in double).
inline void channel_moments(const float* y, const tile& t, index_t channels, const std::vector<vfloat>& colmask,
                            double* sum, double* sum2) {
    const index_t vecs = t.stride / lanes;
    for (index_t c = 0; c < channels; ++c) {
        vfloat s{}, s2{};
        const float* p = y + c * t.plane + t.lead;
        for (index_t r = 0; r < t.h; ++r)
            for (index_t v = 0; v < vecs; ++v) {
                const vfloat x = load(p + r * t.stride + v * lanes) * colmask[static_cast<std::size_t>(v)];
                s += x;
                s2 += x * x;
            }
        sum[c] += lane_sum(s);
        sum2[c] += lane_sum(s2);
    }
}

/// Batch norm -> tanh -> dropout over a tile: y is the conv output; xhat (if not null) receives
/// the normalised values, zeroed at throw-away lanes; a receives the activation. The dropout hash
/// numbers element (c, r, x) of the tile base + c h stride + r stride + x (its memory offset), so a
/// recomputation draws the same mask. Numbering by (c, r, x) densely instead made every mask
/// independent of the stride, but lowered GraPL's BSDS500 val scores on all three seeds by about
/// 0.005 (docs/results.md, 2026-12-02), while this numbering reproduces them exactly; for 16 px
/// patches the stride is 16 floats at every vector width, so the masks agree across ISAs there.
struct bn_tanh_params {
    const float* mean;
    const float* invstd;
    const float* gamma;
    const float* beta;
    double p;
    std::uint32_t seed, threshold;
    bool train;
};
inline void bn_tanh_forward(const float* y, float* xhat, float* a, const tile& t, index_t channels,
                            const bn_tanh_params& bp, std::uint32_t base, const std::vector<vfloat>* colmask = nullptr,
                            float* keep = nullptr) {
    const index_t n = t.body(), vecs = t.stride / lanes;
    const float scale = static_cast<float>(1.0 / (1.0 - bp.p));
    for (index_t c = 0; c < channels; ++c) {
        const float* yc = y + c * t.plane + t.lead;
        float* ac = a + c * t.plane + t.lead;
        float* xc = xhat ? xhat + c * t.plane + t.lead : nullptr;
        const vfloat m = splat(bp.mean[c]), inv = splat(bp.invstd[c]), g = splat(bp.gamma[c]), b = splat(bp.beta[c]);
        if (xc) {
            for (index_t q = 0, v = 0; q < n; q += lanes, v = v + 1 == vecs ? 0 : v + 1) {
                const vfloat xh = (load(yc + q) - m) * inv;
                store(xc + q, xh * (*colmask)[static_cast<std::size_t>(v)]);
                store(ac + q, g * xh + b);
            }
        } else {
            for (index_t q = 0; q < n; q += lanes) store(ac + q, g * ((load(yc + q) - m) * inv) + b);
        }
    }
    // Eigen's vectorised rational tanh (the libm call was a fifth of a step), in one call over
    // all planes: per-plane calls cost more in set-up than in arithmetic. Padding between planes
    // holds zeros, and tanh(0) = 0 keeps it so.
    Eigen::Map<Eigen::ArrayXf> r(a + t.lead, (channels - 1) * t.plane + n);
    r = r.tanh();
    if (bp.train && bp.p > 0)
        for (index_t c = 0; c < channels; ++c) {
            float* ac = a + c * t.plane + t.lead;
            float* kc = keep ? keep + c * t.plane + t.lead : nullptr;
            for (index_t r = 0; r < t.h; ++r)
                for (index_t v = 0; v < vecs; ++v) {
                    const index_t q = r * t.stride + v * lanes;
                    const auto id = base + static_cast<std::uint32_t>(c * t.body() + q);
                    const vfloat k = select(keep_mask(id, bp.seed, bp.threshold), splat(scale));
                    if (kc) store(kc + q, k);
                    store(ac + q, load(ac + q) * k);
                }
        }
}

/// First backward pass through dropout and tanh: dz = d a/d z (z = gamma x_hat + beta) into dz,
/// from the incoming gradient g (zero at throw-away lanes) and the stored activation a; adds
/// sum(dz) and sum(dz x_hat) per channel. The dropout mask comes from `keep` (the multipliers
/// bn_tanh_forward wrote) when given, else from the hash again (same element numbering).
inline void bn_tanh_backward_dz(const float* g, const float* a, const float* xhat, float* dz, const tile& t,
                                index_t channels, const bn_tanh_params& bp, std::uint32_t base, double* sum_dz,
                                double* sum_dz_xhat, const float* keep = nullptr) {
    const index_t vecs = t.stride / lanes;
    const float scale = static_cast<float>(1.0 / (1.0 - bp.p)), unscale = static_cast<float>(1.0 - bp.p);
    const vfloat one = splat(1.0f);
    for (index_t c = 0; c < channels; ++c) {
        const std::size_t o = static_cast<std::size_t>(c * t.plane + t.lead);
        vfloat s{}, sx{};
        for (index_t r = 0; r < t.h; ++r)
            for (index_t v = 0; v < vecs; ++v) {
                const index_t q = r * t.stride + v * lanes;
                const vfloat tv = load(a + o + q) * unscale;  // tanh output where kept
                vfloat d;
                if (keep)
                    d = load(g + o + q) * load(keep + o + q) * (one - tv * tv);
                else {
                    d = load(g + o + q) * scale * (one - tv * tv);
                    if (bp.p > 0) {
                        const auto id = base + static_cast<std::uint32_t>(c * t.body() + q);
                        d = select(keep_mask(id, bp.seed, bp.threshold), d);
                    }
                }
                store(dz + o + q, d);
                s += d;
                sx += d * load(xhat + o + q);
            }
        sum_dz[c] += lane_sum(s);
        sum_dz_xhat[c] += lane_sum(sx);
    }
}

/// Second backward pass through batch norm: dy = gamma invstd (dz - mean(dz) - x_hat mean(dz x_hat))
/// at valid positions, zero elsewhere, into out (tile `to`, which may add lead rows); adds sum(dy).
inline void bn_backward_dy(const float* dz, const float* xhat, const tile& t, index_t channels, const float* coef,
                           const float* mean_dz, const float* mean_dz_xhat, const std::vector<vfloat>& colmask,
                           float* out, const tile& to, double* sum_dy) {
    const index_t vecs = t.stride / lanes;
    for (index_t c = 0; c < channels; ++c) {
        const float* z = dz + c * t.plane + t.lead;
        const float* xh = xhat + c * t.plane + t.lead;
        float* dst = out + c * to.plane + to.lead;
        const vfloat k = splat(coef[c]), mg = splat(mean_dz[c]), mgx = splat(mean_dz_xhat[c]);
        vfloat s{};
        for (index_t r = 0; r < t.h; ++r)
            for (index_t v = 0; v < vecs; ++v) {
                const index_t q = r * t.stride + v * lanes;
                const vfloat d = k * (load(z + q) - mg - load(xh + q) * mgx) * colmask[static_cast<std::size_t>(v)];
                store(dst + q, d);
                s += d;
            }
        sum_dy[c] += lane_sum(s);
    }
}

}  // namespace grapl_detail

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
        const auto t0 = grapl_detail::tile::make(band + p - 1, S), t1 = grapl_detail::tile::make(band + p - 3, S - 2),
                   t2 = grapl_detail::tile::make(band + p - 5, S - 4, 0, 0, hk), to = grapl_detail::tile::make(band, Ho);
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
            grapl_detail::conv_forward(x, g0, 3, m_w1.data(), m_b1.data(), F, 3, y1, g1);
            grapl_detail::bn_tanh_forward(y1, nullptr, a1, g1, F, m_eval1, 0);
            grapl_detail::conv_forward(a1, g1, F, m_w2.data(), m_b2.data(), Bt, 3, y2, g2);
            grapl_detail::bn_tanh_forward(y2, nullptr, a2, g2, Bt, m_eval2, 0);
            grapl_detail::conv_forward(a2, g2, Bt, m_wh.data(), m_bh.data(), K, hk, o, go);
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
    using vfloat = grapl_detail::vfloat;
    using tile = grapl_detail::tile;
    static constexpr index_t L = grapl_detail::lanes;

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
        m_mask1 = grapl_detail::column_masks(m_t1), m_mask2 = grapl_detail::column_masks(m_t2);
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

    grapl_detail::bn_tanh_params layer_params(int layer) const {
        const bool one = layer == 1;
        return {one ? m_mean1.data() : m_mean2.data(),
                one ? m_invstd1.data() : m_invstd2.data(),
                one ? m_g1.data() : m_g2.data(),
                one ? m_be1.data() : m_be2.data(),
                m_train ? m_cfg.dropout : 0.0,
                one ? m_seed1 : m_seed2,
                grapl_detail::keep_threshold(m_cfg.dropout),
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
        const auto thr = grapl_detail::keep_threshold(pin);
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
                            vfloat kept = grapl_detail::select(grapl_detail::keep_mask(base, m_seed_in, thr), val * scale);
                            for (index_t l = 0; l < L; ++l) val[l] = v + l < p ? kept[l] : 0.0f;
                        }
                        grapl_detail::store(row + v, val);
                    }
                }
            float* y1 = m_y1.data() + n * F * m_t1.plane;
            grapl_detail::conv_forward(xn, m_t0, 3, m_w1.data(), m_b1.data(), F, 3, y1, m_t1);
            if (m_train) grapl_detail::channel_moments(y1, m_t1, F, m_mask1, part + m_sum1, part + m_sum1 + F);
        }
    }

    void layer1_and_conv2(index_t j) {
        const index_t F = m_cfg.filters, Bt = m_cfg.bottleneck;
        const auto bp = m_train ? layer_params(1) : m_eval1;
        double* part = partials(j);
        float* a1 = m_job_a1.data() + j * F * m_t1.plane;
        for (index_t n = job_begin(j); n < job_end(j); ++n) {
            const float* y1 = m_y1.data() + n * F * m_t1.plane;
            grapl_detail::bn_tanh_forward(y1, nullptr, a1, m_t1, F, bp, static_cast<std::uint32_t>(n * F * m_t1.body()));
            float* y2 = m_y2.data() + n * Bt * m_t2.plane;
            grapl_detail::conv_forward(a1, m_t1, F, m_w2.data(), m_b2.data(), Bt, 3, y2, m_t2);
            if (m_train) grapl_detail::channel_moments(y2, m_t2, Bt, m_mask2, part + m_sum2, part + m_sum2 + Bt);
        }
    }

    void layer2_and_head(index_t j) {
        const index_t Bt = m_cfg.bottleneck, K = m_cfg.classes, N = m_n, body = m_t2.body();
        const auto bp = m_train ? layer_params(2) : m_eval2;
        for (index_t n = job_begin(j); n < job_end(j); ++n) {
            float* y2 = m_y2.data() + n * Bt * m_t2.plane;
            float* a2 = m_a2.data() + n * Bt * m_t2.plane;
            grapl_detail::bn_tanh_forward(y2, m_train ? y2 : nullptr, a2, m_t2, Bt, bp, static_cast<std::uint32_t>(n * Bt * m_t2.body()),
                                          &m_mask2);
            for (index_t k = 0; k < K; ++k) {
                vfloat acc{};
                for (index_t c = 0; c < Bt; ++c) {
                    const float* w = m_whp.data() + (k * Bt + c) * body;
                    const float* a = a2 + c * m_t2.plane;
                    for (index_t q = 0; q < body; q += L) acc += grapl_detail::load(w + q) * grapl_detail::load(a + q);
                }
                m_out[static_cast<std::size_t>(k * N + n)] = grapl_detail::lane_sum(acc) + m_bh.data()[k];
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
                        g += m_dlogits[k * N + n] * grapl_detail::load(m_whp.data() + (k * Bt + c) * body + q);
                    grapl_detail::store(d + q, g);
                }
            }
            for (index_t k = 0; k < K; ++k) {
                const float g = m_dlogits[k * N + n];
                if (g == 0.0f) continue;
                for (index_t c = 0; c < Bt; ++c) {
                    float* dst = acc + (k * Bt + c) * body;
                    const float* a = a2 + c * m_t2.plane;
                    for (index_t q = 0; q < body; q += L)
                        grapl_detail::store(dst + q, grapl_detail::load(dst + q) + g * grapl_detail::load(a + q));
                }
            }
            grapl_detail::bn_tanh_backward_dz(da2, a2, m_y2.data() + n * Bt * m_t2.plane, m_dz2.data() + n * Bt * m_t2.plane,
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
            grapl_detail::bn_tanh_forward(m_y1.data() + o1, xh1, a1, m_t1, F, bp, static_cast<std::uint32_t>(n * F * m_t1.body()),
                                          &m_mask1, bp.p > 0 ? keep1 : nullptr);
            grapl_detail::bn_backward_dy(m_dz2.data() + o2, m_y2.data() + o2, m_t2, Bt, coef.data(), mg.data(), mgx.data(),
                                         m_mask2, dy2, m_t2lead, part + offset_db2);
            grapl_detail::conv_backward_weight(dy2, m_t2lead, Bt, a1, m_t1, F, lane + m_lane_w2);
            grapl_detail::conv_backward_data(dy2, m_t2lead, Bt, m_w2.data(), F, da1, m_t1);
            grapl_detail::bn_tanh_backward_dz(da1, a1, xh1, dz1, m_t1, F, bp, static_cast<std::uint32_t>(n * F * m_t1.body()),
                                              part + offset_sum_dz1, part + offset_sum_dzx1, bp.p > 0 ? keep1 : nullptr);
            grapl_detail::conv_backward_weight(dz1, m_t1, F, x, m_t0, 3, lane + m_lane_w1);
            grapl_detail::conv_backward_weight(xh1, m_t1, F, x, m_t0, 3, lane + m_lane_xh1);
            grapl_detail::conv_backward_weight(m_valid1.data(), valid, 1, x, m_t0, 3, lane + m_lane_x1);
            for (index_t c = 0; c < F; ++c) {
                vfloat acc{};
                for (index_t q = 0; q < m_t1.body(); q += L) acc += grapl_detail::load(xh1 + c * m_t1.plane + q);
                part[offset_sum_xhat1 + c] += grapl_detail::lane_sum(acc);
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
    grapl_detail::bn_tanh_params m_eval1{}, m_eval2{};
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
