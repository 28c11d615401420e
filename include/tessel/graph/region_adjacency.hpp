// tessel/graph/region_adjacency.hpp: the region adjacency graph (RAG) of a label map.
//
// Superpixel methods (e.g. Deep Superpixel Cut, UnSegGNet's graph over regions) reason about
// regions instead of pixels: one node per label, an edge between regions that touch, weighted by
// the length of their common boundary. region_adjacency() builds that graph with the region sizes;
// region_mean_features() gives each region's mean pixel value, the usual node feature.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "tessel/core/image.hpp"
#include "tessel/graph/csr_graph.hpp"

namespace tessel {

/// A region adjacency graph: node r is label r of the map.
struct region_adjacency_graph {
    /// Undirected; the weight of {r, s} is the number of neighbouring pixel pairs (under the chosen
    /// connectivity) with one pixel in r and the other in s: the boundary length in pixel edges.
    csr_graph<double> graph;
    /// sizes[r] = number of pixels with label r (0 for a label that does not occur).
    std::vector<index_t> sizes;
    [[nodiscard]] index_t num_regions() const noexcept { return static_cast<index_t>(sizes.size()); }
};

namespace detail {
inline label_t checked_max_label(const label_map& labels, const char* where) {
    expects(!labels.empty(), where, "empty label map (", labels.width(), "x", labels.height(), ")");
    const label_t* p = labels.data();
    label_t mx = 0;
    for (index_t i = 0; i < labels.size(); ++i) {
        expects(p[i] >= 0, where, "negative label ", p[i], " at pixel (", i % labels.width(), ", ",
                i / labels.width(), "); labels must be 0..K-1");
        mx = std::max(mx, p[i]);
    }
    return mx;
}
}  // namespace detail

/// The RAG of `labels` (labels 0..K-1 with K = max label + 1; gaps give isolated nodes of size 0).
/// connectivity 4 counts horizontal and vertical pixel pairs, 8 also the diagonal ones.
inline region_adjacency_graph region_adjacency(const label_map& labels, int connectivity = 4) {
    constexpr auto where = "tessel::region_adjacency";
    expects(connectivity == 4 || connectivity == 8, where, "connectivity must be 4 or 8, got ", connectivity);
    const index_t K = static_cast<index_t>(detail::checked_max_label(labels, where)) + 1;
    const index_t W = labels.width(), H = labels.height();
    const label_t* p = labels.data();

    region_adjacency_graph rag;
    rag.sizes.assign(static_cast<std::size_t>(K), 0);
    for (index_t i = 0; i < W * H; ++i) ++rag.sizes[static_cast<std::size_t>(p[i])];

    // Every differing neighbour pair becomes one key (min label, max label); sorting the keys and
    // counting runs gives the boundary lengths without a hash map, in a deterministic order.
    std::vector<std::uint64_t> keys;
    auto visit = [&](label_t a, label_t b) {
        if (a == b) return;
        const auto lo = static_cast<std::uint64_t>(std::min(a, b)), hi = static_cast<std::uint64_t>(std::max(a, b));
        keys.push_back((lo << 32) | hi);
    };
    for (index_t y = 0; y < H; ++y)
        for (index_t x = 0; x < W; ++x) {
            const label_t a = p[y * W + x];
            if (x + 1 < W) visit(a, p[y * W + x + 1]);
            if (y + 1 < H) {
                visit(a, p[(y + 1) * W + x]);
                if (connectivity == 8) {
                    if (x + 1 < W) visit(a, p[(y + 1) * W + x + 1]);
                    if (x > 0) visit(a, p[(y + 1) * W + x - 1]);
                }
            }
        }
    std::sort(keys.begin(), keys.end());
    std::vector<weighted_edge<double>> edges;
    for (std::size_t k = 0; k < keys.size();) {
        std::size_t e = k;
        while (e < keys.size() && keys[e] == keys[k]) ++e;
        edges.push_back({static_cast<index_t>(keys[k] >> 32), static_cast<index_t>(keys[k] & 0xffffffffu),
                         static_cast<double>(e - k)});
        k = e;
    }
    rag.graph = csr_graph<double>::from_undirected_edges(K, edges);
    return rag;
}

/// Mean pixel value of every region: a row-major K x C array (K = max label + 1, C = channels);
/// a label that does not occur gets zeros.
template <class T>
std::vector<double> region_mean_features(const label_map& labels, const image<T>& img) {
    constexpr auto where = "tessel::region_mean_features";
    expects(!img.empty(), where, "empty image");
    expects(img.width() == labels.width() && img.height() == labels.height(), where, "image is ", img.width(), "x",
            img.height(), " but the label map is ", labels.width(), "x", labels.height());
    const index_t K = static_cast<index_t>(detail::checked_max_label(labels, where)) + 1;
    const index_t C = img.channels(), N = labels.size();
    std::vector<double> sum(static_cast<std::size_t>(K * C), 0.0);
    std::vector<index_t> count(static_cast<std::size_t>(K), 0);
    const label_t* p = labels.data();
    const T* px = img.data();
    for (index_t i = 0; i < N; ++i) {
        const index_t r = p[i];
        ++count[static_cast<std::size_t>(r)];
        for (index_t c = 0; c < C; ++c) sum[static_cast<std::size_t>(r * C + c)] += static_cast<double>(px[i * C + c]);
    }
    for (index_t r = 0; r < K; ++r)
        if (count[static_cast<std::size_t>(r)] > 0)
            for (index_t c = 0; c < C; ++c)
                sum[static_cast<std::size_t>(r * C + c)] /= static_cast<double>(count[static_cast<std::size_t>(r)]);
    return sum;
}

}  // namespace tessel
