// Test support for the conv tests: direct (loop) convolutions, written from the definitions and
// independent of im2col/GEMM.
#pragma once
#include "tessel/core/random.hpp"
#include "tessel/core/tensor.hpp"

namespace conv_ref {

namespace ts = tessel;

struct params {
    ts::index_t k, s, p, d;
};

/// y[n,o,oh,ow] = b[o] + sum_{c,kh,kw} w[o,c,kh,kw] x[n,c,oh*s-p+kh*d, ow*s-p+kw*d].
inline ts::tensor<double> conv2d(const ts::tensor<double>& x, const ts::tensor<double>& w, const ts::tensor<double>* b,
                                 params q) {
    const auto N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), O = w.dim(0);
    const auto span = q.d * (q.k - 1) + 1;
    const auto OH = (H + 2 * q.p - span) / q.s + 1, OW = (W + 2 * q.p - span) / q.s + 1;
    ts::tensor<double> y(ts::shape{N, O, OH, OW});
    for (ts::index_t n = 0; n < N; ++n)
        for (ts::index_t o = 0; o < O; ++o)
            for (ts::index_t oh = 0; oh < OH; ++oh)
                for (ts::index_t ow = 0; ow < OW; ++ow) {
                    double s = b ? (*b)[o] : 0.0;
                    for (ts::index_t c = 0; c < C; ++c)
                        for (ts::index_t kh = 0; kh < q.k; ++kh)
                            for (ts::index_t kw = 0; kw < q.k; ++kw) {
                                const auto ih = oh * q.s - q.p + kh * q.d, iw = ow * q.s - q.p + kw * q.d;
                                if (ih >= 0 && ih < H && iw >= 0 && iw < W) s += w(o, c, kh, kw) * x(n, c, ih, iw);
                            }
                    y(n, o, oh, ow) = s;
                }
    return y;
}

/// Transposed convolution by scattering each input value through the kernel (weights [in, out, k, k]).
inline ts::tensor<double> conv_transpose2d(const ts::tensor<double>& x, const ts::tensor<double>& w,
                                           const ts::tensor<double>* b, params q, ts::index_t output_padding) {
    const auto N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), O = w.dim(1);
    const auto OH = (H - 1) * q.s - 2 * q.p + q.d * (q.k - 1) + output_padding + 1;
    const auto OW = (W - 1) * q.s - 2 * q.p + q.d * (q.k - 1) + output_padding + 1;
    ts::tensor<double> y(ts::shape{N, O, OH, OW});
    for (ts::index_t n = 0; n < N; ++n)
        for (ts::index_t o = 0; o < O; ++o)
            for (ts::index_t i = 0; i < OH * OW; ++i) y[(n * O + o) * OH * OW + i] = b ? (*b)[o] : 0.0;
    for (ts::index_t n = 0; n < N; ++n)
        for (ts::index_t c = 0; c < C; ++c)
            for (ts::index_t h = 0; h < H; ++h)
                for (ts::index_t ww = 0; ww < W; ++ww)
                    for (ts::index_t o = 0; o < O; ++o)
                        for (ts::index_t kh = 0; kh < q.k; ++kh)
                            for (ts::index_t kw = 0; kw < q.k; ++kw) {
                                const auto oh = h * q.s - q.p + kh * q.d, ow = ww * q.s - q.p + kw * q.d;
                                if (oh >= 0 && oh < OH && ow >= 0 && ow < OW)
                                    y(n, o, oh, ow) += x(n, c, h, ww) * w(c, o, kh, kw);
                            }
    return y;
}

inline ts::tensor<double> random_tensor(const ts::shape& s, std::uint64_t seed) {
    ts::rng g(seed);
    ts::tensor<double> t(s);
    for (ts::index_t i = 0; i < t.numel(); ++i) t[i] = g.uniform(-1.0, 1.0);
    return t;
}

inline double max_abs_diff(const ts::tensor<double>& a, const ts::tensor<double>& b) {
    double m = 0;
    for (ts::index_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}

}  // namespace conv_ref
