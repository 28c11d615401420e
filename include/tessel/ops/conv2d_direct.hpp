// tessel/ops/conv2d_direct.hpp: direct 3x3 convolution on the target's float vectors, the engine
// for small channel counts (GraPL's 3 -> 32 -> 8 patch network, a first layer on RGB).
//
// ops::conv2d_engine runs a convolution as im2col + GEMM. With few channels the GEMM is small and
// most of the time goes into building and reading the column buffer (GraPL's second conv alone
// moves 85 MB of columns per training step). This engine builds none: every tensor is a stack of
// "tiles" (one per image, per patch or per band of rows) whose rows are padded to a multiple of
// the vector width (core/simd.hpp: 16 lanes with AVX-512, 8 with AVX2, 4 with SSE2 or NEON), so an
// output row is a whole number of vector registers and a 3x3 tap is an unaligned vector load at a
// fixed offset. Lanes past a row's valid width compute throw-away values that no valid output
// reads; statistics mask them, and gradients are zero there by construction. Register blocks (how
// many output channels share a loaded input vector) are sized from the target's register count.
//
// Two levels:
//   * the tile kernels in ops::direct (conv_forward, conv_backward_data, conv_backward_weight,
//     channel_moments) for callers that keep their tensors in tiles across layers
//     (methods/grapl_cnn.hpp fuses a whole patch network on them);
//   * conv2d_direct_engine<B>, the drop-in alternative to conv2d_engine behind nn::conv2d
//     (config::engine), which packs an NCHW image into tiles, runs the kernels over bands of rows
//     on the backend's threads and unpacks. Kernel 3, stride 1, dilation 1, any padding, float,
//     host backends. Band count depends only on the image height, and partial weight gradients
//     are reduced in band order, so results do not depend on the thread count.
// Measurements and the selection rule of nn::conv2d: docs/nn_conv.md.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

#include "tessel/backend/parallel.hpp"
#include "tessel/core/simd.hpp"
#include "tessel/ops/im2col.hpp"

namespace tessel::ops {

namespace direct {

using simd::lane_sum;
using simd::lanes;
using simd::load;
using simd::splat;
using simd::store;
using simd::vfloat;
using simd::vuint;

inline index_t round_up(index_t v, index_t m) { return (v + m - 1) / m * m; }

// Register blocking. A direct conv keeps conv_rows x conv_channels accumulators, conv_rows input
// vectors and one broadcast weight live: 8 x 2 + 3 = 19 of 32 registers, 4 x 2 + 3 = 11 of 16.
// (Issue 11: fixed 64-byte vectors and 8 x 2 blocks on AVX2 meant 32 ymm accumulators, which
// spilled; 40 s per image on Zen 2.)
inline constexpr int conv_rows = 2;
inline constexpr int conv_channels = simd::vector_registers >= 32 ? 8 : 4;
// The weight gradient keeps 9 tap accumulators per output channel plus that channel's dout vector
// and either one input vector or, in the rolling form, a 3 x 3 window: two channels with the
// window are 2 x 10 + 9 = 29 registers, one channel without it 11.
inline constexpr int weight_grad_channels = simd::vector_registers >= 32 ? 2 : 1;
inline constexpr bool rolling_window_fits = 2 * (9 + 1) + 9 <= simd::vector_registers;

/// Calls run.template operator()<W>(first) over [0, count) in blocks of Widest, then 4, 2 and 1
/// channels: single-channel blocks have too few independent accumulators to hide FMA latency.
template <int Widest, class Run>
inline void in_channel_blocks(index_t count, Run&& run) {
    index_t o = 0;
    for (; o + Widest <= count; o += Widest) run.template operator()<Widest>(o);
    if constexpr (Widest > 4)
        for (; o + 4 <= count; o += 4) run.template operator()<4>(o);
    if constexpr (Widest > 2)
        for (; o + 2 <= count; o += 2) run.template operator()<2>(o);
    for (; o < count; ++o) run.template operator()<1>(o);
}


/// Geometry of one tile: h x w valid values per channel plane, rows `stride` floats apart (a
/// multiple of the vector width), planes `plane` floats apart with `lead` zero floats before row 0
/// (space for the negative offsets of a transposed conv) and, after the last row, `trail_rows`
/// zero rows plus room for a vector load that starts `overflow` floats past the end of the last
/// row (a k-wide kernel reads k - 1 floats past a row). Rows hold at least `min_row` floats, so that the tiles of
/// a patch's layers can share one stride (conv_backward_weight needs that).
struct tile {
    index_t h = 0, w = 0, stride = 0, lead = 0, plane = 0;
    static tile make(index_t h, index_t w, index_t lead_rows = 0, index_t trail_rows = 0, index_t overflow = lanes,
                     index_t min_row = 0) {
        tile t{h, w, round_up(std::max(w, min_row), lanes), 0, 0};
        t.lead = lead_rows > 0 ? lead_rows * t.stride + lanes : 0;
        t.plane = t.lead + (h + trail_rows) * t.stride + round_up(overflow, lanes) + lanes;
        return t;
    }
    [[nodiscard]] index_t body() const noexcept { return h * stride; }
};

/// Per-lane 0/1 masks of the valid columns of a row of `t`.
inline std::vector<vfloat> column_masks(const tile& t) {
    std::vector<vfloat> m(static_cast<std::size_t>(t.stride / lanes));
    for (index_t v = 0; v < t.stride / lanes; ++v)
        for (index_t l = 0; l < lanes; ++l) m[static_cast<std::size_t>(v)][l] = v * lanes + l < t.w ? 1.0f : 0.0f;
    return m;
}

/// Valid cross-correlation: out[o][y][x] = bias[o] + sum_{c,dy,dx} w[o][c][dy][dx] in[c][y+dy][x+dx]
/// for o in [o0, o0 + OB), y < out.h and every lane of a row (lanes past out.w are throw-away).
/// RB output rows share each broadcast weight, so the loop issues fewer loads than FMAs.
template <int OB, int RB>
inline void conv_forward_rows(const float* in, const tile& ti, index_t cin, const float* w, const float* bias, index_t k,
                              index_t o0, float* out, const tile& to, index_t y, index_t v) {
    const index_t kk = k * k, wo = cin * kk;
    vfloat acc[RB][OB];
    TESSEL_UNROLL for (int j = 0; j < OB; ++j) {
        const vfloat b = splat(bias ? bias[o0 + j] : 0.0f);
        TESSEL_UNROLL for (int r = 0; r < RB; ++r) acc[r][j] = b;
    }
    for (index_t c = 0; c < cin; ++c)
        for (index_t dy = 0; dy < k; ++dy) {
            const float* row = in + c * ti.plane + ti.lead + (y + dy) * ti.stride + v * lanes;
            const float* wr = w + o0 * wo + c * kk + dy * k;
            for (index_t dx = 0; dx < k; ++dx) {
                vfloat x[RB];
                TESSEL_UNROLL for (int r = 0; r < RB; ++r) x[r] = load(row + r * ti.stride + dx);
                TESSEL_UNROLL for (int j = 0; j < OB; ++j) {
                    const float wj = wr[j * wo + dx];
                    TESSEL_UNROLL for (int r = 0; r < RB; ++r) acc[r][j] += wj * x[r];
                }
            }
        }
    TESSEL_UNROLL for (int r = 0; r < RB; ++r)
        TESSEL_UNROLL for (int j = 0; j < OB; ++j) store(out + (o0 + j) * to.plane + to.lead + (y + r) * to.stride + v * lanes, acc[r][j]);
}
template <int OB>
inline void conv_forward_block(const float* in, const tile& ti, index_t cin, const float* w, const float* bias,
                               index_t k, index_t o0, float* out, const tile& to) {
    const index_t vecs = to.stride / lanes;
    index_t y = 0;
    for (; y + conv_rows <= to.h; y += conv_rows)
        for (index_t v = 0; v < vecs; ++v) conv_forward_rows<OB, conv_rows>(in, ti, cin, w, bias, k, o0, out, to, y, v);
    for (; y < to.h; ++y)
        for (index_t v = 0; v < vecs; ++v) conv_forward_rows<OB, 1>(in, ti, cin, w, bias, k, o0, out, to, y, v);
}
inline void conv_forward(const float* in, const tile& ti, index_t cin, const float* w, const float* bias, index_t cout,
                         index_t k, float* out, const tile& to) {
    in_channel_blocks<conv_channels>(
        cout, [&]<int OB>(index_t o) { conv_forward_block<OB>(in, ti, cin, w, bias, k, o, out, to); });
}

/// Input gradient of a 3x3 valid conv, gather form: din[c][y][x] = sum_{o,dy,dx} w[o][c][dy][dx]
/// dout[o][y-dy][x-dx] over the whole input tile; dout must hold zeros outside its valid values
/// (lead rows, throw-away lanes, trailing rows).
template <int CB, int RB>
inline void conv_backward_data_rows(const float* dout, const tile& to, index_t cout, const float* w, index_t cin,
                                    index_t c0, float* din, const tile& ti, index_t y, index_t v) {
    vfloat acc[RB][CB];
    TESSEL_UNROLL for (int r = 0; r < RB; ++r)
        TESSEL_UNROLL for (int j = 0; j < CB; ++j) acc[r][j] = vfloat{};
    for (index_t o = 0; o < cout; ++o)
        for (index_t dy = 0; dy < 3; ++dy) {
            const float* row = dout + o * to.plane + to.lead + (y - dy) * to.stride + v * lanes;
            const float* wr = w + (o * cin + c0) * 9 + dy * 3;
            for (index_t dx = 0; dx < 3; ++dx) {
                vfloat g[RB];
                TESSEL_UNROLL for (int r = 0; r < RB; ++r) g[r] = load(row + r * to.stride - dx);
                TESSEL_UNROLL for (int j = 0; j < CB; ++j) {
                    const float wj = wr[j * 9 + dx];
                    TESSEL_UNROLL for (int r = 0; r < RB; ++r) acc[r][j] += wj * g[r];
                }
            }
        }
    TESSEL_UNROLL for (int r = 0; r < RB; ++r)
        TESSEL_UNROLL for (int j = 0; j < CB; ++j) store(din + (c0 + j) * ti.plane + ti.lead + (y + r) * ti.stride + v * lanes, acc[r][j]);
}
template <int CB>
inline void conv_backward_data_block(const float* dout, const tile& to, index_t cout, const float* w, index_t cin,
                                     index_t c0, float* din, const tile& ti) {
    const index_t vecs = ti.stride / lanes;
    index_t y = 0;
    for (; y + conv_rows <= ti.h; y += conv_rows)
        for (index_t v = 0; v < vecs; ++v) conv_backward_data_rows<CB, conv_rows>(dout, to, cout, w, cin, c0, din, ti, y, v);
    for (; y < ti.h; ++y)
        for (index_t v = 0; v < vecs; ++v) conv_backward_data_rows<CB, 1>(dout, to, cout, w, cin, c0, din, ti, y, v);
}
inline void conv_backward_data(const float* dout, const tile& to, index_t cout, const float* w, index_t cin, float* din,
                               const tile& ti) {
    in_channel_blocks<conv_channels>(
        cin, [&]<int CB>(index_t c) { conv_backward_data_block<CB>(dout, to, cout, w, cin, c, din, ti); });
}

/// Weight gradient of a 3x3 valid conv into per-lane accumulators acc[o][c][tap][lanes]:
/// += dout[o][q] in[c][q + tap offset] over the output rows; dout is zero at throw-away lanes.
/// Output and input positions are the same offset q, so both tiles must have the same stride
/// (with 16 or 8 lanes a patch's 16-, 14- and 12-float rows all round up to 16; with 4 they would
/// not, hence tile::make's min_row).
/// OneVectorRows (rows of one vector: stride == lanes, e.g. 16-px patches with AVX-512): the input
/// vector of tap (dy, dx) at output row q is the one of tap (dy - 1, dx) at row q + 1, so a
/// rolling window of 3 rows x 3 shifts needs 3 new loads per row instead of 9; it is used only
/// where its 9 window registers fit beside the accumulators. Both forms add the same products in
/// the same order.
template <int OB, bool OneVectorRows>
inline void conv_backward_weight_block(const float* dout, const tile& to, const float* in, const tile& ti, index_t cin,
                                       index_t o0, float* acc) {
    index_t off[9];
    for (index_t t = 0; t < 9; ++t) off[t] = (t / 3) * ti.stride + t % 3;
    const index_t qv = to.body() / lanes;
    for (index_t c = 0; c < cin; ++c) {
        vfloat a[OB][9];
        TESSEL_UNROLL for (int j = 0; j < OB; ++j)
            TESSEL_UNROLL for (int t = 0; t < 9; ++t) a[j][t] = vfloat{};
        const float* src = in + c * ti.plane + ti.lead;
        vfloat w[3][3];  // OneVectorRows: w[dy][dx] = input row q + dy shifted by dx
        if constexpr (OneVectorRows)
            TESSEL_UNROLL for (int dy = 0; dy < 2; ++dy)
                TESSEL_UNROLL for (int dx = 0; dx < 3; ++dx) w[dy][dx] = load(src + dy * lanes + dx);
        for (index_t q = 0; q < qv; ++q) {
            vfloat d[OB];
            TESSEL_UNROLL for (int j = 0; j < OB; ++j) d[j] = load(dout + (o0 + j) * to.plane + to.lead + q * lanes);
            if constexpr (OneVectorRows) {
                TESSEL_UNROLL for (int dx = 0; dx < 3; ++dx) w[2][dx] = load(src + (q + 2) * lanes + dx);
                TESSEL_UNROLL for (int t = 0; t < 9; ++t)
                    TESSEL_UNROLL for (int j = 0; j < OB; ++j) a[j][t] += d[j] * w[t / 3][t % 3];
                TESSEL_UNROLL for (int dx = 0; dx < 3; ++dx) w[0][dx] = w[1][dx], w[1][dx] = w[2][dx];
            } else {
                TESSEL_UNROLL for (int t = 0; t < 9; ++t) {
                    const vfloat x = load(src + q * lanes + off[t]);
                    TESSEL_UNROLL for (int j = 0; j < OB; ++j) a[j][t] += d[j] * x;
                }
            }
        }
        TESSEL_UNROLL for (int j = 0; j < OB; ++j)
            TESSEL_UNROLL for (int t = 0; t < 9; ++t) {
                float* dst = acc + (((o0 + j) * cin + c) * 9 + t) * lanes;
                store(dst, load(dst) + a[j][t]);
            }
    }
}
inline void conv_backward_weight(const float* dout, const tile& to, index_t cout, const float* in, const tile& ti,
                                 index_t cin, float* acc) {
    // weight_grad_channels output channels at a time: with 32 registers, 2 x 9 accumulators stay
    // in registers and three channels (27) spill.
    auto run = [&](auto one_vector_rows) {
        constexpr bool R = decltype(one_vector_rows)::value;
        in_channel_blocks<weight_grad_channels>(
            cout, [&]<int OB>(index_t o) { conv_backward_weight_block<OB, R>(dout, to, in, ti, cin, o, acc); });
    };
    if constexpr (rolling_window_fits)
        if (ti.stride == lanes) return run(std::true_type{});
    run(std::false_type{});
}

/// Per-channel sum and sum of squares of the valid values of a tile (in double).
inline void channel_moments(const float* y, const tile& t, index_t channels, const std::vector<vfloat>& colmask,
                            double* sum, double* sum2) {
    const index_t vecs = t.stride / lanes;
    for (index_t c = 0; c < channels; ++c) {
        vfloat s{}, s2{};
        const float* p = y + c * t.plane + t.lead;
        for (index_t r = 0; r < t.h; ++r)
            for (index_t v = 0; v < vecs; ++v) {
                const vfloat x = load(p + r * t.stride + v * lanes) * colmask[static_cast<std::size_t>(v)];
                s += x;
                s2 += x * x;
            }
        sum[c] += lane_sum(s);
        sum2[c] += lane_sum(s2);
    }
}

}  // namespace direct

/// The direct engine behind nn::conv2d for 3x3, stride-1, undilated convolutions: the same three
/// products as conv2d_engine (forward, input gradient, weight gradient) on one NCHW image.
/// Work runs over a fixed number of bands of rows (it depends on the image height only), each
/// band in chunks of a few rows that are packed, computed and unpacked while they are in cache:
/// packing the whole image first and unpacking after doubled the memory traffic, which is what
/// a convolution with few input channels is bound by. Scratch is allocated by configure and
/// reused, so the steady state does not allocate.
template <Backend B, class T = float>
class conv2d_direct_engine {
    static_assert(HostBackend<B>, "tessel::ops::conv2d_direct_engine runs on host backends");
    static_assert(std::is_same_v<T, float>, "tessel::ops::conv2d_direct_engine computes in float");
    using tile = direct::tile;
    static constexpr index_t L = direct::lanes;

public:
    /// True when the engine computes this geometry: a 3x3 kernel, stride 1, dilation 1.
    static constexpr bool supports(const conv_geometry& g) noexcept {
        return g.kernel == 3 && g.stride == 1 && g.dilation == 1;
    }

    /// Sets the geometry (g.finish() must have run) and the number of output channels, and sizes
    /// the tiles. Throws naming the engine when supports(g) is false.
    void configure(const conv_geometry& g, index_t out_channels) {
        expects(supports(g), "tessel::ops::conv2d_direct_engine", "needs a 3x3 kernel, stride 1 and dilation 1, got kernel ",
                g.kernel, ", stride ", g.stride, ", dilation ", g.dilation);
        m_g = g;
        m_out = out_channels;
        const index_t ph = g.height + 2 * g.padding, pw = g.width + 2 * g.padding;
        // One stride for all three tiles: conv_backward_weight pairs output and input positions
        // by offset. The output-gradient tile has two zero rows (and floats) before and after its
        // body for the gather form of the input gradient.
        m_in = tile::make(ph, pw, 0, 0, L, pw);
        m_y = tile::make(g.out_height, g.out_width, 0, 0, L, pw);
        m_dy = tile::make(g.out_height, g.out_width, 2, 2, L, pw);
        m_bands = std::min<index_t>(max_bands, std::max<index_t>(1, (g.out_height + min_band_rows - 1) / min_band_rows));
        // Chunks: as many rows as keep a chunk of the widest side (all channels) near chunk_bytes.
        const index_t wide = std::max(g.channels, m_out);
        m_chunk = std::clamp<index_t>(static_cast<index_t>(chunk_bytes / (sizeof(float) * static_cast<std::size_t>(wide * m_in.stride))),
                                      2, 64);
        m_x_buf.assign(static_cast<std::size_t>(g.channels * m_in.plane), 0.0f);
        m_y_buf.assign(static_cast<std::size_t>(m_out * m_y.plane), 0.0f);
        m_dy_buf.clear();
        m_dx_buf.clear();
        m_lanes.clear();
    }

    /// y = conv(W, x) + bias (bias may be null) + beta * y, beta 0 or 1.
    void forward(const T* w, const T* bias, const T* x, T* y, T beta) {
        pack_input(x);
        const index_t C = m_g.channels, Co = m_out, OH = m_g.out_height, OW = m_g.out_width;
        parallel_for(B{}, m_bands, [&](index_t b) {
            const auto [y0, y1] = band(b, OH);
            for (index_t r0 = y0; r0 < y1; r0 += m_chunk) {
                const index_t rows = std::min(m_chunk, y1 - r0);
                tile ti = m_in, to = m_y;
                ti.h = rows + 2, to.h = rows;
                direct::conv_forward(m_x_buf.data() + r0 * m_in.stride, ti, C, w, bias, Co, 3,
                                     m_y_buf.data() + r0 * m_y.stride, to);
                for (index_t o = 0; o < Co; ++o)
                    for (index_t r = r0; r < r0 + rows; ++r) {
                        const float* src = m_y_buf.data() + o * m_y.plane + m_y.lead + r * m_y.stride;
                        T* dst = y + (o * OH + r) * OW;
                        if (beta == T(0))
                            std::memcpy(dst, src, static_cast<std::size_t>(OW) * sizeof(T));
                        else
                            for (index_t q = 0; q < OW; ++q) dst[q] += src[q];
                    }
            }
        });
    }

    /// dW = beta_dw * dW + dy (x) x, and (dx != nullptr) dx = W^T dy, or dx += W^T dy when
    /// accumulate. x must be the input of the matching forward; the bias gradient is the caller's.
    void backward(const T* w, const T* x, const T* dy, T* dw, T beta_dw, T* dx, bool accumulate) {
        const index_t C = m_g.channels, Co = m_out, OH = m_g.out_height, OW = m_g.out_width, J = m_bands;
        if (m_dy_buf.empty()) m_dy_buf.assign(static_cast<std::size_t>(Co * m_dy.plane), 0.0f);
        pack_input(x);
        // Weight gradient: per-band lane accumulators, each band in chunk order, bands summed in
        // band order; the output gradient is packed chunk by chunk just before its use.
        const index_t per_band = Co * C * 9 * L;
        m_lanes.assign(static_cast<std::size_t>(J * per_band), 0.0f);
        parallel_for(B{}, J, [&](index_t b) {
            const auto [y0, y1] = band(b, OH);
            for (index_t r0 = y0; r0 < y1; r0 += m_chunk) {
                const index_t rows = std::min(m_chunk, y1 - r0);
                for (index_t o = 0; o < Co; ++o)
                    for (index_t r = r0; r < r0 + rows; ++r)
                        std::memcpy(m_dy_buf.data() + o * m_dy.plane + m_dy.lead + r * m_dy.stride, dy + (o * OH + r) * OW,
                                    static_cast<std::size_t>(OW) * sizeof(T));
                tile to = m_dy, ti = m_in;
                to.h = rows, ti.h = rows + 2;
                direct::conv_backward_weight(m_dy_buf.data() + r0 * m_dy.stride, to, Co, m_x_buf.data() + r0 * m_in.stride,
                                             ti, C, m_lanes.data() + b * per_band);
            }
        });
        parallel_for(B{}, Co * C * 9, [&](index_t i) {
            double s = 0;
            for (index_t b = 0; b < J; ++b) {
                const float* a = m_lanes.data() + b * per_band + i * L;
                for (index_t l = 0; l < L; ++l) s += a[l];
            }
            dw[i] = beta_dw == T(0) ? static_cast<T>(s) : dw[i] + static_cast<T>(s);
        });
        if (dx == nullptr) return;
        if (m_dx_buf.empty()) m_dx_buf.assign(static_cast<std::size_t>(C * m_in.plane), 0.0f);
        const index_t H = m_g.height, W = m_g.width, p = m_g.padding, PH = m_in.h;
        parallel_for(B{}, J, [&](index_t b) {
            const auto [y0, y1] = band(b, PH);
            for (index_t r0 = y0; r0 < y1; r0 += m_chunk) {
                const index_t rows = std::min(m_chunk, y1 - r0);
                tile ti = m_in;
                ti.h = rows;
                direct::conv_backward_data(m_dy_buf.data() + r0 * m_dy.stride, m_dy, Co, w, C,
                                           m_dx_buf.data() + r0 * m_in.stride, ti);
                // Padded rows r0 .. r0 + rows - 1 hold input rows r0 - p ..
                const index_t first = std::max<index_t>(r0, p), last = std::min<index_t>(r0 + rows, p + H);
                for (index_t c = 0; c < C; ++c)
                    for (index_t r = first; r < last; ++r) {
                        const float* src = m_dx_buf.data() + c * m_in.plane + m_in.lead + r * m_in.stride + p;
                        T* dst = dx + (c * H + r - p) * W;
                        if (accumulate)
                            for (index_t q = 0; q < W; ++q) dst[q] += src[q];
                        else
                            std::memcpy(dst, src, static_cast<std::size_t>(W) * sizeof(T));
                    }
            }
        });
    }

    [[nodiscard]] index_t bands() const noexcept { return m_bands; }
    [[nodiscard]] index_t chunk_rows() const noexcept { return m_chunk; }

private:
    // Bands of at least 8 rows, at most 16 bands: enough to keep two threads busy with dynamic
    // load, few enough that the per-band weight-gradient lanes stay small. Chunks near 128 KiB
    // stay in L2 between their compute and their unpacking.
    static constexpr index_t min_band_rows = 8, max_bands = 16;
    static constexpr std::size_t chunk_bytes = std::size_t(128) << 10;

    struct row_range {
        index_t first, last;
    };
    [[nodiscard]] row_range band(index_t b, index_t total) const {
        return {total * b / m_bands, total * (b + 1) / m_bands};
    }

    /// Copies x into the interior of the input tiles; padding and throw-away lanes stay zero.
    void pack_input(const T* x) {
        const index_t H = m_g.height, W = m_g.width, p = m_g.padding;
        parallel_for(B{}, m_g.channels, [&](index_t c) {
            float* dst = m_x_buf.data() + c * m_in.plane + m_in.lead + p * m_in.stride + p;
            const T* src = x + c * H * W;
            for (index_t r = 0; r < H; ++r) std::memcpy(dst + r * m_in.stride, src + r * W, static_cast<std::size_t>(W) * sizeof(T));
        });
    }

    conv_geometry m_g{};
    index_t m_out = 0, m_bands = 1, m_chunk = 2;
    tile m_in{}, m_y{}, m_dy{};
    std::vector<float> m_x_buf, m_y_buf, m_dy_buf, m_dx_buf, m_lanes;
};

}  // namespace tessel::ops
