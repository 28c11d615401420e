// tessel/metrics/boundary_displacement.hpp: Boundary Displacement Error (METRICS.md §5).
//
// BDE(L1, L2) = (mean over boundary pixels p of L1 of D2(p) + mean over boundary pixels of L2 of
// D1(p)) / 2, in pixels, lower is better; D_k is the exact Euclidean distance to the nearest boundary
// pixel of L_k. This follows compare_image_boundary_error.m (Wright & Yang, 2007): the boundary map
// is |dL/dx| + |dL/dy| > 0 with MATLAB `gradient` (central differences inside, one-sided at the
// border), so edges are ~2 px thick and depend on label identity; a constant map's boundary is the
// image frame. The distance transform is Felzenszwalb & Huttenlocher's separable lower-envelope
// algorithm ("Distance Transforms of Sampled Functions", ToC 2012), exact in the Euclidean metric.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "tessel/backend/concepts.hpp"
#include "tessel/backend/parallel.hpp"
#include "tessel/core/error.hpp"
#include "tessel/core/image.hpp"

namespace tessel::metrics {

namespace detail {

// One row per call: no per-pixel division. MATLAB gradient is non-zero iff the two samples it
// differences carry different labels.
struct gradient_boundary_rows_fn {
    const label_t* l;
    index_t w, h;
    std::uint8_t* out;
    TESSEL_HD void operator()(index_t y) const {
        const label_t* row = l + y * w;
        const label_t* up = h > 1 ? l + (y == 0 ? 0 : (y == h - 1 ? h - 2 : y - 1)) * w : row;
        const label_t* down = h > 1 ? l + (y == 0 ? 1 : (y == h - 1 ? h - 1 : y + 1)) * w : row;
        std::uint8_t* o = out + y * w;
        for (index_t x = 0; x < w; ++x) {
            bool b = up[x] != down[x];
            if (w > 1) {
                const index_t x0 = x == 0 ? 0 : (x == w - 1 ? w - 2 : x - 1);
                const index_t x1 = x == 0 ? 1 : (x == w - 1 ? w - 1 : x + 1);
                b = b || row[x0] != row[x1];
            }
            o[x] = b ? 1 : 0;
        }
    }
};

inline constexpr double edt_inf = 1e300;
inline constexpr index_t edt_column_block = 64;

// Column pass over a block of columns, sweeping rows so memory is read contiguously: squared
// distance to the nearest boundary pixel in the same column.
struct edt_columns_fn {
    const std::uint8_t* b;
    index_t w, h;
    double* g;
    TESSEL_HD void operator()(index_t block) const {
        const index_t x0 = block * edt_column_block;
        const index_t x1 = x0 + edt_column_block < w ? x0 + edt_column_block : w;
        for (index_t x = x0; x < x1; ++x) g[x] = b[x] ? 0.0 : edt_inf;
        for (index_t y = 1; y < h; ++y)
            for (index_t x = x0; x < x1; ++x) {
                const double above = g[(y - 1) * w + x];
                g[y * w + x] = b[y * w + x] ? 0.0 : (above >= edt_inf ? edt_inf : above + 1.0);
            }
        for (index_t y = h - 2; y >= 0; --y)
            for (index_t x = x0; x < x1; ++x) {
                const double below = g[(y + 1) * w + x] + 1.0;
                if (below < g[y * w + x]) g[y * w + x] = below;
            }
        for (index_t y = 0; y < h; ++y)
            for (index_t x = x0; x < x1; ++x) {
                const double d = g[y * w + x];
                g[y * w + x] = d >= edt_inf ? edt_inf : d * d;
            }
    }
};

// Row pass, in place: lower envelope of the parabolas (x - q)^2 + g(q) (Felzenszwalb &
// Huttenlocher, Alg. 1), giving squared distances (BDE takes roots only at boundary pixels).
// Worker c handles rows c, c + workers, ... with its own scratch: a copy of the row, the
// envelope's vertices v and its boundaries z.
struct edt_rows_fn {
    double* g;
    index_t w, h, workers;
    double* scratch;          // per worker: f[w], z[w + 1]
    index_t* vertex_scratch;  // per worker: v[w]
    TESSEL_HD void operator()(index_t c) const {
        double* f = scratch + c * (2 * w + 1);
        double* z = f + w;
        index_t* v = vertex_scratch + c * w;
        for (index_t y = c; y < h; y += workers) {
            double* row = g + y * w;
            for (index_t q = 0; q < w; ++q) f[q] = row[q];
            index_t k = -1;
            for (index_t q = 0; q < w; ++q) {
                if (f[q] >= edt_inf) continue;  // columns without boundary pixels add no parabola
                double s = 0;
                while (k >= 0) {
                    const double p = static_cast<double>(v[k]);
                    s = ((f[q] + static_cast<double>(q * q)) - (f[v[k]] + p * p)) /
                        (2.0 * static_cast<double>(q) - 2.0 * p);
                    if (s > z[k]) break;
                    --k;
                }
                ++k;
                v[k] = q;
                z[k] = k == 0 ? -edt_inf : s;
                z[k + 1] = edt_inf;
            }
            if (k < 0) {
                for (index_t q = 0; q < w; ++q) row[q] = edt_inf;
                continue;
            }
            index_t j = 0;
            for (index_t q = 0; q < w; ++q) {
                while (z[j + 1] < static_cast<double>(q)) ++j;
                const double d = static_cast<double>(q - v[j]);
                row[q] = d * d + f[v[j]];
            }
        }
    }
};

template <class B>
std::vector<double> squared_distance_transform(const std::uint8_t* mask, index_t width, index_t height, B backend) {
    std::vector<double> g(static_cast<std::size_t>(width * height));
    const index_t workers = std::max<index_t>(1, std::min<index_t>(num_threads(backend), height));
    std::vector<double> scratch(static_cast<std::size_t>(workers * (2 * width + 1)));
    std::vector<index_t> vertices(static_cast<std::size_t>(workers * width));
    parallel_for(backend, (width + edt_column_block - 1) / edt_column_block,
                 edt_columns_fn{mask, width, height, g.data()});
    parallel_for(backend, workers, edt_rows_fn{g.data(), width, height, workers, scratch.data(), vertices.data()});
    return g;
}

struct masked_distance_fn {
    const std::uint8_t* mask;
    const double* squared_dist;
    TESSEL_HD double operator()(index_t i) const { return mask[i] ? std::sqrt(squared_dist[i]) : 0.0; }
};
struct mask_count_fn {
    const std::uint8_t* mask;
    TESSEL_HD index_t operator()(index_t i) const { return mask[i] ? 1 : 0; }
};

}  // namespace detail

/// The boundary map of a label map with MATLAB `gradient` semantics: 1 where the horizontal or
/// vertical (central, or one-sided at the border) difference of labels is non-zero; the 1-pixel
/// frame when the map is constant. Row-major, width*height bytes.
/// @pre labels is not empty.
template <HostBackend B = cpu_serial>
[[nodiscard]] std::vector<std::uint8_t> gradient_boundary(const label_map& labels, B backend = {}) {
    expects(!labels.empty(), "tessel::metrics::gradient_boundary", "empty label map");
    const index_t w = labels.width(), h = labels.height();
    std::vector<std::uint8_t> b(static_cast<std::size_t>(w * h), 0);
    const auto& v = labels.values();
    if (std::all_of(v.begin(), v.end(), [&](label_t x) { return x == v.front(); })) {
        for (index_t y = 0; y < h; ++y)
            for (index_t x = 0; x < w; ++x)
                if (x == 0 || y == 0 || x == w - 1 || y == h - 1) b[static_cast<std::size_t>(y * w + x)] = 1;
        return b;
    }
    parallel_for(backend, h, detail::gradient_boundary_rows_fn{labels.data(), w, h, b.data()});
    return b;
}

/// Exact Euclidean distance from every pixel to the nearest non-zero pixel of `mask` (MATLAB
/// bwdist, scipy distance_transform_edt(~mask)). Pixels get +inf when the mask is all zero.
/// @pre mask.size() == width * height, width and height positive.
template <HostBackend B = cpu_serial>
[[nodiscard]] std::vector<double> distance_transform(std::span<const std::uint8_t> mask, index_t width, index_t height,
                                                     B backend = {}) {
    constexpr std::string_view where = "tessel::metrics::distance_transform";
    expects(width > 0 && height > 0, where, "size must be positive, got ", width, "x", height);
    expects(static_cast<index_t>(mask.size()) == width * height, where, "mask has ", mask.size(), " pixels, ", width,
            "x", height, " needs ", width * height);
    std::vector<double> g = detail::squared_distance_transform(mask.data(), width, height, backend);
    for (auto& d : g) d = d >= 1e150 ? std::numeric_limits<double>::infinity() : std::sqrt(d);
    return g;
}

/// A label map's boundary and the squared distance transform of that boundary: the half of BDE
/// that depends on one map only, so a segmentation scored against K ground truths computes it once.
struct boundary_distance {
    index_t width = 0, height = 0;
    std::vector<std::uint8_t> boundary;
    std::vector<double> squared_distance;
};

/// @pre labels is not empty.
template <HostBackend B = cpu_serial>
[[nodiscard]] boundary_distance make_boundary_distance(const label_map& labels, B backend = {}) {
    boundary_distance d{labels.width(), labels.height(), gradient_boundary(labels, backend), {}};
    d.squared_distance = detail::squared_distance_transform(d.boundary.data(), d.width, d.height, backend);
    return d;
}

/// BDE from two prepared maps of equal size.
template <HostBackend B = cpu_serial>
[[nodiscard]] double boundary_displacement_error(const boundary_distance& a, const boundary_distance& b,
                                                 B backend = {}) {
    constexpr std::string_view where = "tessel::metrics::boundary_displacement_error";
    expects(a.width > 0 && a.height > 0 && b.width > 0 && b.height > 0, where, "empty label map (", a.width, "x",
            a.height, " and ", b.width, "x", b.height, ")");
    expects(a.width == b.width && a.height == b.height, where, "size mismatch: ", a.width, "x", a.height, " vs ",
            b.width, "x", b.height);
    const index_t n = a.width * a.height;
    // A non-constant map always has boundary pixels and a constant one has its frame, so no mean
    // below is over an empty set.
    const double sa = parallel_sum(backend, n, 0.0, detail::masked_distance_fn{a.boundary.data(), b.squared_distance.data()});
    const double sb = parallel_sum(backend, n, 0.0, detail::masked_distance_fn{b.boundary.data(), a.squared_distance.data()});
    const index_t na = parallel_sum(backend, n, index_t{0}, detail::mask_count_fn{a.boundary.data()});
    const index_t nb = parallel_sum(backend, n, index_t{0}, detail::mask_count_fn{b.boundary.data()});
    return (sa / static_cast<double>(na) + sb / static_cast<double>(nb)) / 2.0;
}

/// BDE between two label maps of equal size, in pixels (symmetric, 0 for identical boundaries).
/// @code double e = tessel::metrics::boundary_displacement_error(seg, gt); @endcode
template <HostBackend B = cpu_serial>
[[nodiscard]] double boundary_displacement_error(const label_map& a, const label_map& b, B backend = {}) {
    constexpr std::string_view where = "tessel::metrics::boundary_displacement_error";
    expects(!a.empty() && !b.empty(), where, "empty label map (", a.width(), "x", a.height(), " and ", b.width(), "x",
            b.height(), ")");
    expects(a.width() == b.width() && a.height() == b.height(), where, "size mismatch: ", a.width(), "x", a.height(),
            " vs ", b.width(), "x", b.height());
    return boundary_displacement_error(make_boundary_distance(a, backend), make_boundary_distance(b, backend), backend);
}

/// The usual multi-GT reduction: the mean over ground truths of BDE(seg, G_k); the segmentation's
/// boundary and distance transform are computed once.
template <HostBackend B = cpu_serial>
[[nodiscard]] double mean_boundary_displacement_error(const label_map& seg, std::span<const label_map> gts,
                                                      B backend = {}) {
    constexpr std::string_view where = "tessel::metrics::mean_boundary_displacement_error";
    expects(!gts.empty(), where, "no ground truth given");
    expects(!seg.empty(), where, "empty segmentation");
    for (std::size_t k = 0; k < gts.size(); ++k)
        expects(gts[k].width() == seg.width() && gts[k].height() == seg.height(), where,
                "size mismatch: segmentation is ", seg.width(), "x", seg.height(), ", ground truth ", k, " is ",
                gts[k].width(), "x", gts[k].height());
    const boundary_distance s = make_boundary_distance(seg, backend);
    double sum = 0;
    for (const auto& g : gts) sum += boundary_displacement_error(s, make_boundary_distance(g, backend), backend);
    return sum / static_cast<double>(gts.size());
}

}  // namespace tessel::metrics
