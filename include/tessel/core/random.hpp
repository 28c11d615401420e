// tessel/core/random.hpp: tessel's seeded random number generator.
//
// Every random choice in tessel (weight initialisation, dropout masks, sampling) draws from a
// tessel::rng passed in explicitly, never from global state. The generator (xoshiro256**, seeded
// through splitmix64) and the conversions to floats are defined here bit for bit, so a seed gives
// the same numbers on every compiler and platform; std::uniform_real_distribution would not.
#pragma once
#include <cmath>
#include <cstdint>
#include <numbers>

namespace tessel {

/// A seed, as a distinct type so that it is never confused with a count.
struct seed {
    std::uint64_t value = 0;
};

namespace detail {
__extension__ using uint128 = unsigned __int128;
}

class rng {
public:
    explicit rng(std::uint64_t s = 0) noexcept { reseed(s); }
    explicit rng(seed s) noexcept { reseed(s.value); }

    void reseed(std::uint64_t s) noexcept {
        for (auto& w : m_state) {
            s += 0x9E3779B97F4A7C15ull;
            std::uint64_t z = s;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            w = z ^ (z >> 31);
        }
        m_has_spare = false;
    }

    /// The next 64 random bits.
    std::uint64_t next() noexcept {
        const std::uint64_t result = rotl(m_state[1] * 5, 7) * 9;
        const std::uint64_t t = m_state[1] << 17;
        m_state[2] ^= m_state[0];
        m_state[3] ^= m_state[1];
        m_state[1] ^= m_state[2];
        m_state[0] ^= m_state[3];
        m_state[2] ^= t;
        m_state[3] = rotl(m_state[3], 45);
        return result;
    }
    /// Uniform in [0, 1) with 53 random bits.
    double uniform01() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    /// Uniform in [lo, hi).
    double uniform(double lo, double hi) noexcept { return lo + (hi - lo) * uniform01(); }
    /// Uniform integer in [0, n), n > 0 (Lemire's unbiased method).
    std::uint64_t below(std::uint64_t n) noexcept {
        if (n == 0) return 0;
        std::uint64_t x = next();
        detail::uint128 m = static_cast<detail::uint128>(x) * n;
        auto l = static_cast<std::uint64_t>(m);
        if (l < n) {
            const std::uint64_t t = (0 - n) % n;
            while (l < t) {
                x = next();
                m = static_cast<detail::uint128>(x) * n;
                l = static_cast<std::uint64_t>(m);
            }
        }
        return static_cast<std::uint64_t>(m >> 64);
    }
    /// Standard normal (Box-Muller, pairs cached).
    double normal() noexcept {
        if (m_has_spare) {
            m_has_spare = false;
            return m_spare;
        }
        double u1 = 0;
        do {
            u1 = uniform01();
        } while (u1 <= 0.0);
        const double u2 = uniform01();
        const double r = std::sqrt(-2.0 * std::log(u1));
        m_spare = r * std::sin(2.0 * std::numbers::pi * u2);
        m_has_spare = true;
        return r * std::cos(2.0 * std::numbers::pi * u2);
    }
    /// An independent generator derived from this one (for per-thread or per-stage streams).
    rng split() noexcept { return rng(next()); }

private:
    static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
    std::uint64_t m_state[4]{};
    double m_spare = 0;
    bool m_has_spare = false;
};

}  // namespace tessel
