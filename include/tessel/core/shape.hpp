// tessel/core/shape.hpp: tensor shapes (rank 0..6, row-major), with printing for error messages.
//
// A shape is a small value type usable on host and device. Tensors in tessel are row-major;
// layers use NCHW (batch, channels, height, width).
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "tessel/config.hpp"
#include "tessel/core/error.hpp"

namespace tessel {

using index_t = std::int64_t;  ///< element counts and offsets: images x channels can exceed 2^31
using label_t = std::int32_t;  ///< segment labels

inline constexpr int max_rank = 6;

/// The extents of a row-major tensor of rank <= max_rank.
struct shape {
    index_t dims[max_rank]{};  // a C array: usable in device code without relaxed constexpr
    int rank = 0;

    constexpr shape() = default;
    constexpr shape(std::initializer_list<index_t> d) {
        if (d.size() > static_cast<std::size_t>(max_rank))
            throw error("tessel::shape", "rank " + std::to_string(d.size()) + " exceeds the maximum of 6");
        for (index_t v : d) {
            if (v < 0) throw error("tessel::shape", "negative extent " + std::to_string(v));
            dims[rank++] = v;
        }
    }
    TESSEL_HD constexpr index_t operator[](int i) const { return dims[i]; }
    TESSEL_HD constexpr index_t& operator[](int i) { return dims[i]; }
    /// Number of elements (1 for rank 0).
    TESSEL_HD constexpr index_t numel() const {
        index_t n = 1;
        for (int i = 0; i < rank; ++i) n *= dims[i];
        return n;
    }
    friend constexpr bool operator==(const shape& a, const shape& b) {
        if (a.rank != b.rank) return false;
        for (int i = 0; i < a.rank; ++i)
            if (a.dims[i] != b.dims[i]) return false;
        return true;
    }
    /// "[1,3,8,8]", for error messages.
    [[nodiscard]] std::string str() const {
        std::string s = "[";
        for (int i = 0; i < rank; ++i) {
            if (i) s += ',';
            s += std::to_string(dims[i]);
        }
        return s + "]";
    }
};

inline std::ostream& operator<<(std::ostream& os, const shape& s) { return os << s.str(); }

}  // namespace tessel
