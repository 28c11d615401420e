// tessel/ops/bn_tanh_dropout.hpp: batch norm -> tanh -> dropout in one pass over direct-conv
// tiles (ops/conv2d_direct.hpp), forward and the two backward passes, with counter-based dropout.
//
// The unit after each hidden conv of GraPL's patch network. Fusing the three saves two passes over
// the activations per layer and lets a caller drop the normalised values and recompute them in
// cache (methods/grapl_cnn.hpp does for its wide first layer). Dropout masks are not drawn from a
// stream but are a hash of (seed, element number), so a recomputation draws the same mask, the
// order of work does not matter, and the mask is fixed by the seed. nn::bn_tanh_dropout
// (nn/bn_tanh_dropout.hpp) is the same unit as an nn::Layer on NCHW tensors. Host backends.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "tessel/ops/conv2d_direct.hpp"
#include "tessel/ops/vector_math.hpp"

namespace tessel::ops::direct {

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
    // One pass per vector: normalise, tanh (ops/vector_math.hpp) and dropout while the values are
    // in registers. Three passes (normalise, a tanh over the whole buffer, the masks) cost 2.5
    // times as much on a 512-patch GraPL step, most of it in memory traffic.
    const index_t vecs = t.stride / lanes;
    const float scale = static_cast<float>(1.0 / (1.0 - bp.p));
    const bool drop = bp.train && bp.p > 0;
    const vfloat vscale = splat(scale);
    for (index_t c = 0; c < channels; ++c) {
        const float* yc = y + c * t.plane + t.lead;
        float* ac = a + c * t.plane + t.lead;
        float* xc = xhat ? xhat + c * t.plane + t.lead : nullptr;
        float* kc = keep && drop ? keep + c * t.plane + t.lead : nullptr;
        const vfloat m = splat(bp.mean[c]), inv = splat(bp.invstd[c]), g = splat(bp.gamma[c]), b = splat(bp.beta[c]);
        for (index_t r = 0; r < t.h; ++r)
            for (index_t v = 0; v < vecs; ++v) {
                const index_t q = r * t.stride + v * lanes;
                const vfloat xh = (load(yc + q) - m) * inv;
                if (xc) store(xc + q, xh * (*colmask)[static_cast<std::size_t>(v)]);
                vfloat act = vmath::tanh(g * xh + b);
                if (drop) {
                    const auto id = base + static_cast<std::uint32_t>(c * t.body() + q);
                    const vfloat k = select(keep_mask(id, bp.seed, bp.threshold), vscale);
                    if (kc) store(kc + q, k);
                    act *= k;
                }
                store(ac + q, act);
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

}  // namespace tessel::ops::direct
