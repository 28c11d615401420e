// tessel/superpixel/felzenszwalb.hpp: graph-based segmentation of Felzenszwalb and Huttenlocher
// ("Efficient Graph-Based Image Segmentation", IJCV 2004), with the semantics of scikit-image's
// skimage.segmentation.felzenszwalb (the "EGB" superpixels of DSC's stage 2, METHODS.md section 7).
//
// The smoothing and the edge weights are TESSEL_HD functors run through tessel::parallel_for; the
// edge sort and the union-find merging are inherently sequential host code. On the cuda backend
// the whole algorithm runs on the host (cpu_omp loops), since only the smoothing would benefit.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "tessel/backend/parallel.hpp"
#include "tessel/core/error.hpp"
#include "tessel/core/image.hpp"
#include "tessel/ops/gaussian.hpp"
#include "tessel/superpixel/concepts.hpp"

namespace tessel {

namespace detail {

/// The 8-neighbour grid graph of skimage, edge ids in its order: all right edges (y, x)-(y, x+1)
/// row-major, then down (y, x)-(y+1, x), then down-right (y, x)-(y+1, x+1), then up-right
/// (y+1, x)-(y, x+1).
struct grid_edges {
    index_t height, width;
    [[nodiscard]] TESSEL_HD index_t right_count() const { return height * (width - 1); }
    [[nodiscard]] TESSEL_HD index_t down_count() const { return (height - 1) * width; }
    [[nodiscard]] TESSEL_HD index_t diag_count() const { return (height - 1) * (width - 1); }
    [[nodiscard]] TESSEL_HD index_t count() const { return right_count() + down_count() + 2 * diag_count(); }
    /// Pixel indices (a, b) of edge e.
    TESSEL_HD void endpoints(index_t e, index_t& a, index_t& b) const {
        const index_t W = width;
        if (e < right_count()) {
            const index_t y = e / (W - 1), x = e % (W - 1);
            a = y * W + x;
            b = a + 1;
            return;
        }
        e -= right_count();
        if (e < down_count()) {
            a = e;
            b = e + W;
            return;
        }
        e -= down_count();
        const bool up_right = e >= diag_count();
        if (up_right) e -= diag_count();
        const index_t y = e / (W - 1), x = e % (W - 1);
        if (up_right) {
            a = (y + 1) * W + x;
            b = y * W + x + 1;
        } else {
            a = y * W + x;
            b = a + W + 1;
        }
    }
};

/// Weight of edge e: the Euclidean distance between its pixels over all channels.
struct edge_weight_functor {
    const float* image;  // interleaved H x W x C
    float* weights;
    grid_edges edges;
    index_t channels;
    TESSEL_HD void operator()(index_t e) const {
        index_t a, b;
        edges.endpoints(e, a, b);
        float s = 0.0f;
        for (index_t c = 0; c < channels; ++c) {
            const float d = image[a * channels + c] - image[b * channels + c];
            s += d * d;
        }
        weights[e] = ::sqrtf(s);
    }
};

/// Stable LSD radix sort of edge ids by non-negative float weight (their IEEE bit patterns sort
/// like the values), so equal weights keep skimage's edge order.
inline void sort_edges_by_weight(const std::vector<float>& w, std::vector<std::uint32_t>& order) {
    const std::size_t n = w.size();
    std::vector<std::uint32_t> keys(n), tmp_keys(n), tmp_order(n);
    order.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        std::uint32_t k;
        std::memcpy(&k, &w[i], sizeof k);
        keys[i] = k;
        order[i] = static_cast<std::uint32_t>(i);
    }
    constexpr int bits = 11;
    constexpr std::uint32_t buckets = 1u << bits;
    std::vector<std::size_t> count(buckets);
    for (int shift = 0; shift < 32; shift += bits) {
        std::fill(count.begin(), count.end(), 0);
        for (std::size_t i = 0; i < n; ++i) ++count[(keys[i] >> shift) & (buckets - 1)];
        std::size_t sum = 0;
        for (auto& c : count) {
            const std::size_t v = c;
            c = sum;
            sum += v;
        }
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t dst = count[(keys[i] >> shift) & (buckets - 1)]++;
            tmp_keys[dst] = keys[i];
            tmp_order[dst] = order[i];
        }
        keys.swap(tmp_keys);
        order.swap(tmp_order);
    }
}

/// Union-find over pixels whose root is always the smallest index of its set (skimage's rule).
class pixel_forest {
public:
    explicit pixel_forest(index_t n) : m_parent(static_cast<std::size_t>(n)) {
        for (index_t i = 0; i < n; ++i) m_parent[static_cast<std::size_t>(i)] = i;
    }
    index_t find(index_t i) {
        index_t r = i;
        while (m_parent[static_cast<std::size_t>(r)] != r) r = m_parent[static_cast<std::size_t>(r)];
        while (m_parent[static_cast<std::size_t>(i)] != r) {  // path compression
            const index_t next = m_parent[static_cast<std::size_t>(i)];
            m_parent[static_cast<std::size_t>(i)] = r;
            i = next;
        }
        return r;
    }
    /// Joins two roots; returns the new root.
    index_t join(index_t ra, index_t rb) {
        const index_t lo = ra < rb ? ra : rb, hi = ra < rb ? rb : ra;
        m_parent[static_cast<std::size_t>(hi)] = lo;
        return lo;
    }

private:
    std::vector<index_t> m_parent;
};

}  // namespace detail

/// Felzenszwalb-Huttenlocher segmentation, scikit-image semantics:
///  1. 8-bit input is divided by 255 (float input is used as is; no rescaling);
///  2. each channel is smoothed with a Gaussian of sigma pixels (reflect borders, truncate 4);
///  3. the 8-neighbour grid graph gets weights |I(p) - I(q)|, the Euclidean distance over all
///     channels (colour images are not segmented channel by channel);
///  4. edges in increasing weight merge components C1, C2 when w < min(Int(C1) + k/|C1|,
///     Int(C2) + k/|C2|), with k = scale / 255 and Int the largest weight merged into a
///     component so far;
///  5. a second pass over the sorted edges merges any pair with a component below min_size;
///  6. labels 0..K-1 are numbered in raster order of each segment's first pixel.
/// Equal weights are taken in skimage's edge order (a stable sort; numpy's quicksort is not
/// stable, so tie order, and rarely the result, can differ from skimage's).
///
/// @code
///   auto segments = tessel::felzenszwalb{{.scale = 100, .sigma = 0.5, .min_size = 50}}(tessel::cpu_omp{}, rgb);
/// @endcode
struct felzenszwalb {
    struct config {
        double scale = 1.0;    ///< k * 255: larger values give larger segments (> 0)
        double sigma = 0.8;    ///< Gaussian pre-smoothing in pixels (>= 0)
        index_t min_size = 20; ///< segments below this many pixels are merged away (>= 0)
    };

    template <Backend B>
    class bind;

    config cfg{};

    /// @pre img not empty, finite values; cfg valid. @post a W x H label map with labels 0..K-1.
    template <Backend B, class T>
    [[nodiscard]] label_map operator()(B backend, const image<T>& img) const;

    static void validate(const config& cfg) {
        constexpr const char* where = "tessel::felzenszwalb";
        expects(std::isfinite(cfg.scale) && cfg.scale > 0, where, "scale must be positive and finite, got ", cfg.scale);
        expects(std::isfinite(cfg.sigma) && cfg.sigma >= 0, where, "sigma must be finite and >= 0, got ", cfg.sigma);
        expects(cfg.min_size >= 0, where, "min_size must be >= 0, got ", cfg.min_size);
    }
};

/// Felzenszwalb bound to a backend (its loops run on B, or on cpu_omp when B is a device).
template <Backend B>
class felzenszwalb::bind {
    using host_backend = std::conditional_t<HostBackend<B>, B, cpu_omp>;

public:
    explicit bind(const config& cfg) : m_cfg(cfg) { felzenszwalb::validate(cfg); }
    [[nodiscard]] const config& cfg() const noexcept { return m_cfg; }

    template <class T>
    [[nodiscard]] label_map operator()(const image<T>& img) {
        static_assert(std::is_same_v<T, std::uint8_t> || std::is_same_v<T, float>,
                      "tessel::felzenszwalb: input must be image<std::uint8_t> or image<float>");
        constexpr const char* where = "tessel::felzenszwalb";
        expects(!img.empty(), where, "empty image (", img.width(), "x", img.height(), "x", img.channels(), ")");
        const index_t H = img.height(), W = img.width(), C = img.channels(), N = H * W;
        expects(N < (index_t{1} << 31), where, "image of ", N, " pixels is too large");
        m_image.resize(static_cast<std::size_t>(N * C));
        const T* in = img.data();
        for (index_t i = 0; i < N * C; ++i) {
            if constexpr (std::is_same_v<T, std::uint8_t>) {
                m_image[static_cast<std::size_t>(i)] = static_cast<float>(in[i] / 255.0);
            } else {
                expects(std::isfinite(in[i]), where, "image value ", i, " is not finite (", in[i], ")");
                m_image[static_cast<std::size_t>(i)] = in[i];
            }
        }
        if (m_cfg.sigma > 0) {
            const std::vector<float> w = ops::gaussian_kernel1d(m_cfg.sigma);
            m_scratch.resize(m_image.size());
            const auto r = static_cast<index_t>(w.size() / 2);
            ops::gaussian_filter_raw(host_backend{}, m_image.data(), m_scratch.data(),
                                     ops::detail::plane_layout{C, H, W, 1, W * C, C}, w.data(), r, w.data(), r);
        }
        const detail::grid_edges edges{H, W};
        const index_t E = edges.count();
        m_weights.resize(static_cast<std::size_t>(E));
        parallel_for(host_backend{}, E, detail::edge_weight_functor{m_image.data(), m_weights.data(), edges, C});
        detail::sort_edges_by_weight(m_weights, m_order);

        detail::pixel_forest forest(N);
        std::vector<index_t> size(static_cast<std::size_t>(N), 1);
        std::vector<double> internal(static_cast<std::size_t>(N), 0.0);
        const double k = m_cfg.scale / 255.0;
        for (const std::uint32_t e : m_order) {
            index_t a, b;
            edges.endpoints(e, a, b);
            const index_t ra = forest.find(a), rb = forest.find(b);
            if (ra == rb) continue;
            const auto sa = static_cast<std::size_t>(ra), sb = static_cast<std::size_t>(rb);
            // skimage keeps these thresholds in single precision.
            const auto ta = static_cast<float>(internal[sa] + k / static_cast<double>(size[sa]));
            const auto tb = static_cast<float>(internal[sb] + k / static_cast<double>(size[sb]));
            const double w = m_weights[e];
            if (w < static_cast<double>(ta < tb ? ta : tb)) {
                const auto r = static_cast<std::size_t>(forest.join(ra, rb));
                size[r] = size[sa] + size[sb];
                internal[r] = w;
            }
        }
        for (const std::uint32_t e : m_order) {
            index_t a, b;
            edges.endpoints(e, a, b);
            const index_t ra = forest.find(a), rb = forest.find(b);
            if (ra == rb) continue;
            const auto sa = static_cast<std::size_t>(ra), sb = static_cast<std::size_t>(rb);
            if (size[sa] < m_cfg.min_size || size[sb] < m_cfg.min_size) {
                const auto r = static_cast<std::size_t>(forest.join(ra, rb));
                size[r] = size[sa] + size[sb];
            }
        }
        label_map out(W, H);
        label_t* lab = out.data();
        for (index_t i = 0; i < N; ++i) lab[i] = static_cast<label_t>(forest.find(i));
        relabel_sequential(out);  // roots are each set's first pixel: same order as skimage's unique()
        return out;
    }

private:
    config m_cfg;
    std::vector<float> m_image, m_scratch, m_weights;
    std::vector<std::uint32_t> m_order;
};

template <Backend B, class T>
label_map felzenszwalb::operator()(B, const image<T>& img) const {
    return bind<B>(cfg)(img);
}

static_assert(SuperpixelAlgorithm<felzenszwalb, cpu_serial> && SuperpixelAlgorithm<felzenszwalb, cpu_omp>);

}  // namespace tessel
