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

struct gradient_boundary_fn {
    const label_t* l;
    index_t w, h;
    std::uint8_t* out;
    // MATLAB gradient is non-zero iff the two samples it differences carry different labels.
    TESSEL_HD void operator()(index_t i) const {
        const index_t x = i % w, y = i / w;
        bool b = false;
        if (w > 1) {
            const index_t x0 = x == 0 ? 0 : (x == w - 1 ? w - 2 : x - 1);
            const index_t x1 = x == 0 ? 1 : (x == w - 1 ? w - 1 : x + 1);
            b = l[y * w + x0] != l[y * w + x1];
        }
        if (!b && h > 1) {
            const index_t y0 = y == 0 ? 0 : (y == h - 1 ? h - 2 : y - 1);
            const index_t y1 = y == 0 ? 1 : (y == h - 1 ? h - 1 : y + 1);
            b = l[y0 * w + x] != l[y1 * w + x];
        }
        out[i] = b ? 1 : 0;
    }
};

// Column pass: squared distance to the nearest boundary pixel in the same column (two scans).
struct edt_columns_fn {
    const std::uint8_t* b;
    index_t w, h;
    double* g;
    TESSEL_HD void operator()(index_t x) const {
        const double inf = 1e300;
        double d = inf;
        for (index_t y = 0; y < h; ++y) {
            d = b[y * w + x] ? 0.0 : (d >= inf ? inf : d + 1.0);
            g[y * w + x] = d;
        }
        d = inf;
        for (index_t y = h - 1; y >= 0; --y) {
            d = b[y * w + x] ? 0.0 : (d >= inf ? inf : d + 1.0);
            const double c = g[y * w + x] < d ? g[y * w + x] : d;
            g[y * w + x] = c >= inf ? inf : c * c;
        }
    }
};

// Row pass: lower envelope of the parabolas (x - q)^2 + g(q) (Felzenszwalb & Huttenlocher, Alg. 1).
struct edt_rows_fn {
    const double* g;
    index_t w;
    index_t* v_scratch;
    double* z_scratch;
    double* out;
    TESSEL_HD void operator()(index_t y) const {
        const double* f = g + y * w;
        index_t* v = v_scratch + y * w;
        double* z = z_scratch + y * (w + 1);
        const double inf = 1e300;
        index_t k = -1;
        for (index_t q = 0; q < w; ++q) {
            if (f[q] >= inf) continue;  // columns without boundary pixels add no parabola
            double s = 0;
            while (k >= 0) {
                const double p = static_cast<double>(v[k]);
                s = ((f[q] + static_cast<double>(q * q)) - (f[v[k]] + p * p)) / (2.0 * static_cast<double>(q) - 2.0 * p);
                if (s > z[k]) break;
                --k;
            }
            ++k;
            v[k] = q;
            z[k] = k == 0 ? -inf : s;
            z[k + 1] = inf;
        }
        double* o = out + y * w;
        if (k < 0) {
            for (index_t q = 0; q < w; ++q) o[q] = inf;
            return;
        }
        index_t j = 0;
        for (index_t q = 0; q < w; ++q) {
            while (z[j + 1] < static_cast<double>(q)) ++j;
            const double d = static_cast<double>(q - v[j]);
            o[q] = d * d + f[v[j]];
        }
    }
};

struct masked_distance_fn {
    const std::uint8_t* mask;
    const double* dist;
    TESSEL_HD double operator()(index_t i) const { return mask[i] ? dist[i] : 0.0; }
};
struct mask_count_fn {
    const std::uint8_t* mask;
    TESSEL_HD index_t operator()(index_t i) const { return mask[i] ? 1 : 0; }
};
struct sqrt_fn {
    double* d;
    TESSEL_HD void operator()(index_t i) const { d[i] = std::sqrt(d[i]); }
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
    parallel_for(backend, w * h, detail::gradient_boundary_fn{labels.data(), w, h, b.data()});
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
    std::vector<double> g(mask.size()), out(mask.size());
    std::vector<index_t> v(mask.size());
    std::vector<double> z(static_cast<std::size_t>(height * (width + 1)));
    parallel_for(backend, width, detail::edt_columns_fn{mask.data(), width, height, g.data()});
    parallel_for(backend, height, detail::edt_rows_fn{g.data(), width, v.data(), z.data(), out.data()});
    parallel_for(backend, width * height, detail::sqrt_fn{out.data()});
    for (auto& d : out)
        if (d >= 1e150) d = std::numeric_limits<double>::infinity();
    return out;
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
    const index_t w = a.width(), h = a.height(), n = w * h;
    const auto ba = gradient_boundary(a, backend), bb = gradient_boundary(b, backend);
    const auto da = distance_transform<B>(ba, w, h, backend), db = distance_transform<B>(bb, w, h, backend);
    // A non-constant map always has boundary pixels and a constant one has its frame, so no mean
    // below is over an empty set.
    const double sa = parallel_sum(backend, n, 0.0, detail::masked_distance_fn{ba.data(), db.data()});
    const double sb = parallel_sum(backend, n, 0.0, detail::masked_distance_fn{bb.data(), da.data()});
    const index_t na = parallel_sum(backend, n, index_t{0}, detail::mask_count_fn{ba.data()});
    const index_t nb = parallel_sum(backend, n, index_t{0}, detail::mask_count_fn{bb.data()});
    return (sa / static_cast<double>(na) + sb / static_cast<double>(nb)) / 2.0;
}

/// The usual multi-GT reduction: the mean over ground truths of BDE(seg, G_k).
template <HostBackend B = cpu_serial>
[[nodiscard]] double mean_boundary_displacement_error(const label_map& seg, std::span<const label_map> gts,
                                                      B backend = {}) {
    expects(!gts.empty(), "tessel::metrics::mean_boundary_displacement_error", "no ground truth given");
    double s = 0;
    for (const auto& g : gts) s += boundary_displacement_error(seg, g, backend);
    return s / static_cast<double>(gts.size());
}

}  // namespace tessel::metrics
