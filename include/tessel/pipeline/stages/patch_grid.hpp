// tessel/pipeline/stages/patch_grid.hpp: a square image cut into a d x d grid of non-overlapping
// p x p patches, the sites of patch-based methods (GraPL, METHODS.md 5.2).
//
// Patches are numbered row-major, i = row * d + col. The helpers gather patches into an NCHW
// batch, count the labels of a pixel map per patch (soft or majority patch labels) and average the
// channels of each patch (GraPL's colour affinities). Images are planar [C, S, S] host buffers.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "tessel/backend/parallel.hpp"
#include "tessel/core/image.hpp"

namespace tessel::stages {

namespace detail {
// Copies patch idx[b] of a planar [C, S, S] image into slot b of an [n, C, p, p] batch.
template <class T>
struct gather_patches_fn {
    const T* image;
    const index_t* idx;
    T* out;
    index_t channels, side, grid, patch;
    TESSEL_HD void operator()(index_t b) const {
        const index_t i = idx[b], r0 = (i / grid) * patch, c0 = (i % grid) * patch;
        T* dst = out + b * channels * patch * patch;
        for (index_t c = 0; c < channels; ++c)
            for (index_t y = 0; y < patch; ++y) {
                const T* src = image + (c * side + r0 + y) * side + c0;
                for (index_t x = 0; x < patch; ++x) *dst++ = src[x];
            }
    }
};
}  // namespace detail

struct patch_grid {
    index_t grid = 32;   ///< d: patches per side
    index_t patch = 16;  ///< p: pixels per patch side

    [[nodiscard]] index_t side() const noexcept { return grid * patch; }
    [[nodiscard]] index_t count() const noexcept { return grid * grid; }

    /// Gathers the patches `idx` of a planar [C, S, S] image into out ([n, C, p, p], resized).
    template <Backend B, class T>
    void gather(B backend, std::span<const T> planar, index_t channels, std::span<const index_t> idx,
                std::vector<T>& out) const {
        expects(static_cast<index_t>(planar.size()) == channels * side() * side(), "tessel::stages::patch_grid::gather",
                "image holds ", planar.size(), " values, expected ", channels, " x ", side(), " x ", side());
        out.resize(idx.size() * static_cast<std::size_t>(channels * patch * patch));
        parallel_for(backend, static_cast<index_t>(idx.size()),
                     detail::gather_patches_fn<T>{planar.data(), idx.data(), out.data(), channels, side(), grid, patch});
    }

    /// Fraction of each patch's pixels carrying label k: a count() x K row-major array. Labels
    /// must lie in [0, K). Rows sum to 1 (the paper's soft patch labels).
    [[nodiscard]] std::vector<float> label_fractions(const label_map& labels, index_t K) const {
        constexpr auto where = "tessel::stages::patch_grid::label_fractions";
        expects(labels.width() == side() && labels.height() == side(), where, "label map is ", labels.width(), "x",
                labels.height(), ", the grid covers ", side(), "x", side());
        std::vector<float> f(static_cast<std::size_t>(count() * K), 0.0f);
        const float unit = 1.0f / static_cast<float>(patch * patch);
        for (index_t y = 0; y < side(); ++y)
            for (index_t x = 0; x < side(); ++x) {
                const label_t l = labels(x, y);
                expects(l >= 0 && l < K, where, "label ", l, " at (", x, ", ", y, ") is outside [0, ", K, ")");
                f[static_cast<std::size_t>(((y / patch) * grid + x / patch) * K + l)] += unit;
            }
        return f;
    }

    /// Per-patch channel means of a planar [C, S, S] image: count() x C, row-major.
    [[nodiscard]] std::vector<double> channel_means(std::span<const float> planar, index_t channels) const {
        std::vector<double> m(static_cast<std::size_t>(count() * channels), 0.0);
        const double unit = 1.0 / static_cast<double>(patch * patch);
        for (index_t c = 0; c < channels; ++c)
            for (index_t y = 0; y < side(); ++y)
                for (index_t x = 0; x < side(); ++x)
                    m[static_cast<std::size_t>(((y / patch) * grid + x / patch) * channels + c)] +=
                        unit * static_cast<double>(planar[static_cast<std::size_t>((c * side() + y) * side() + x)]);
        return m;
    }
};

}  // namespace tessel::stages
