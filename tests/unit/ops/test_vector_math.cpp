// ops::vmath::tanh against double-precision tanh rounded to float. The full check over all 2^32
// inputs (run by hand, docs/nn_conv.md) found at most 6 ulp with fused multiply-adds and 7
// without; here a strided sample of every binade, the branch points (|x| = 9, where the result
// saturates) and the special values are checked, plus the array forms' partial last vector.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "tessel/ops/vector_math.hpp"

namespace ts = tessel;
namespace vm = tessel::ops::vmath;
using ts::index_t;

namespace {

// Position of a float on the number line in ulps (so the difference of two is their ulp distance).
std::int64_t ulp_position(float f) {
    const auto i = std::bit_cast<std::int32_t>(f);
    return i < 0 ? -static_cast<std::int64_t>(i & 0x7fffffff) : static_cast<std::int64_t>(i);
}

std::int64_t ulp_error(float x, float got) {
    const float exact = static_cast<float>(std::tanh(static_cast<double>(x)));
    return std::llabs(ulp_position(got) - ulp_position(exact));
}

float one_lane(float x) {
    float buf[ts::simd::lanes] = {};
    buf[0] = x;
    return vm::tanh(ts::simd::load(buf))[0];
}

}  // namespace

TEST_CASE("vmath::tanh is within 7 ulp of tanh over a sample of every float") {
    constexpr index_t L = ts::simd::lanes;
    float buf[L];
    std::int64_t worst = 0;
    float worst_x = 0;
    // 4099 is odd, so the sample walks through every mantissa residue and every binade of both signs.
    for (std::uint64_t u = 0; u < (std::uint64_t{1} << 32); u += 4099 * L) {
        for (index_t l = 0; l < L; ++l) buf[l] = std::bit_cast<float>(static_cast<std::uint32_t>(u + 4099 * l));
        const auto r = vm::tanh(ts::simd::load(buf));
        for (index_t l = 0; l < L; ++l) {
            if (std::isnan(buf[l])) {
                CHECK(std::isnan(r[l]));
                continue;
            }
            CHECK(std::fabs(r[l]) <= 1.0f);
            const auto e = ulp_error(buf[l], r[l]);
            if (e > worst) worst = e, worst_x = buf[l];
        }
    }
    INFO("worst at x = " << worst_x);
    CHECK(worst <= 7);
}

TEST_CASE("vmath::tanh near 0, around the saturation point and at special values") {
    // Dense walk over [0, 12] in steps of 2^-12: covers the whole curved part.
    std::int64_t worst = 0;
    for (int i = 0; i <= 12 * 4096; ++i) {
        const float x = static_cast<float>(i) / 4096.0f;
        worst = std::max(worst, ulp_error(x, one_lane(x)));
        CHECK(one_lane(-x) == -one_lane(x));  // odd bit for bit
    }
    CHECK(worst <= 7);
    // Tiny arguments give x itself (tanh x = x - x^3/3 rounds to x).
    for (float x : {1e-30f, 1e-10f, 1e-5f, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min()})
        CHECK(one_lane(x) == x);
    CHECK(one_lane(9.0f) == 1.0f);
    CHECK(one_lane(8.9f) <= 1.0f);
    CHECK(one_lane(-9.0f) == -1.0f);
    CHECK(one_lane(1e30f) == 1.0f);
    CHECK(one_lane(std::numeric_limits<float>::infinity()) == 1.0f);
    CHECK(one_lane(-std::numeric_limits<float>::infinity()) == -1.0f);
    CHECK(std::isnan(one_lane(std::numeric_limits<float>::quiet_NaN())));
    const float negative_zero = one_lane(-0.0f);
    CHECK(negative_zero == 0.0f);
    CHECK(std::signbit(negative_zero));
    CHECK_FALSE(std::signbit(one_lane(0.0f)));
}

TEST_CASE("vmath::tanh on arrays: every length, the partial last vector equal to the vector result") {
    for (index_t n : {index_t{1}, ts::simd::lanes - 1, ts::simd::lanes, ts::simd::lanes + 1, 3 * ts::simd::lanes + 2, index_t{1000}}) {
        std::vector<float> in(static_cast<std::size_t>(n) + 1), out(static_cast<std::size_t>(n) + 1, 42.0f);
        for (index_t i = 0; i < n; ++i) in[static_cast<std::size_t>(i)] = 0.37f * static_cast<float>(i) - 3.1f;
        vm::tanh(in.data(), out.data(), n);
        for (index_t i = 0; i < n; ++i) CHECK(out[static_cast<std::size_t>(i)] == one_lane(in[static_cast<std::size_t>(i)]));
        CHECK(out[static_cast<std::size_t>(n)] == 42.0f);  // nothing written past n
        vm::tanh_inplace(in.data(), n);
        for (index_t i = 0; i < n; ++i) CHECK(in[static_cast<std::size_t>(i)] == out[static_cast<std::size_t>(i)]);
    }
}
