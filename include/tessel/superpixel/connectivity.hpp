// tessel/superpixel/connectivity.hpp: making every superpixel one 4-connected region of a
// reasonable size, the post-processing step of SLIC (Achanta et al. 2012, section III-B).
//
// enforce_connectivity() follows scikit-image's semantics step for step: a raster scan starts a
// breadth-first search at each pixel not yet relabelled, grows the 4-connected component of equal
// input labels up to max_size pixels (larger components are cut into pieces), and a component
// smaller than min_size takes the label of the last already-relabelled neighbour the search met.
// The algorithm is inherently sequential and runs on the host for every backend.
#pragma once
#include <algorithm>
#include <vector>

#include "tessel/core/error.hpp"
#include "tessel/core/image.hpp"

namespace tessel {

/// Sizes for enforce_connectivity, in pixels.
struct connectivity_limits {
    index_t min_size = 0;  ///< components below this are merged into a neighbour
    index_t max_size = 0;  ///< components are cut into pieces of at most this many pixels
};

/// The limits SLIC derives from its seed count: int(factor * H*W / n_seeds) (skimage's rule).
inline connectivity_limits slic_connectivity_limits(index_t num_pixels, index_t num_seeds, double min_size_factor,
                                                    double max_size_factor) {
    expects(num_seeds > 0, "tessel::slic_connectivity_limits", "num_seeds must be positive, got ", num_seeds);
    const double segment_size = static_cast<double>(num_pixels) / static_cast<double>(num_seeds);
    return {static_cast<index_t>(min_size_factor * segment_size), static_cast<index_t>(max_size_factor * segment_size)};
}

/// Relabels `labels` so that every output label is one 4-connected region.
///
/// Output labels are start_label, start_label + 1, ... in order of the component's first pixel in
/// raster order. A component of fewer than limits.min_size pixels joins the last relabelled
/// neighbour met by its breadth-first search (order +x, -x, +y, -y), as in skimage. Only the
/// first component of the scan can have no relabelled neighbour; where skimage then gives it
/// label 0 whatever start_label is, tessel lets it join the next component, which always touches
/// it (documented in docs/superpixel.md).
/// With `negative_is_outside`, pixels whose input label is negative (SLIC's masked-out pixels)
/// belong to no component and are nobody's neighbour; they get label start_label - 1, as
/// skimage's mask label.
/// @pre labels not empty; limits.max_size >= 1; start_label >= 0.
/// @post every output label is 4-connected; every segment has >= min_size pixels unless the whole
///       image is smaller; no segment exceeds max_size unless a merge made it larger.
/// @code auto connected = tessel::enforce_connectivity(labels, {.min_size = 8, .max_size = 48}); @endcode
inline label_map enforce_connectivity(const label_map& labels, connectivity_limits limits, label_t start_label = 0,
                                      bool negative_is_outside = false) {
    constexpr const char* where = "tessel::enforce_connectivity";
    expects(!labels.empty(), where, "empty label map");
    expects(limits.max_size >= 1, where, "max_size must be >= 1, got ", limits.max_size);
    expects(limits.min_size >= 0, where, "min_size must be >= 0, got ", limits.min_size);
    expects(start_label >= 0, where, "start_label must be >= 0, got ", start_label);
    const index_t W = labels.width(), H = labels.height(), N = W * H;
    const label_t* in = labels.data();
    label_map out(W, H, label_t{-1});
    label_t* lab = out.data();
    std::vector<index_t> queue(static_cast<std::size_t>(std::min(limits.max_size, N)));
    // Outside pixels are marked below every real label while the scan runs (-2: -1 means "not
    // relabelled yet"), and given start_label - 1 at the end.
    constexpr label_t outside = -2;
    if (negative_is_outside)
        for (index_t p = 0; p < N; ++p)
            if (in[p] < 0) lab[p] = outside;

    label_t next_label = start_label;
    for (index_t start = 0; start < N; ++start) {
        if (lab[start] >= 0 || lab[start] == outside) continue;
        const label_t old = in[start];
        lab[start] = next_label;
        queue[0] = start;
        index_t size = 1, visited = 0;
        label_t adjacent = 0;
        bool found_adjacent = false;
        while (visited < size && size < limits.max_size) {
            const index_t p = queue[static_cast<std::size_t>(visited)];
            const index_t x = p % W, y = p / W;
            const index_t nbr[4] = {x + 1 < W ? p + 1 : -1, x > 0 ? p - 1 : -1, y + 1 < H ? p + W : -1,
                                    y > 0 ? p - W : -1};
            for (index_t q : nbr) {
                if (q < 0) continue;
                if (in[q] == old && lab[q] == -1) {
                    lab[q] = next_label;
                    queue[static_cast<std::size_t>(size++)] = q;
                    if (size >= limits.max_size) break;
                } else if (lab[q] >= 0 && lab[q] != next_label) {
                    adjacent = lab[q];
                    found_adjacent = true;
                }
            }
            ++visited;
        }
        if (size < limits.min_size) {
            // No neighbour yet: keep next_label so the next component (which touches this one)
            // absorbs it.
            if (found_adjacent)
                for (index_t i = 0; i < size; ++i) lab[queue[static_cast<std::size_t>(i)]] = adjacent;
        } else {
            ++next_label;
        }
    }
    if (negative_is_outside)
        for (index_t p = 0; p < N; ++p)
            if (lab[p] == outside) lab[p] = start_label - 1;
    return out;
}

}  // namespace tessel
