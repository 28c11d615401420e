// tessel/superpixel/slic.hpp: SLIC superpixels (Achanta et al., "SLIC Superpixels Compared to
// State-of-the-Art Superpixel Methods", TPAMI 2012), with the semantics of scikit-image's
// skimage.segmentation.slic (0.19 - 0.21), so that methods written against skimage give the same
// segment counts (METHODS.md section 1.3).
//
// tessel::slic is a spec: a `config` aggregate plus a call operator taking a backend tag and an
// image; slic::bind<B> is the stateful form that keeps its buffers between calls. The assignment
// and centre-update loops are TESSEL_HD functors run through tessel::parallel_for on cpu_serial,
// cpu_omp and (from .cu files) cuda; connectivity enforcement runs on the host (connectivity.hpp).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>
#include <utility>
#include <vector>

#include "tessel/backend/parallel.hpp"
#include "tessel/core/error.hpp"
#include "tessel/core/image.hpp"
#include "tessel/core/tensor.hpp"
#include "tessel/ops/color.hpp"
#include "tessel/ops/gaussian.hpp"
#include "tessel/superpixel/concepts.hpp"
#include "tessel/superpixel/connectivity.hpp"
#include "tessel/superpixel/detail/transfer.hpp"

namespace tessel {

/// The regular seed grid of skimage's regular_grid() applied to the array shape (1, H, W).
/// Seeds are at (start_y + i * step_y, start_x + j * step_x), i < rows, j < cols, numbered
/// k = i * cols + j (raster order).
struct slic_grid {
    index_t start_y = 0, step_y = 1, start_x = 0, step_x = 1;
    index_t rows = 0, cols = 0;
    [[nodiscard]] index_t num_seeds() const noexcept { return rows * cols; }
    /// S of the SLIC distance: the largest step, the depth axis counting as 1.
    [[nodiscard]] index_t max_step() const noexcept { return std::max<index_t>({index_t{1}, step_y, step_x}); }
};

/// skimage's regular_grid((1, H, W), n): the float step is (H*W/n)^(1/3) over the three axes;
/// axes shorter than the step are fixed at their length and the step recomputed over the others
/// (so in practice s = (H*W/n)^(1/2)); starts are floor(s/2) and steps round-half-even(s). When
/// n >= H*W every pixel is a seed.
/// @pre H, W >= 1; n >= 1.
inline slic_grid slic_seed_grid(index_t height, index_t width, index_t n) {
    expects(height >= 1 && width >= 1, "tessel::slic_seed_grid", "image size must be positive, got ", width, "x", height);
    expects(n >= 1, "tessel::slic_seed_grid", "number of seeds must be positive, got ", n);
    slic_grid g;
    const double space = static_cast<double>(height) * static_cast<double>(width);
    if (space <= static_cast<double>(n)) {
        g.rows = height;
        g.cols = width;
        return g;
    }
    const index_t dims[3] = {1, height, width};
    // Stable argsort of the three extents (numpy sorts 3 elements by insertion: stable).
    int order[3] = {0, 1, 2};
    std::stable_sort(order, order + 3, [&](int a, int b) { return dims[a] < dims[b]; });
    double sorted[3], step[3];
    for (int i = 0; i < 3; ++i) sorted[i] = static_cast<double>(dims[order[i]]);
    const double nd = static_cast<double>(n);
    for (double& s : step) s = std::pow(space / nd, 1.0 / 3.0);
    auto all_fit = [&] { return sorted[0] >= step[0] && sorted[1] >= step[1] && sorted[2] >= step[2]; };
    if (!all_fit()) {
        for (int dim = 0; dim < 2; ++dim) {
            step[dim] = sorted[dim];
            double rest = 1;
            for (int j = dim + 1; j < 3; ++j) rest *= sorted[j];
            for (int j = dim + 1; j < 3; ++j) step[j] = std::pow(rest / nd, 1.0 / static_cast<double>(3 - dim - 1));
            if (all_fit()) break;
        }
    }
    index_t starts[3], steps[3];
    for (int i = 0; i < 3; ++i) {
        starts[order[i]] = static_cast<index_t>(std::floor(step[i] / 2.0));
        steps[order[i]] = static_cast<index_t>(std::nearbyint(step[i]));  // half to even, as np.round
    }
    g.start_y = starts[1];
    g.step_y = std::max<index_t>(steps[1], 1);
    g.start_x = starts[2];
    g.step_x = std::max<index_t>(steps[2], 1);
    g.rows = (height - g.start_y + g.step_y - 1) / g.step_y;
    g.cols = (width - g.start_x + g.step_x - 1) / g.step_x;
    return g;
}

/// Upper bound on the channels of a SLIC input (the update keeps per-channel sums in registers).
inline constexpr index_t slic_max_channels = 8;

namespace detail {

/// Geometry shared by the SLIC functors.
struct slic_geometry {
    index_t height, width, channels;
    slic_grid grid;
    index_t win_y, win_x;  // the search window is +-2 win around a centre
    // Assignment tiles: blocks of whole grid cells, at least slic_min_tile pixels on a side, so
    // that the per-candidate bookkeeping is shared by enough pixels.
    index_t tile_h, tile_w, tile_rows, tile_cols;
};

inline constexpr index_t slic_min_tile = 24;

inline slic_geometry make_slic_geometry(index_t H, index_t W, index_t C, const slic_grid& grid, const slic_grid& window) {
    const index_t my = std::max<index_t>(1, (slic_min_tile + grid.step_y - 1) / grid.step_y);
    const index_t mx = std::max<index_t>(1, (slic_min_tile + grid.step_x - 1) / grid.step_x);
    return {H, W, C, grid, window.step_y, window.step_x, my * grid.step_y, mx * grid.step_x,
            (grid.rows + my - 1) / my, (grid.cols + mx - 1) / mx};
}

/// Row coordinate marking a centre whose cluster emptied: its window is empty from then on.
inline constexpr double slic_retired = -1.0e30;

/// skimage's search window of a centre: [floor(max(c - 2w, 0)), floor(min(c + 2w + 1, n))).
TESSEL_HD inline void slic_window(double c, index_t w, index_t n, index_t& lo, index_t& hi) {
    if (c == slic_retired) {
        lo = hi = 0;
        return;
    }
    const double a = c - 2.0 * static_cast<double>(w);
    const double b = c + 2.0 * static_cast<double>(w) + 1.0;
    lo = static_cast<index_t>(a > 0.0 ? a : 0.0);
    hi = static_cast<index_t>(b < static_cast<double>(n) ? b : static_cast<double>(n));
}

/// The search window of centre c (row, column first) clipped to the tile rows [y0, y1) and
/// columns [x0, x1): false when they do not meet.
TESSEL_HD inline bool slic_tile_window(const double* c, index_t win_y, index_t win_x, index_t H, index_t W, index_t y0,
                                       index_t y1, index_t x0, index_t x1, index_t& wy0, index_t& wy1, index_t& wx0,
                                       index_t& wx1) {
    slic_window(c[0], win_y, H, wy0, wy1);
    slic_window(c[1], win_x, W, wx0, wx1);
    wy0 = wy0 > y0 ? wy0 : y0;
    wy1 = wy1 < y1 ? wy1 : y1;
    wx0 = wx0 > x0 ? wx0 : x0;
    wx1 = wx1 < x1 ? wx1 : x1;
    return wy0 < wy1 && wx0 < wx1;
}

/// Rows [lo, hi) of tile i of an axis cut into `count` tiles of `size` pixels (last one longer).
TESSEL_HD inline void slic_tile(index_t i, index_t count, index_t size, index_t n, index_t& lo, index_t& hi) {
    lo = i * size;
    hi = i + 1 == count ? n : lo + size;
}

/// Seed indices j in [jlo, jhi] whose centres may reach [lo, hi), given that no centre has moved
/// more than `drift` from its seed: a conservative bound, the exact window is clipped later.
TESSEL_HD inline void slic_candidates(index_t lo, index_t hi, double drift, index_t w, index_t start, index_t step,
                                      index_t count, index_t& jlo, index_t& jhi) {
    const double reach = drift + 2.0 * static_cast<double>(w) + 1.0;
    const double s = static_cast<double>(step);
    const double a = ::floor((static_cast<double>(lo) - reach - static_cast<double>(start)) / s);
    const double b = ::ceil((static_cast<double>(hi) + reach - static_cast<double>(start)) / s);
    jlo = a < 0.0 ? 0 : static_cast<index_t>(a);
    jhi = b > static_cast<double>(count - 1) ? count - 1 : static_cast<index_t>(b);
}

/// Assignment step for one tile of the seed grid: every pixel of the tile takes the centre of
/// smallest distance among those whose window contains it, ties going to the smaller index (the
/// result of skimage's loop over centres in increasing order with a strict comparison). A tile
/// is owned by one call, so tiles run concurrently without races, and the result does not
/// depend on the order in which tiles run.
/// NC is the channel count, or 0 for a run-time count.
template <int NC>
struct slic_assign_functor {
    const float* features;   // planar: channel c of pixel p at c * H * W + p
    const double* centres;   // k * (2 + C): y, x, then C colour means
    const float* max_color;  // SLIC-zero colour normalisers, or nullptr
    float* dist;
    label_t* labels;
    slic_geometry geo;
    double drift_y, drift_x;
    float spatial_weight;  // 1 / S^2
    double spacing_y;      // skimage's spacing: weights of the row and column offsets
    float spacing_x;

    TESSEL_HD void operator()(index_t tile) const {
        const index_t C = NC > 0 ? NC : geo.channels;
        const index_t H = geo.height, W = geo.width, HW = H * W;
        const slic_grid& g = geo.grid;
        const index_t ty = tile / geo.tile_cols, tx = tile % geo.tile_cols;
        index_t y0, y1, x0, x1;
        slic_tile(ty, geo.tile_rows, geo.tile_h, H, y0, y1);
        slic_tile(tx, geo.tile_cols, geo.tile_w, W, x0, x1);
        for (index_t y = y0; y < y1; ++y)
            for (index_t x = x0; x < x1; ++x) dist[y * W + x] = 3.0e38f;
        index_t jy0, jy1, jx0, jx1;
        slic_candidates(y0, y1, drift_y, geo.win_y, g.start_y, g.step_y, g.rows, jy0, jy1);
        slic_candidates(x0, x1, drift_x, geo.win_x, g.start_x, g.step_x, g.cols, jx0, jx1);
        for (index_t jy = jy0; jy <= jy1; ++jy)
            for (index_t jx = jx0; jx <= jx1; ++jx) {
                const index_t k = jy * g.cols + jx;
                const double* c = centres + k * (2 + C);
                index_t wy0, wy1, wx0, wx1;
                if (!slic_tile_window(c, geo.win_y, geo.win_x, H, W, y0, y1, x0, x1, wy0, wy1, wx0, wx1)) continue;
                const float cx = static_cast<float>(c[1]);
                const float color_scale = max_color ? 1.0f / max_color[k] : 1.0f;
                float mean[NC > 0 ? NC : slic_max_channels];
                for (index_t ch = 0; ch < C; ++ch) mean[ch] = static_cast<float>(c[2 + ch]);
                const auto kl = static_cast<label_t>(k);
                const int n = static_cast<int>(wx1 - wx0);
                const float dx0 = cx - static_cast<float>(wx0);
                for (index_t y = wy0; y < wy1; ++y) {
                    const double ddy = spacing_y * (c[0] - static_cast<double>(y));
                    const float dy2 = static_cast<float>(ddy * ddy);
                    float* TESSEL_RESTRICT drow = dist + y * W + wx0;
                    label_t* TESSEL_RESTRICT lrow = labels + y * W + wx0;
                    const float* TESSEL_RESTRICT frow = features + y * W + wx0;
                    // int counter and float dx: keeps the loop vectorisable (no int64 -> float).
                    for (int i = 0; i < n; ++i) {
                        const float dx = spacing_x * (dx0 - static_cast<float>(i));
                        float color = 0.0f;
                        for (index_t ch = 0; ch < C; ++ch) {
                            const float d = frow[ch * HW + i] - mean[ch];
                            color += d * d;
                        }
                        const float d = (dy2 + dx * dx) * spatial_weight + color * color_scale;
                        const float old = drow[i];
                        const label_t old_label = lrow[i];
                        const bool take = (d < old) | ((d == old) & (kl < old_label));  // branch-free
                        drow[i] = take ? d : old;
                        lrow[i] = take ? kl : old_label;
                    }
                }
            }
    }
};

/// Update step for one centre: the mean position and colour of the pixels assigned to it (all of
/// which lie in its search window), summed in raster order. A cluster that lost all its pixels is
/// retired (skimage divides 0 by 0 there, and the NaN centre never takes a pixel again).
/// With SLIC-zero it then raises the centre's colour normaliser to the largest colour distance
/// of its pixels (skimage's running maximum).
template <int NC>
struct slic_update_functor {
    const float* features;
    const double* centres;
    double* new_centres;
    float* max_color;  // nullptr unless SLIC-zero
    const label_t* labels;
    slic_geometry geo;

    TESSEL_HD void operator()(index_t k) const {
        const index_t C = NC > 0 ? NC : geo.channels;
        const index_t H = geo.height, W = geo.width, HW = H * W;
        const double* c = centres + k * (2 + C);
        double* out = new_centres + k * (2 + C);
        index_t wy0, wy1, wx0, wx1;
        slic_window(c[0], geo.win_y, H, wy0, wy1);
        slic_window(c[1], geo.win_x, W, wx0, wx1);
        const auto kl = static_cast<label_t>(k);
        index_t count = 0, sum_y = 0, sum_x = 0;
        double sum_c[NC > 0 ? NC : slic_max_channels];
        for (index_t ch = 0; ch < C; ++ch) sum_c[ch] = 0.0;
        for (index_t y = wy0; y < wy1; ++y) {
            const label_t* lrow = labels + y * W;
            const float* frow = features + y * W;
            index_t row_count = 0, row_x = 0;
            float row_c[NC > 0 ? NC : slic_max_channels];
            for (index_t ch = 0; ch < C; ++ch) row_c[ch] = 0.0f;
            for (index_t x = wx0; x < wx1; ++x) {
                const bool mine = lrow[x] == kl;
                row_count += mine ? 1 : 0;
                row_x += mine ? x : 0;
                for (index_t ch = 0; ch < C; ++ch) row_c[ch] += mine ? frow[ch * HW + x] : 0.0f;
            }
            count += row_count;
            sum_y += row_count * y;
            sum_x += row_x;
            for (index_t ch = 0; ch < C; ++ch) sum_c[ch] += static_cast<double>(row_c[ch]);
        }
        if (count == 0) {  // retired for good, as skimage's 0/0 centre never wins a pixel again
            for (index_t i = 0; i < 2 + C; ++i) out[i] = c[i];
            out[0] = slic_retired;
            return;
        }
        const double inv = 1.0 / static_cast<double>(count);
        out[0] = static_cast<double>(sum_y) * inv;
        out[1] = static_cast<double>(sum_x) * inv;
        for (index_t ch = 0; ch < C; ++ch) out[2 + ch] = sum_c[ch] * inv;
        if (!max_color) return;
        float largest = max_color[k];
        for (index_t y = wy0; y < wy1; ++y)
            for (index_t x = wx0; x < wx1; ++x) {
                if (labels[y * W + x] != kl) continue;
                float color = 0.0f;
                for (index_t ch = 0; ch < C; ++ch) {
                    const float d = features[ch * HW + y * W + x] - static_cast<float>(out[2 + ch]);
                    color += d * d;
                }
                largest = color > largest ? color : largest;
            }
        max_color[k] = largest;
    }
};

/// Side of the square tiles of the masked assignment (its centres are not on a grid).
inline constexpr index_t slic_masked_tile = 32;

/// Assignment step of mask mode (skimage's maskSLIC): as slic_assign_functor, but the centres lie
/// anywhere (k-means seeds on the mask), so each tile tests every centre's window against itself;
/// centres are visited in increasing index with a strict comparison, skimage's tie rule. Pixels
/// outside the mask are never assigned (they keep label -1). With ignore_color the distance is
/// the spatial term alone: skimage's first pass, which spreads the seeds over the mask.
struct slic_masked_assign_functor {
    const float* features;     // planar C x H x W
    const double* centres;     // k * (2 + C): y, x, then C colour means
    const float* max_color;    // SLIC-zero colour normalisers, or nullptr
    const std::uint8_t* mask;  // H x W, non-zero inside
    float* dist;
    label_t* labels;
    index_t height, width, channels, num_centres;
    index_t win_y, win_x, tile_cols;
    float spatial_weight;
    double spacing_y;
    float spacing_x;
    bool ignore_color;

    TESSEL_HD void operator()(index_t tile) const {
        const index_t H = height, W = width, HW = H * W, C = channels;
        const index_t y0 = (tile / tile_cols) * slic_masked_tile, x0 = (tile % tile_cols) * slic_masked_tile;
        const index_t y1 = y0 + slic_masked_tile < H ? y0 + slic_masked_tile : H;
        const index_t x1 = x0 + slic_masked_tile < W ? x0 + slic_masked_tile : W;
        for (index_t y = y0; y < y1; ++y)
            for (index_t x = x0; x < x1; ++x) dist[y * W + x] = 3.0e38f;
        for (index_t k = 0; k < num_centres; ++k) {
            const double* c = centres + k * (2 + C);
            index_t wy0, wy1, wx0, wx1;
            if (!slic_tile_window(c, win_y, win_x, H, W, y0, y1, x0, x1, wy0, wy1, wx0, wx1)) continue;
            const float cx = static_cast<float>(c[1]);
            const float color_scale = max_color ? 1.0f / max_color[k] : 1.0f;
            float mean[slic_max_channels];
            for (index_t ch = 0; ch < C; ++ch) mean[ch] = static_cast<float>(c[2 + ch]);
            for (index_t y = wy0; y < wy1; ++y) {
                const double ddy = spacing_y * (c[0] - static_cast<double>(y));
                const float dy2 = static_cast<float>(ddy * ddy);
                for (index_t x = wx0; x < wx1; ++x) {
                    const index_t p = y * W + x;
                    if (!mask[p]) continue;
                    const float dx = spacing_x * (cx - static_cast<float>(x));
                    float d = (dy2 + dx * dx) * spatial_weight;
                    if (!ignore_color) {
                        float color = 0.0f;
                        for (index_t ch = 0; ch < C; ++ch) {
                            const float t = features[ch * HW + p] - mean[ch];
                            color += t * t;
                        }
                        d += color * color_scale;
                    }
                    if (d < dist[p]) {
                        dist[p] = d;
                        labels[p] = static_cast<label_t>(k);
                    }
                }
            }
        }
    }
};

/// numpy's legacy RandomState(seed) as far as skimage's mask seeding uses it: MT19937 seeded by
/// init_genrand (std::mt19937 gives the same words) and permutation(n), numpy's Fisher-Yates
/// shuffle from the end with masked rejection sampling of each swap index (random_interval).
class numpy_legacy_random {
public:
    explicit numpy_legacy_random(std::uint32_t seed) : m_gen(seed) {}

    /// np.random.RandomState.permutation(n): the same draws, the same order.
    std::vector<index_t> permutation(index_t n) {
        std::vector<index_t> a(static_cast<std::size_t>(n));
        for (index_t i = 0; i < n; ++i) a[static_cast<std::size_t>(i)] = i;
        for (index_t i = n - 1; i >= 1; --i)
            std::swap(a[static_cast<std::size_t>(i)], a[static_cast<std::size_t>(interval(static_cast<std::uint64_t>(i)))]);
        return a;
    }

private:
    std::uint64_t interval(std::uint64_t max) {
        std::uint64_t mask = max;
        for (int shift : {1, 2, 4, 8, 16, 32}) mask |= mask >> shift;
        std::uint64_t v = 0;
        if (max <= 0xffffffffULL) {
            do v = static_cast<std::uint64_t>(m_gen()) & mask;
            while (v > max);
        } else {
            do {
                const std::uint64_t hi = m_gen();
                v = ((hi << 32) | static_cast<std::uint64_t>(m_gen())) & mask;
            } while (v > max);
        }
        return v;
    }

    std::mt19937 m_gen;
};

/// a * a + b * b rounded after each operation, as numpy and scipy compute it: the volatile keeps
/// the compiler from fusing the multiply and the add (GNU mode contracts them into an FMA).
inline double sum_of_squares(double a, double b) {
    volatile double aa = a * a;
    volatile double bb = b * b;
    return aa + bb;
}

}  // namespace detail

/// Seeds of SLIC's mask mode with skimage's recipe (`_get_mask_centroids`, scikit-image 0.19):
/// RandomState(123) picks min(n, M) of the M mask pixels as initial centres and, when M is larger
/// than samples_per_seed * n, that many pixels as k-means samples (otherwise every mask pixel);
/// scipy's kmeans2 runs 5 Lloyd rounds on them (an emptied centre stays where it was). `step` is
/// the largest per-axis mean distance of a centre to its nearest other centre.
struct slic_mask_seeds {
    std::vector<double> y, x;
    double step = 0;
    [[nodiscard]] index_t size() const noexcept { return static_cast<index_t>(y.size()); }
};

/// @pre mask is H x W with at least one non-zero pixel; n >= 1; samples_per_seed >= 1.
inline slic_mask_seeds slic_seeds_on_mask(const label_map& mask, index_t n, index_t samples_per_seed) {
    constexpr const char* where = "tessel::slic_seeds_on_mask";
    expects(n >= 1, where, "number of seeds must be positive, got ", n);
    expects(samples_per_seed >= 1, where, "samples_per_seed must be positive, got ", samples_per_seed);
    const index_t W = mask.width();
    std::vector<index_t> inside;  // raster order, as np.nonzero
    for (index_t p = 0; p < mask.size(); ++p)
        if (mask.data()[p] != 0) inside.push_back(p);
    const auto M = static_cast<index_t>(inside.size());
    expects(M > 0, where, "the mask has no pixel inside");
    detail::numpy_legacy_random rnd(123);
    auto sorted_prefix = [&](index_t count) {
        std::vector<index_t> perm = rnd.permutation(M);
        perm.resize(static_cast<std::size_t>(count));
        std::sort(perm.begin(), perm.end());
        return perm;
    };
    const std::vector<index_t> initial = sorted_prefix(std::min(n, M));
    std::vector<index_t> samples;
    if (M > samples_per_seed * n) {
        samples = sorted_prefix(samples_per_seed * n);
    } else {
        samples.resize(static_cast<std::size_t>(M));
        for (index_t i = 0; i < M; ++i) samples[static_cast<std::size_t>(i)] = i;
    }
    const auto K = static_cast<index_t>(initial.size());
    const auto S = static_cast<index_t>(samples.size());
    std::vector<double> sy(static_cast<std::size_t>(S)), sx(static_cast<std::size_t>(S));
    for (index_t i = 0; i < S; ++i) {
        const index_t p = inside[static_cast<std::size_t>(samples[static_cast<std::size_t>(i)])];
        sy[static_cast<std::size_t>(i)] = static_cast<double>(p / W);
        sx[static_cast<std::size_t>(i)] = static_cast<double>(p % W);
    }
    slic_mask_seeds out;
    out.y.resize(static_cast<std::size_t>(K));
    out.x.resize(static_cast<std::size_t>(K));
    for (index_t k = 0; k < K; ++k) {
        const index_t p = inside[static_cast<std::size_t>(initial[static_cast<std::size_t>(k)])];
        out.y[static_cast<std::size_t>(k)] = static_cast<double>(p / W);
        out.x[static_cast<std::size_t>(k)] = static_cast<double>(p % W);
    }
    // scipy.cluster.vq.kmeans2(samples, initial, iter=5): nearest centre (first of equals), then
    // the means, summed in sample order; the depth coordinate of a 2-D image is 0 throughout.
    std::vector<index_t> label(static_cast<std::size_t>(S));
    std::vector<double> sum_y(static_cast<std::size_t>(K)), sum_x(static_cast<std::size_t>(K));
    std::vector<index_t> count(static_cast<std::size_t>(K));
    for (int round = 0; round < 5; ++round) {
        for (index_t i = 0; i < S; ++i) {
            double best = std::numeric_limits<double>::infinity();
            index_t arg = 0;
            for (index_t k = 0; k < K; ++k) {
                const double d = detail::sum_of_squares(out.y[static_cast<std::size_t>(k)] - sy[static_cast<std::size_t>(i)],
                                                        out.x[static_cast<std::size_t>(k)] - sx[static_cast<std::size_t>(i)]);
                if (d < best) {
                    best = d;
                    arg = k;
                }
            }
            label[static_cast<std::size_t>(i)] = arg;
        }
        std::fill(sum_y.begin(), sum_y.end(), 0.0);
        std::fill(sum_x.begin(), sum_x.end(), 0.0);
        std::fill(count.begin(), count.end(), index_t{0});
        for (index_t i = 0; i < S; ++i) {
            const auto k = static_cast<std::size_t>(label[static_cast<std::size_t>(i)]);
            sum_y[k] += sy[static_cast<std::size_t>(i)];
            sum_x[k] += sx[static_cast<std::size_t>(i)];
            ++count[k];
        }
        for (std::size_t k = 0; k < static_cast<std::size_t>(K); ++k)
            if (count[k] > 0) {
                out.y[k] = sum_y[k] / static_cast<double>(count[k]);
                out.x[k] = sum_x[k] / static_cast<double>(count[k]);
            }
    }
    // steps = |c - nearest other c| averaged over the centres per axis (scipy's pdist, first of
    // equal distances); the depth axis contributes 0.
    double mean_dy = 0, mean_dx = 0;
    for (std::size_t k = 0; k < static_cast<std::size_t>(K); ++k) {
        double best = std::numeric_limits<double>::infinity();
        std::size_t arg = 0;
        for (std::size_t j = 0; j < static_cast<std::size_t>(K); ++j) {
            if (j == k) continue;
            const double d = std::sqrt(detail::sum_of_squares(out.y[k] - out.y[j], out.x[k] - out.x[j]));
            if (d < best) {
                best = d;
                arg = j;
            }
        }
        if (K == 1) arg = k;  // the distance to itself is masked as inf: argmin is 0 = itself
        mean_dy += std::abs(out.y[k] - out.y[arg]);
        mean_dx += std::abs(out.x[k] - out.x[arg]);
    }
    out.step = std::max({0.0, mean_dy / static_cast<double>(K), mean_dx / static_cast<double>(K)});
    return out;
}

namespace detail {

/// Input pixel -> planar SLIC features: Lab (from linear or sRGB values) or the rescaled
/// channels, multiplied by 1 / compactness.
struct slic_features_functor {
    const float* in;  // interleaved H x W x C, rescaled to [0, 1] (linear RGB when `linear`)
    float* out;       // planar C x H x W
    index_t num_pixels, channels;
    bool lab, linear;
    float ratio;
    TESSEL_HD void operator()(index_t p) const {
        const float* px = in + p * channels;
        if (lab) {
            float L, A, B;
            if (linear)
                ops::linear_rgb_to_lab(px[0], px[1], px[2], L, A, B);
            else
                ops::srgb_to_lab(px[0], px[1], px[2], L, A, B);
            out[p] = L * ratio;
            out[num_pixels + p] = A * ratio;
            out[2 * num_pixels + p] = B * ratio;
        } else {
            for (index_t c = 0; c < channels; ++c) out[c * num_pixels + p] = px[c] * ratio;
        }
    }
};

struct add_functor {
    label_t* labels;
    label_t offset;
    TESSEL_HD void operator()(index_t i) const { labels[i] += offset; }
};

}  // namespace detail

/// SLIC superpixels, scikit-image semantics (METHODS.md section 1.3):
///  1. 8-bit input is divided by 255; then the whole image is min-max rescaled to [0, 1] over all
///     pixels and channels;
///  2. a 3-channel image with convert2lab is converted from sRGB (D65) to CIE Lab;
///  3. sigma > 0 smooths each channel with a Gaussian (reflect borders, truncate 4);
///  4. seeds on skimage's regular grid (slic_seed_grid), colour means initialised to zero;
///  5. max_iter rounds of: assign each pixel to the nearest centre within +-2 steps, with
///     distance d = |dxy|^2 / S^2 + |dcolour|^2 / compactness^2 (SLIC-zero: the colour term is
///     divided by the centre's largest colour distance so far instead), then move each centre to
///     its pixels' mean;
///  6. enforce_connectivity merges pieces below min_size_factor * (H*W / seeds) pixels and cuts
///     components above max_size_factor * (H*W / seeds) (connectivity.hpp);
///  7. labels start at start_label.
/// spacing_y / spacing_x weight the row and column offsets (skimage's spacing=); the mask overload
/// is skimage's mask= (maskSLIC, docs/superpixel.md): k-means seeds on the mask, a spatial-only
/// pass, then the usual one, restricted to the mask.
/// Differences from skimage: distances are computed in float (skimage: double), so exact ties
/// may break differently; skimage's early exit when no pixel changes never triggers there and
/// is not reproduced.
///
/// @code
///   tessel::slic spec{{.n_segments = 1000, .compactness = 10}};
///   tessel::label_map sp = spec(tessel::cpu_omp{}, rgb);          // image<uint8_t> or image<float>
///   auto same = tessel::slic{{.n_segments = 1000}}(tessel::cpu_serial{}, rgb);
///   tessel::slic::bind<tessel::cpu_omp> reusable(spec.cfg);       // keeps buffers across calls
///   sp = reusable(rgb);
/// @endcode
struct slic {
    struct config {
        index_t n_segments = 100;     ///< approximate number of seeds (> 0)
        float compactness = 10.0f;    ///< colour/space balance (> 0); ignored by slic_zero's colour term
        int max_iter = 10;            ///< k-means rounds (>= 1)
        double sigma = 0.0;           ///< Gaussian smoothing of the (Lab) image, pixels (>= 0)
        bool slic_zero = false;       ///< SLIC-zero / SLICO: adaptive per-centre colour normaliser
        bool enforce_connectivity = true;
        double min_size_factor = 0.5;  ///< minimum segment size, in units of H*W/seeds (>= 0)
        double max_size_factor = 3.0;  ///< maximum component piece, in units of H*W/seeds (> 0)
        label_t start_label = 1;       ///< first label (>= 0); skimage's default since 0.19
        bool convert2lab = true;       ///< convert 3-channel images from sRGB to Lab
        double spacing_y = 1.0;        ///< skimage's spacing (> 0): weight of row offsets in the distance;
        double spacing_x = 1.0;        ///< the smoothing uses sigma / spacing on each axis
        /// Mask mode only: k-means samples per seed (skimage: 100 for a 2-D image, 1000 when it
        /// takes the image as a volume, i.e. channel_axis=None).
        index_t mask_samples_per_seed = 100;
    };

    template <Backend B>
    class bind;

    config cfg{};

    /// Superpixels of `img` computed on backend `backend`; see the struct comment.
    /// @pre img not empty, 1..slic_max_channels channels, finite values; cfg valid (validate()).
    /// @post a W x H label map; with enforce_connectivity every label is one 4-connected region.
    template <Backend B, class T>
    [[nodiscard]] label_map operator()(B backend, const image<T>& img) const;

    /// Mask mode (skimage's maskSLIC, `mask=`): superpixels only where `mask` (W x H, non-zero
    /// inside) is set, seeds spread over the mask by k-means (slic_seeds_on_mask) and moved by
    /// max_iter spatial-only rounds before the usual ones; pixels outside the mask, and any the
    /// search windows never reach, get label start_label - 1. Host backends only.
    template <Backend B, class T>
    [[nodiscard]] label_map operator()(B backend, const image<T>& img, const label_map& mask) const;

    /// Throws tessel::error naming the first invalid field of cfg.
    static void validate(const config& cfg) {
        constexpr const char* where = "tessel::slic";
        expects(cfg.n_segments > 0, where, "n_segments must be positive, got ", cfg.n_segments);
        expects(std::isfinite(cfg.compactness) && cfg.compactness > 0, where,
                "compactness must be positive and finite, got ", cfg.compactness);
        expects(cfg.max_iter >= 1, where, "max_iter must be >= 1, got ", cfg.max_iter);
        expects(std::isfinite(cfg.sigma) && cfg.sigma >= 0, where, "sigma must be finite and >= 0, got ", cfg.sigma);
        expects(std::isfinite(cfg.min_size_factor) && cfg.min_size_factor >= 0, where,
                "min_size_factor must be finite and >= 0, got ", cfg.min_size_factor);
        expects(std::isfinite(cfg.max_size_factor) && cfg.max_size_factor > 0, where,
                "max_size_factor must be positive and finite, got ", cfg.max_size_factor);
        expects(cfg.start_label >= 0, where, "start_label must be >= 0, got ", cfg.start_label);
        expects(std::isfinite(cfg.spacing_y) && cfg.spacing_y > 0 && std::isfinite(cfg.spacing_x) && cfg.spacing_x > 0,
                where, "spacing must be positive and finite, got (", cfg.spacing_y, ", ", cfg.spacing_x, ")");
        expects(cfg.mask_samples_per_seed >= 1, where, "mask_samples_per_seed must be >= 1, got ",
                cfg.mask_samples_per_seed);
    }
};

/// SLIC bound to a backend: owns the feature, distance, label and centre buffers (in B's memory)
/// and reuses them across calls of the same image size.
template <Backend B>
class slic::bind {
public:
    explicit bind(const config& cfg) : m_cfg(cfg) { slic::validate(cfg); }

    [[nodiscard]] const config& cfg() const noexcept { return m_cfg; }
    /// The seed grid of the last call (its num_seeds() is the k-means cluster count). Mask mode
    /// has no seed grid: there it is the grid whose steps size the search windows (skimage's
    /// regular_grid for the seed count), and the cluster count is slic_seeds_on_mask's size().
    [[nodiscard]] const slic_grid& last_grid() const noexcept { return m_grid; }

    template <class T>
    [[nodiscard]] label_map operator()(const image<T>& img) {
        static_assert(std::is_same_v<T, std::uint8_t> || std::is_same_v<T, float>,
                      "tessel::slic: input must be image<std::uint8_t> or image<float>");
        const index_t H = img.height(), W = img.width(), C = img.channels(), HW = H * W;
        make_features(img);

        // 4: seeds, and skimage's search-window steps (the grid recomputed for the seed count).
        m_grid = slic_seed_grid(H, W, m_cfg.n_segments);
        const index_t K = m_grid.num_seeds();
        const slic_grid window = slic_seed_grid(H, W, K);
        const detail::slic_geometry geo = detail::make_slic_geometry(H, W, C, m_grid, window);
        const auto S = static_cast<double>(m_grid.max_step());
        const auto spatial_weight = static_cast<float>(1.0 / (S * S));
        m_host_centres.assign(static_cast<std::size_t>(K * (2 + C)), 0.0);
        for (index_t i = 0; i < m_grid.rows; ++i)
            for (index_t j = 0; j < m_grid.cols; ++j) {
                double* c = m_host_centres.data() + (i * m_grid.cols + j) * (2 + C);
                c[0] = static_cast<double>(m_grid.start_y + i * m_grid.step_y);
                c[1] = static_cast<double>(m_grid.start_x + j * m_grid.step_x);
            }
        detail::upload(m_centres, shape{K, 2 + C}, m_host_centres.data());
        m_new_centres.resize(shape{K, 2 + C});
        if (m_cfg.slic_zero) {
            const std::vector<float> ones(static_cast<std::size_t>(K), 1.0f);
            detail::upload(m_max_color, shape{K}, ones.data());
        }
        m_dist.resize(shape{H, W});
        if (m_labels.shape() != shape{H, W}) m_labels = tensor<label_t, B>(shape{H, W});

        // 5: k-means rounds. The update after the last assignment would not change the labels.
        switch (C) {
            case 1: iterate<1>(geo, spatial_weight); break;
            case 3: iterate<3>(geo, spatial_weight); break;
            default: iterate<0>(geo, spatial_weight); break;
        }

        label_map out(W, H);
        detail::download(m_labels, out.data());
        // 6-7
        if (m_cfg.enforce_connectivity) {
            const connectivity_limits limits =
                slic_connectivity_limits(HW, K, m_cfg.min_size_factor, m_cfg.max_size_factor);
            return tessel::enforce_connectivity(out, {limits.min_size, std::max<index_t>(limits.max_size, 1)},
                                                m_cfg.start_label);
        }
        if (m_cfg.start_label != 0)
            parallel_for(cpu_serial{}, HW, detail::add_functor{out.data(), m_cfg.start_label});
        return out;
    }

    /// Mask mode; see slic::operator()(B, img, mask).
    template <class T>
    [[nodiscard]] label_map operator()(const image<T>& img, const label_map& mask) {
        static_assert(HostBackend<B>, "tessel::slic: mask mode runs on host backends (cpu_serial, cpu_omp)");
        constexpr const char* where = "tessel::slic";
        expects(mask.width() == img.width() && mask.height() == img.height(), where, "mask is ", mask.width(), "x",
                mask.height(), " but the image is ", img.width(), "x", img.height());
        const index_t H = img.height(), W = img.width(), C = img.channels(), HW = H * W;
        make_features(img);
        std::vector<std::uint8_t> inside(static_cast<std::size_t>(HW));
        index_t M = 0;
        for (index_t p = 0; p < HW; ++p) M += (inside[static_cast<std::size_t>(p)] = mask.data()[p] != 0 ? 1 : 0);
        expects(M > 0, where, "the mask has no pixel inside");

        const slic_mask_seeds seeds = slic_seeds_on_mask(mask, m_cfg.n_segments, m_cfg.mask_samples_per_seed);
        const index_t K = seeds.size();
        // skimage passes the step as a C float, squares it in float and divides in double.
        const auto step = static_cast<float>(seeds.step);
        expects(step > 0.0f, where, "the ", K, " mask seed(s) coincide (n_segments=", m_cfg.n_segments,
                "): skimage would label no pixel; ask for more segments or a larger mask");
        const auto spatial_weight = static_cast<float>(1.0 / static_cast<double>(step * step));
        const slic_grid window = slic_seed_grid(H, W, K);
        m_grid = window;
        std::vector<double> centres(static_cast<std::size_t>(K * (2 + C)), 0.0);
        for (index_t k = 0; k < K; ++k) {
            centres[static_cast<std::size_t>(k * (2 + C))] = seeds.y[static_cast<std::size_t>(k)];
            centres[static_cast<std::size_t>(k * (2 + C) + 1)] = seeds.x[static_cast<std::size_t>(k)];
        }
        m_dist.resize(shape{H, W});
        std::vector<float> max_color;
        label_map out(W, H, label_t{-1});
        const index_t tile_rows = (H + detail::slic_masked_tile - 1) / detail::slic_masked_tile;
        const index_t tile_cols = (W + detail::slic_masked_tile - 1) / detail::slic_masked_tile;
        // skimage's two calls of its k-means loop: spatial only (every round ends with an
        // update), then with colour (labels and SLIC-zero normalisers start afresh).
        for (const bool ignore_color : {true, false}) {
            std::fill(out.values().begin(), out.values().end(), label_t{-1});
            const bool zero = m_cfg.slic_zero && !ignore_color;
            max_color.assign(zero ? static_cast<std::size_t>(K) : 0, 1.0f);
            for (int it = 0; it < m_cfg.max_iter; ++it) {
                parallel_for(B{}, tile_rows * tile_cols,
                             detail::slic_masked_assign_functor{
                                 m_features.data(), centres.data(), zero ? max_color.data() : nullptr, inside.data(),
                                 m_dist.data(), out.data(), H, W, C, K, window.step_y, window.step_x, tile_cols,
                                 spatial_weight, m_cfg.spacing_y, static_cast<float>(m_cfg.spacing_x), ignore_color});
                if (!ignore_color && it + 1 == m_cfg.max_iter) break;  // the update would not change the labels
                masked_update(out, inside, centres, C, K, zero ? max_color.data() : nullptr);
            }
        }
        if (m_cfg.enforce_connectivity) {
            const connectivity_limits limits =
                slic_connectivity_limits(M, K, m_cfg.min_size_factor, m_cfg.max_size_factor);
            return tessel::enforce_connectivity(out, {limits.min_size, std::max<index_t>(limits.max_size, 1)},
                                                m_cfg.start_label, true);
        }
        for (auto& v : out.values()) v += m_cfg.start_label;  // -1 (outside) becomes start_label - 1
        return out;
    }

private:
    /// Steps 1-3: m_features (planar, scaled by 1/compactness, smoothed) from the image.
    template <class T>
    void make_features(const image<T>& img) {
        static_assert(std::is_same_v<T, std::uint8_t> || std::is_same_v<T, float>,
                      "tessel::slic: input must be image<std::uint8_t> or image<float>");
        constexpr const char* where = "tessel::slic";
        expects(!img.empty(), where, "empty image (", img.width(), "x", img.height(), "x", img.channels(), ")");
        const index_t H = img.height(), W = img.width(), C = img.channels(), HW = H * W;
        expects(C >= 1 && C <= slic_max_channels, where, "supports 1 to ", slic_max_channels, " channels, got ", C);
        const bool lab = m_cfg.convert2lab && C == 3;

        // 1-2: rescale to [0, 1] (after /255 for 8-bit), and gamma-expand 8-bit RGB by table.
        prepare_input(img, lab);
        // 2-3: planar features (Lab) scaled by 1/compactness, then smoothing.
        m_features.resize(shape{C, H, W});
        parallel_for(B{}, HW,
                     detail::slic_features_functor{m_input.data(), m_features.data(), HW, C, lab,
                                                   lab && std::is_same_v<T, std::uint8_t>,
                                                   1.0f / m_cfg.compactness});
        if (m_cfg.sigma > 0) smooth(C, H, W);
    }

    /// Mask mode's update, skimage's loop: one raster pass sums every assigned mask pixel into
    /// its centre (a pixel no window reached this round keeps its earlier label and still
    /// counts, so a per-centre window scan would miss it), then divides; an emptied centre is
    /// retired. SLIC-zero then raises each normaliser to its pixels' largest colour distance.
    void masked_update(const label_map& labels, const std::vector<std::uint8_t>& inside, std::vector<double>& centres,
                       index_t C, index_t K, float* max_color) const {
        const index_t W = labels.width(), HW = labels.size();
        const float* f = m_features.data();
        const label_t* lab = labels.data();
        std::vector<double> sums(static_cast<std::size_t>(K * (2 + C)), 0.0);
        std::vector<index_t> count(static_cast<std::size_t>(K), 0);
        for (index_t p = 0; p < HW; ++p) {
            if (!inside[static_cast<std::size_t>(p)] || lab[p] < 0) continue;
            double* s = sums.data() + lab[p] * (2 + C);
            ++count[static_cast<std::size_t>(lab[p])];
            s[0] += static_cast<double>(p / W);
            s[1] += static_cast<double>(p % W);
            for (index_t ch = 0; ch < C; ++ch) s[2 + ch] += static_cast<double>(f[ch * HW + p]);
        }
        for (index_t k = 0; k < K; ++k) {
            double* c = centres.data() + k * (2 + C);
            const auto n = static_cast<double>(count[static_cast<std::size_t>(k)]);
            if (n == 0) {
                c[0] = detail::slic_retired;
                continue;
            }
            for (index_t i = 0; i < 2 + C; ++i) c[i] = sums[static_cast<std::size_t>(k * (2 + C) + i)] / n;
        }
        if (!max_color) return;
        for (index_t p = 0; p < HW; ++p) {
            if (!inside[static_cast<std::size_t>(p)] || lab[p] < 0) continue;
            const double* c = centres.data() + lab[p] * (2 + C);
            float color = 0.0f;
            for (index_t ch = 0; ch < C; ++ch) {
                const float d = f[ch * HW + p] - static_cast<float>(c[2 + ch]);
                color += d * d;
            }
            max_color[lab[p]] = std::max(max_color[lab[p]], color);
        }
    }

    template <class T>
    void prepare_input(const image<T>& img, bool lab) {
        constexpr const char* where = "tessel::slic";
        const index_t n = img.width() * img.height() * img.channels();
        const T* in = img.data();
        m_host_input.resize(static_cast<std::size_t>(n));
        float* dst = HostBackend<B> ? (m_input.resize(shape{n}), m_input.data()) : m_host_input.data();
        if constexpr (std::is_same_v<T, std::uint8_t>) {
            const auto [mn, mx] = std::minmax_element(in, in + n);
            // skimage: img_as_float (v / 255), then (v - min) / (max - min) in double.
            const double lo = *mn / 255.0, span = *mx / 255.0 - lo;
            float table[256];
            for (int v = 0; v < 256; ++v) {
                double r = v / 255.0 - lo;
                if (span != 0) r /= span;
                table[v] = static_cast<float>(lab ? ops::srgb_to_linear(r) : r);
            }
            for (index_t i = 0; i < n; ++i) dst[i] = table[in[i]];
        } else {
            float mn = in[0], mx = in[0];
            for (index_t i = 0; i < n; ++i) {
                expects(std::isfinite(in[i]), where, "image value ", i, " is not finite (", in[i], ")");
                mn = std::min(mn, in[i]);
                mx = std::max(mx, in[i]);
            }
            const float span = mx - mn;
            for (index_t i = 0; i < n; ++i) dst[i] = span != 0 ? (in[i] - mn) / span : in[i] - mn;
        }
        if constexpr (!HostBackend<B>) detail::upload(m_input, shape{n}, m_host_input.data());
    }

    /// skimage divides a scalar sigma by the spacing of each axis.
    void smooth(index_t C, index_t H, index_t W) {
        const std::vector<float> wy = ops::gaussian_kernel1d(m_cfg.sigma / m_cfg.spacing_y);
        const std::vector<float> wx = ops::gaussian_kernel1d(m_cfg.sigma / m_cfg.spacing_x);
        std::vector<float> both(wy);
        both.insert(both.end(), wx.begin(), wx.end());
        detail::upload(m_kernel, shape{static_cast<index_t>(both.size())}, both.data());
        m_scratch.resize(shape{C, H, W});
        const auto ry = static_cast<index_t>(wy.size() / 2), rx = static_cast<index_t>(wx.size() / 2);
        ops::gaussian_filter_raw(B{}, m_features.data(), m_scratch.data(), ops::detail::plane_layout{C, H, W, H * W, W, 1},
                                 m_kernel.data(), ry, m_kernel.data() + wy.size(), rx);
    }

    /// Largest distance of any centre from its seed, per axis (bounds the tiles' candidate sets).
    void drift(const slic_grid& g, index_t C, double& dy, double& dx) {
        const double* c = m_host_centres.data();
        if constexpr (!HostBackend<B>) {
            detail::download(m_centres, m_host_centres.data());
        } else {
            c = m_centres.data();
        }
        dy = dx = 0;
        for (index_t i = 0; i < g.rows; ++i)
            for (index_t j = 0; j < g.cols; ++j) {
                const double* p = c + (i * g.cols + j) * (2 + C);
                if (p[0] == detail::slic_retired) continue;
                dy = std::max(dy, std::abs(p[0] - static_cast<double>(g.start_y + i * g.step_y)));
                dx = std::max(dx, std::abs(p[1] - static_cast<double>(g.start_x + j * g.step_x)));
            }
    }

    template <int NC>
    void iterate(const detail::slic_geometry& geo, float spatial_weight) {
        const index_t K = geo.grid.num_seeds();
        float* max_color = m_cfg.slic_zero ? m_max_color.data() : nullptr;
        for (int it = 0; it < m_cfg.max_iter; ++it) {
            double dy = 0, dx = 0;
            drift(geo.grid, geo.channels, dy, dx);
            parallel_for(B{}, geo.tile_rows * geo.tile_cols,
                         detail::slic_assign_functor<NC>{m_features.data(), m_centres.data(), max_color, m_dist.data(),
                                                         m_labels.data(), geo, dy, dx, spatial_weight, m_cfg.spacing_y,
                                                         static_cast<float>(m_cfg.spacing_x)});
            if (it + 1 == m_cfg.max_iter) break;
            parallel_for(B{}, K,
                         detail::slic_update_functor<NC>{m_features.data(), m_centres.data(), m_new_centres.data(),
                                                         max_color, m_labels.data(), geo});
            std::swap(m_centres, m_new_centres);
        }
    }

    config m_cfg;
    slic_grid m_grid{};
    std::vector<float> m_host_input;
    std::vector<double> m_host_centres;
    tensor<float, B> m_input, m_features, m_scratch, m_kernel, m_dist, m_max_color;
    tensor<double, B> m_centres, m_new_centres;
    tensor<label_t, B> m_labels;
};

template <Backend B, class T>
label_map slic::operator()(B, const image<T>& img) const {
    return bind<B>(cfg)(img);
}

template <Backend B, class T>
label_map slic::operator()(B, const image<T>& img, const label_map& mask) const {
    return bind<B>(cfg)(img, mask);
}

static_assert(SuperpixelAlgorithm<slic, cpu_serial> && SuperpixelAlgorithm<slic, cpu_omp>);

}  // namespace tessel
