// tessel/metrics/contingency.hpp: the contingency table of two segmentations (METRICS.md §1).
//
// n_ij = |{p : seg(p) = i, gt(p) = j}| over the pixels of two label maps of equal size, with the
// row sums a_i = |seg_i| and column sums b_j = |gt_j|. Every region metric of this module except
// the boundary displacement error is a closed-form function of this table (Rand index, VoI,
// covering, NMI and friends, Hungarian-matched and best-IoU scores), so it is built once per
// (segmentation, ground truth) pair and shared. Labels are arbitrary 32-bit ids (negative, sparse
// or huge); rows and columns list the labels present, in increasing order. Counts are 64-bit.
#pragma once
#include <algorithm>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "tessel/backend/concepts.hpp"
#include "tessel/backend/parallel.hpp"
#include "tessel/core/error.hpp"
#include "tessel/core/image.hpp"

namespace tessel::metrics {

using count_t = std::int64_t;  ///< pixel counts; sums of squared counts reach ~2.4e10 on BSDS

/// One non-zero cell of a contingency table: n(row, col) = count.
struct contingency_cell {
    index_t row = 0;
    index_t col = 0;
    count_t count = 0;
};

/// The sparse contingency table of (seg, gt): rows are seg labels, columns gt labels.
///   ensures: row_labels and col_labels are strictly increasing and list exactly the labels
///            present; cells hold every non-zero n_ij once, sorted by (row, col);
///            row_sums[i] = sum_j n_ij > 0, col_sums[j] = sum_i n_ij > 0, total = sum = N.
struct contingency_table {
    std::vector<label_t> row_labels;  ///< seg label of row i
    std::vector<label_t> col_labels;  ///< gt label of column j
    std::vector<count_t> row_sums;    ///< a_i = |seg_i|
    std::vector<count_t> col_sums;    ///< b_j = |gt_j|
    std::vector<contingency_cell> cells;
    count_t total = 0;  ///< N, the number of pixels

    [[nodiscard]] index_t rows() const noexcept { return static_cast<index_t>(row_labels.size()); }
    [[nodiscard]] index_t cols() const noexcept { return static_cast<index_t>(col_labels.size()); }

    /// The dense rows() x cols() table, row-major. Costs rows*cols memory; meant for the
    /// assignment solver and for tests, not for huge over-segmentations.
    [[nodiscard]] std::vector<count_t> dense() const {
        std::vector<count_t> d(static_cast<std::size_t>(rows() * cols()), 0);
        for (const auto& c : cells) d[static_cast<std::size_t>(c.row * cols() + c.col)] = c.count;
        return d;
    }
    /// The table with rows and columns swapped: contingency(gt, seg).
    [[nodiscard]] contingency_table transposed() const {
        contingency_table t;
        t.row_labels = col_labels;
        t.col_labels = row_labels;
        t.row_sums = col_sums;
        t.col_sums = row_sums;
        t.total = total;
        t.cells.reserve(cells.size());
        for (const auto& c : cells) t.cells.push_back({c.col, c.row, c.count});
        std::sort(t.cells.begin(), t.cells.end(), [](const contingency_cell& a, const contingency_cell& b) {
            return a.row != b.row ? a.row < b.row : a.col < b.col;
        });
        return t;
    }
};

/// A label map with its labels replaced by dense indices 0..K-1 in increasing label order.
struct compact_labels {
    std::vector<label_t> labels;   ///< labels[k] = original label of index k, increasing
    std::vector<std::int32_t> index;  ///< per pixel, the index of its label
};

namespace detail {

/// Dense label lookup is used when the label range is at most this wide (16 MiB of int32).
inline constexpr std::int64_t dense_label_range = std::int64_t{1} << 22;
/// The joint histogram is dense (per worker) when rows*cols is at most this many cells.
inline constexpr std::int64_t dense_table_cells = std::int64_t{1} << 21;

struct lookup_labels_fn {
    const label_t* in;
    const std::int32_t* lut;
    label_t lo;
    std::int32_t* out;
    TESSEL_HD void operator()(index_t i) const { out[i] = lut[in[i] - lo]; }
};

// Each worker c histograms its own slice of the pixels into its own table: no atomics, and the
// serial backend (one worker) is a single pass.
struct joint_histogram_fn {
    const std::int32_t* rows;
    const std::int32_t* cols;
    index_t n_pixels;
    index_t n_cols;
    index_t n_cells;
    index_t n_chunks;
    count_t* tables;
    TESSEL_HD void operator()(index_t c) const {
        const index_t begin = n_pixels * c / n_chunks, end = n_pixels * (c + 1) / n_chunks;
        count_t* t = tables + c * n_cells;
        for (index_t i = begin; i < end; ++i) ++t[rows[i] * n_cols + cols[i]];
    }
};

}  // namespace detail

/// Maps the labels of `map` to 0..K-1 in increasing label order.
/// @pre map is not empty.
template <HostBackend B = cpu_serial>
compact_labels compact(const label_map& map, B backend = {}) {
    constexpr std::string_view where = "tessel::metrics::compact";
    expects(!map.empty(), where, "empty label map");
    compact_labels out;
    const label_t* p = map.data();
    const index_t n = map.size();
    out.index.resize(static_cast<std::size_t>(n));
    const auto [mn, mx] = std::minmax_element(p, p + n);
    const label_t lo = *mn, hi = *mx;
    if (static_cast<std::int64_t>(hi) - lo < detail::dense_label_range) {
        std::vector<std::int32_t> lut(static_cast<std::size_t>(static_cast<std::int64_t>(hi) - lo + 1), -1);
        for (index_t i = 0; i < n; ++i) lut[static_cast<std::size_t>(p[i] - lo)] = 0;
        std::int32_t k = 0;
        for (std::size_t v = 0; v < lut.size(); ++v)
            if (lut[v] == 0) {
                lut[v] = k++;
                out.labels.push_back(static_cast<label_t>(lo + static_cast<std::int64_t>(v)));
            }
        parallel_for(backend, n, detail::lookup_labels_fn{p, lut.data(), lo, out.index.data()});
    } else {
        out.labels.assign(p, p + n);
        std::sort(out.labels.begin(), out.labels.end());
        out.labels.erase(std::unique(out.labels.begin(), out.labels.end()), out.labels.end());
        for (index_t i = 0; i < n; ++i)
            out.index[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(
                std::lower_bound(out.labels.begin(), out.labels.end(), p[i]) - out.labels.begin());
    }
    return out;
}

/// The contingency table of two compacted label maps of the same pixel count.
template <HostBackend B = cpu_serial>
contingency_table contingency(const compact_labels& seg, const compact_labels& gt, B backend = {}) {
    constexpr std::string_view where = "tessel::metrics::contingency";
    expects(!seg.index.empty() && !gt.index.empty(), where, "empty label map");
    expects(seg.index.size() == gt.index.size(), where, "the segmentation has ", seg.index.size(),
            " pixels, the ground truth ", gt.index.size());
    contingency_table t;
    t.row_labels = seg.labels;
    t.col_labels = gt.labels;
    const index_t R = t.rows(), C = t.cols(), n = static_cast<index_t>(seg.index.size());
    t.total = n;
    t.row_sums.assign(static_cast<std::size_t>(R), 0);
    t.col_sums.assign(static_cast<std::size_t>(C), 0);
    if (R * C <= detail::dense_table_cells) {
        // Splitting only pays when the pixels far outnumber the cells each worker must merge.
        index_t chunks = std::max<index_t>(1, std::min<index_t>(num_threads(backend), n / (4 * R * C + 1)));
        std::vector<count_t> tables(static_cast<std::size_t>(chunks * R * C), 0);
        parallel_for(backend, chunks,
                     detail::joint_histogram_fn{seg.index.data(), gt.index.data(), n, C, R * C, chunks, tables.data()});
        for (index_t c = 1; c < chunks; ++c)
            for (index_t k = 0; k < R * C; ++k)
                tables[static_cast<std::size_t>(k)] += tables[static_cast<std::size_t>(c * R * C + k)];
        for (index_t i = 0; i < R; ++i)
            for (index_t j = 0; j < C; ++j)
                if (const count_t v = tables[static_cast<std::size_t>(i * C + j)]; v != 0)
                    t.cells.push_back({i, j, v});
    } else {
        // Huge over-segmentations: sort the joint keys instead of allocating rows*cols counters.
        std::vector<std::int64_t> keys(static_cast<std::size_t>(n));
        for (index_t i = 0; i < n; ++i)
            keys[static_cast<std::size_t>(i)] = static_cast<std::int64_t>(seg.index[static_cast<std::size_t>(i)]) * C +
                                                gt.index[static_cast<std::size_t>(i)];
        std::sort(keys.begin(), keys.end());
        for (std::size_t i = 0; i < keys.size();) {
            std::size_t j = i;
            while (j < keys.size() && keys[j] == keys[i]) ++j;
            t.cells.push_back({keys[i] / C, keys[i] % C, static_cast<count_t>(j - i)});
            i = j;
        }
    }
    for (const auto& c : t.cells) {
        t.row_sums[static_cast<std::size_t>(c.row)] += c.count;
        t.col_sums[static_cast<std::size_t>(c.col)] += c.count;
    }
    return t;
}

/// The contingency table of (seg, gt).
/// @pre seg and gt are non-empty and have the same width and height.
/// @code auto t = tessel::metrics::contingency(seg, gt); double ri = tessel::metrics::rand_index(t); @endcode
template <HostBackend B = cpu_serial>
contingency_table contingency(const label_map& seg, const label_map& gt, B backend = {}) {
    constexpr std::string_view where = "tessel::metrics::contingency";
    expects(!seg.empty() && !gt.empty(), where, "empty label map (segmentation ", seg.width(), "x", seg.height(),
            ", ground truth ", gt.width(), "x", gt.height(), ")");
    expects(seg.width() == gt.width() && seg.height() == gt.height(), where, "size mismatch: segmentation is ",
            seg.width(), "x", seg.height(), ", ground truth is ", gt.width(), "x", gt.height());
    return contingency(compact(seg, backend), compact(gt, backend), backend);
}

/// Checks that a segmentation and each of its ground truths are non-empty and of equal size.
inline void check_ground_truths(const label_map& seg, std::span<const label_map> gts, std::string_view where) {
    expects(!seg.empty(), where, "empty segmentation");
    expects(!gts.empty(), where, "no ground truth given");
    for (std::size_t k = 0; k < gts.size(); ++k)
        expects(gts[k].width() == seg.width() && gts[k].height() == seg.height(), where, "size mismatch: segmentation is ",
                seg.width(), "x", seg.height(), ", ground truth ", k, " is ", gts[k].width(), "x", gts[k].height());
}

/// The tables of one segmentation against each of several ground truths (the seg is compacted once).
template <HostBackend B = cpu_serial>
std::vector<contingency_table> contingencies(const label_map& seg, std::span<const label_map> gts, B backend = {}) {
    check_ground_truths(seg, gts, "tessel::metrics::contingencies");
    const compact_labels s = compact(seg, backend);
    std::vector<contingency_table> out;
    out.reserve(gts.size());
    for (const auto& g : gts) out.push_back(contingency(s, compact(g, backend), backend));
    return out;
}

}  // namespace tessel::metrics
