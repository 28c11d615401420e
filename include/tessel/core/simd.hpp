// tessel/core/simd.hpp: the float and uint32 vector types that tessel's hand-written host kernels
// (methods/grapl_cnn.hpp) compute with, sized at compile time for the target the consumer builds
// for: 16 lanes with AVX-512F, 8 with AVX/AVX2, 4 with SSE2, ARM NEON or any other target. Besides
// the width, kernels need to know how many vector registers exist to size their register blocks
// (vector_registers: 32 on AVX-512 and AArch64, 16 on x86-64 without AVX-512).
//
// The types are GNU vector extensions (g++ and clang lower them to the widest instructions the
// target allows, and to scalar code where it has none), not intrinsics, so the same kernel source
// builds for every target; docs/design.md records why not xsimd. The library is header-only, so
// the consumer's -march (or -mavx2, -mcpu, ...) decides the width; translation units built for
// different targets get different types, kept apart by an inline namespace named after the width.
// Host code: nvcc accepts the header in both of its passes (its front end knows GNU vectors), so a
// .cu file may include it and call it from host functions.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include "tessel/core/shape.hpp"

#if defined(__AVX512F__)
#define TESSEL_SIMD_BYTES 64
#define TESSEL_SIMD_REGISTERS 32
#elif defined(__AVX__)
#define TESSEL_SIMD_BYTES 32
#define TESSEL_SIMD_REGISTERS 16
#elif defined(__SSE2__) || defined(__ARM_NEON) || defined(__ARM_NEON__)
#define TESSEL_SIMD_BYTES 16
#if defined(__aarch64__)
#define TESSEL_SIMD_REGISTERS 32
#elif defined(__x86_64__) || defined(__arm__)
#define TESSEL_SIMD_REGISTERS 16
#else  // 32-bit x86: xmm0-7
#define TESSEL_SIMD_REGISTERS 8
#endif
#else
// No known vector unit: 4 lanes still compile to straight-line scalar code that g++ and clang
// schedule well, and keep every kernel's tails the same shape as on SSE2.
#define TESSEL_SIMD_BYTES 16
#define TESSEL_SIMD_REGISTERS 16
#endif

// Full unrolling of the short fixed-count loops over a register block (rows x channels of
// accumulators). Without it g++ -O2 keeps them as loops (it unrolls them only with -fpeel-loops,
// which -O3 turns on) and the accumulator arrays live in memory: GraPL's CNN then runs 2x slower
// at -O2 than at -O3. Empty for nvcc, whose host pass does not need it and whose front end would
// warn about the GCC spelling.
#if defined(__CUDACC__)
#define TESSEL_UNROLL
#elif defined(__clang__)
#define TESSEL_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define TESSEL_UNROLL _Pragma("GCC unroll 16")
#else
#define TESSEL_UNROLL
#endif

#define TESSEL_SIMD_CONCAT_(a, b) a##b
#define TESSEL_SIMD_CONCAT(a, b) TESSEL_SIMD_CONCAT_(a, b)

namespace tessel::simd {

inline namespace TESSEL_SIMD_CONCAT(bytes, TESSEL_SIMD_BYTES) {

/// Floats per vector.
inline constexpr index_t lanes = TESSEL_SIMD_BYTES / 4;
/// Architectural vector registers of the target, for sizing register blocks.
inline constexpr int vector_registers = TESSEL_SIMD_REGISTERS;

using vfloat = float __attribute__((vector_size(TESSEL_SIMD_BYTES)));
using vuint = std::uint32_t __attribute__((vector_size(TESSEL_SIMD_BYTES)));

/// Unaligned load / store of `lanes` floats (memcpy compiles to one vector move).
inline vfloat load(const float* p) noexcept {
    vfloat v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void store(float* p, vfloat v) noexcept { std::memcpy(p, &v, sizeof v); }
inline vuint load(const std::uint32_t* p) noexcept {
    vuint v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void store(std::uint32_t* p, vuint v) noexcept { std::memcpy(p, &v, sizeof v); }

inline vfloat splat(float s) noexcept { return vfloat{} + s; }
inline vuint splat(std::uint32_t s) noexcept { return vuint{} + s; }

/// Sum of the lanes, in lane order (so a result does not depend on how the compiler reduces).
inline float lane_sum(vfloat v) noexcept {
    float s = 0;
    for (index_t i = 0; i < lanes; ++i) s += v[i];
    return s;
}

/// {0, 1, ..., lanes - 1}.
inline vuint lane_index() noexcept {
    vuint v{};
    for (index_t i = 0; i < lanes; ++i) v[i] = static_cast<std::uint32_t>(i);
    return v;
}

/// Lane-wise mask ? if_set : otherwise, for masks whose lanes are all ones or all zeros (what a
/// vector comparison yields).
inline vfloat select(vuint mask, vfloat if_set, vfloat otherwise) noexcept {
    const vuint a = std::bit_cast<vuint>(if_set), b = std::bit_cast<vuint>(otherwise);
    return std::bit_cast<vfloat>((a & mask) | (b & ~mask));
}
/// All-ones lanes where a >= b (unsigned).
inline vuint greater_equal(vuint a, vuint b) noexcept { return std::bit_cast<vuint>(a >= b); }

}  // namespace TESSEL_SIMD_CONCAT(bytes, TESSEL_SIMD_BYTES)

}  // namespace tessel::simd
