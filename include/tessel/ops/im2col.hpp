// tessel/ops/im2col.hpp: unfolding image patches into GEMM columns (im2col) and folding back (col2im).
//
// A 2-d convolution of one C x H x W image is the GEMM Y[C_out, OH*OW] = W[C_out, C*k*k] *
// col[C*k*k, OH*OW], where row (c, kh, kw) of col holds, for each output pixel, the input value the
// kernel tap (kh, kw) of channel c sees there (0 in the padding). Both functions work on a band of
// output rows [oh_begin, oh_end), so conv2d can bound the column buffer by tiling over rows
// (docs/nn_conv.md). The loop bodies are TESSEL_HD functors run through parallel_for, each work
// item a run of consecutive column-buffer rows (im2col) or input rows (col2im), so no two items
// write the same element and no atomics are needed. A run holds about row_chunk_elems elements:
// on a narrow image (a 2-pixel-wide strip) one row is a handful of elements, and one work item
// per row spent most of the unfold in dispatch and index arithmetic (docs/reliability.md).
#pragma once
#include "tessel/backend/parallel.hpp"
#include "tessel/core/error.hpp"
#include "tessel/core/shape.hpp"

namespace tessel::ops {

/// Geometry of a square-kernel 2-d convolution over one image (per-image sizes, no batch axis).
struct conv_geometry {
    index_t channels = 0, height = 0, width = 0;  ///< input C, H, W
    index_t kernel = 1, stride = 1, padding = 0, dilation = 1;
    index_t out_height = 0, out_width = 0;

    /// Fills out_height / out_width; throws naming `where` if the parameters are invalid or the
    /// (padded) input is smaller than the dilated kernel.
    void finish(std::string_view where) {
        expects(kernel >= 1, where, "kernel must be >= 1, got ", kernel);
        expects(stride >= 1, where, "stride must be >= 1, got ", stride);
        expects(padding >= 0, where, "padding must be >= 0, got ", padding);
        expects(dilation >= 1, where, "dilation must be >= 1, got ", dilation);
        const index_t span = dilation * (kernel - 1) + 1;
        expects(height + 2 * padding >= span && width + 2 * padding >= span, where, "input of ", height, "x", width,
                " with padding ", padding, " is smaller than the kernel extent ", span, " (kernel ", kernel,
                ", dilation ", dilation, ")");
        out_height = (height + 2 * padding - span) / stride + 1;
        out_width = (width + 2 * padding - span) / stride + 1;
    }
    /// Rows of the column matrix: C * k * k.
    TESSEL_HD index_t col_rows() const { return channels * kernel * kernel; }
    /// True when the column matrix *is* the input (1x1 kernel, stride 1, no padding): the GEMM
    /// then reads the image directly and im2col/col2im are skipped.
    TESSEL_HD bool is_pointwise() const { return kernel == 1 && stride == 1 && padding == 0; }
};

/// Elements a work item of im2col/col2im aims to cover; rows wider than this are one item each.
inline constexpr index_t row_chunk_elems = 64;

/// Rows per work item for rows of `width` elements: max(1, row_chunk_elems / width), never more
/// than `rows`.
TESSEL_HD inline index_t row_chunk(index_t width, index_t rows) {
    index_t c = width >= row_chunk_elems ? 1 : row_chunk_elems / (width > 0 ? width : 1);
    if (c > rows) c = rows;
    return c < 1 ? 1 : c;
}

namespace detail {

/// First and one-past-last output column ow whose input column ow*s - p + off lies in [0, W).
TESSEL_HD inline void valid_range(index_t off, index_t stride, index_t pad, index_t in, index_t out,
                                  index_t& lo, index_t& hi) {
    // iw = ow*s + (off - p) >= 0  <=>  ow >= ceil((p - off) / s)
    const index_t a = pad - off;
    lo = a <= 0 ? 0 : (a + stride - 1) / stride;
    // iw < in  <=>  ow*s < in + p - off  <=>  ow <= (in + p - off - 1) / s
    const index_t b = in + pad - off - 1;
    hi = b < 0 ? 0 : b / stride + 1;
    if (hi > out) hi = out;
    if (lo > hi) lo = hi;
}

template <class T>
struct im2col_fn {
    conv_geometry g;
    const T* x;  // one image, C x H x W
    T* col;      // col_rows x (rows * OW)
    index_t oh_begin, rows, chunk, total;  // total = col_rows * rows

    // Work item `item` fills column rows [item * chunk, min(total, (item + 1) * chunk)); row r
    // is tap k = r / rows at output row oh_begin + r % rows.
    TESSEL_HD void operator()(index_t item) const {
        index_t r = item * chunk;
        const index_t end = r + chunk < total ? r + chunk : total;
        index_t k = r / rows, ohr = r % rows;
        for (; r < end; ++r) {
            fill_row(k, ohr);
            if (++ohr == rows) { ohr = 0; ++k; }
        }
    }

    TESSEL_HD void fill_row(index_t k, index_t ohr) const {
        const index_t kk = g.kernel * g.kernel;
        const index_t c = k / kk, kh = (k % kk) / g.kernel, kw = k % g.kernel;
        T* out = col + (k * rows + ohr) * g.out_width;
        const index_t ih = (oh_begin + ohr) * g.stride - g.padding + kh * g.dilation;
        if (ih < 0 || ih >= g.height) {
            for (index_t ow = 0; ow < g.out_width; ++ow) out[ow] = T(0);
            return;
        }
        index_t lo, hi;
        valid_range(kw * g.dilation, g.stride, g.padding, g.width, g.out_width, lo, hi);
        // Indexing from the row start with an offset (never forming a pointer before the row).
        const T* in = x + (c * g.height + ih) * g.width;
        const index_t off = kw * g.dilation - g.padding;
        for (index_t ow = 0; ow < lo; ++ow) out[ow] = T(0);
        if (g.stride == 1)
            for (index_t ow = lo; ow < hi; ++ow) out[ow] = in[ow + off];
        else
            for (index_t ow = lo; ow < hi; ++ow) out[ow] = in[ow * g.stride + off];
        for (index_t ow = hi; ow < g.out_width; ++ow) out[ow] = T(0);
    }
};

template <class T>
struct col2im_fn {
    conv_geometry g;
    const T* col;  // col_rows x (rows * OW)
    T* x;          // one image, C x H x W; accumulated into
    index_t oh_begin, rows, ih_begin, ih_rows, chunk, total;  // total = C * ih_rows

    // Work item `item` accumulates input rows [item * chunk, min(total, (item + 1) * chunk)).
    TESSEL_HD void operator()(index_t item) const {
        const index_t begin = item * chunk;
        const index_t end = begin + chunk < total ? begin + chunk : total;
        for (index_t r = begin; r < end; ++r) add_row(r / ih_rows, ih_begin + r % ih_rows);
    }

    TESSEL_HD void add_row(index_t c, index_t ih) const {
        T* xrow = x + (c * g.height + ih) * g.width;
        for (index_t kh = 0; kh < g.kernel; ++kh) {
            // The output row that tap kh maps onto input row ih, if any, inside this band.
            const index_t t = ih + g.padding - kh * g.dilation;
            if (t < 0 || t % g.stride != 0) continue;
            const index_t oh = t / g.stride;
            if (oh < oh_begin || oh >= oh_begin + rows) continue;
            for (index_t kw = 0; kw < g.kernel; ++kw) {
                const index_t k = (c * g.kernel + kh) * g.kernel + kw;
                const T* in = col + (k * rows + (oh - oh_begin)) * g.out_width;
                index_t lo, hi;
                valid_range(kw * g.dilation, g.stride, g.padding, g.width, g.out_width, lo, hi);
                const index_t off = kw * g.dilation - g.padding;
                if (g.stride == 1)
                    for (index_t ow = lo; ow < hi; ++ow) xrow[ow + off] += in[ow];
                else
                    for (index_t ow = lo; ow < hi; ++ow) xrow[ow * g.stride + off] += in[ow];
            }
        }
    }
};

}  // namespace detail

/// Writes the column matrix of output rows [oh_begin, oh_end) of image x into col, laid out as
/// col_rows() x ((oh_end - oh_begin) * out_width), row-major.
template <class B, class T>
void im2col(B backend, const conv_geometry& g, const T* x, index_t oh_begin, index_t oh_end, T* col) {
    const index_t rows = oh_end - oh_begin;
    if (rows <= 0) return;
    const index_t total = g.col_rows() * rows, chunk = row_chunk(g.out_width, total);
    parallel_for(backend, (total + chunk - 1) / chunk, detail::im2col_fn<T>{g, x, col, oh_begin, rows, chunk, total});
}

/// The adjoint of im2col: adds each column-matrix entry of output rows [oh_begin, oh_end) back
/// onto the input pixel it was read from (entries read from the padding are dropped). x is
/// accumulated into, so a caller tiling over rows zeroes it once and calls this per band.
template <class B, class T>
void col2im(B backend, const conv_geometry& g, const T* col, index_t oh_begin, index_t oh_end, T* x) {
    const index_t rows = oh_end - oh_begin;
    if (rows <= 0) return;
    // Input rows the band touches: from the first tap of its first row to the last tap of its last.
    index_t ih_begin = oh_begin * g.stride - g.padding;
    index_t ih_end = (oh_end - 1) * g.stride - g.padding + (g.kernel - 1) * g.dilation + 1;
    if (ih_begin < 0) ih_begin = 0;
    if (ih_end > g.height) ih_end = g.height;
    if (ih_end <= ih_begin) return;
    const index_t ih_rows = ih_end - ih_begin;
    const index_t total = g.channels * ih_rows, chunk = row_chunk(g.width, total);
    parallel_for(backend, (total + chunk - 1) / chunk,
                 detail::col2im_fn<T>{g, col, x, oh_begin, rows, ih_begin, ih_rows, chunk, total});
}

}  // namespace tessel::ops
