// tessel/ops/vector_math.hpp: elementary functions on the target's float vectors (core/simd.hpp),
// for host kernels that apply them inside a fused pass instead of calling libm per element.
//
// glibc's tanhf is a scalar call (a fifth of a GraPL step and 15 % of a PiCNet iteration when
// called per element), and Eigen's vectorised tanh works only on Eigen arrays, i.e. as a separate
// pass over memory. These work on simd::vfloat, so a kernel can normalise, activate and drop out
// one vector while it is in registers (ops/bn_tanh_dropout.hpp), and on float arrays for layers
// that activate a whole tensor (nn::tanh on host backends).
//
// Accuracy against double-precision tanh rounded to float, over all 2^32 inputs: at most 6 ulp
// with fused multiply-adds (AVX2, AVX-512, NEON) and 7 without (SSE2), 97 % of inputs exact and
// 99.8 % within 1 ulp; Eigen's tanh is within 5. Odd bit for bit, +-0 kept, +-inf to +-1, NaN to
// NaN. tests/unit/ops/test_vector_math.cpp checks a sample of every range and the special values.
// The same code runs at every vector width, so results agree across targets up to the compiler's
// contraction of a * b + c into fused multiply-adds.
#pragma once
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>

#include "tessel/core/simd.hpp"

namespace tessel::ops::vmath {

using simd::vfloat;
using simd::vuint;

/// tanh on every lane: x P(z) / Q(z), z = x^2, with |x| capped at 9 (tanh is 1 in float from
/// there on), P of degree 6 and Q of degree 4, fitted for equal relative error on [0, 9]
/// (tools/fit_tanh.py; 9e-11 in exact arithmetic, so float rounding is all that is left). Written
/// as (c + c z P'(z)) / (1 + z Q'(z)) so the leading terms are exact. Both factors work on |x| and
/// the sign is put back last: the result is odd bit for bit, tanh(-0) = -0, and it never leaves
/// [-1, 1]. NaN stays NaN (every comparison with it is false).
inline vfloat tanh(vfloat x) noexcept {
    const vuint sign_bit = simd::splat(0x80000000u);
    const vuint bits = std::bit_cast<vuint>(x);
    const vfloat ax = std::bit_cast<vfloat>(bits & ~sign_bit);
    const vfloat one = simd::splat(1.0f);
    const vfloat c = ax > 9.0f ? simd::splat(9.0f) : ax;
    const vfloat z = c * c;
    vfloat p = simd::splat(2.5900766387e-14f);
    p = p * z + -3.1836455682e-11f;
    p = p * z + 4.5808613089e-08f;
    p = p * z + 3.3028181697e-05f;
    p = p * z + 4.0953934602e-03f;
    p = p * z + 1.3856789755e-01f;
    vfloat q = simd::splat(1.6718399946e-06f);
    q = q * z + 4.3527416096e-04f;
    q = q * z + 2.8062471565e-02f;
    q = q * z + 4.7190123026e-01f;
    vfloat r = (c + (c * z) * p) / (one + z * q);
    r = ax >= 9.0f ? one : r;
    r = r > one ? one : r;
    return std::bit_cast<vfloat>(std::bit_cast<vuint>(r) | (bits & sign_bit));
}

/// tanh in place on n floats; a partial last vector goes through a zero-padded copy, so every
/// element gets exactly the vector result.
inline void tanh_inplace(float* a, index_t n) noexcept {
    constexpr index_t L = simd::lanes;
    index_t i = 0;
    for (; i + L <= n; i += L) simd::store(a + i, tanh(simd::load(a + i)));
    if (i < n) {
        float buf[L] = {};
        std::memcpy(buf, a + i, static_cast<std::size_t>(n - i) * sizeof(float));
        simd::store(buf, tanh(simd::load(buf)));
        std::memcpy(a + i, buf, static_cast<std::size_t>(n - i) * sizeof(float));
    }
}

/// out[i] = tanh(in[i]) for n floats (in and out may be the same array).
inline void tanh(const float* in, float* out, index_t n) noexcept {
    if (in != out) std::copy(in, in + n, out);
    tanh_inplace(out, n);
}

}  // namespace tessel::ops::vmath
