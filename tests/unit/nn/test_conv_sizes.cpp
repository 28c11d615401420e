// conv2d at the sizes that reach each path of ops::conv2d_engine, against direct loops written
// in the test (conv_reference.hpp for the forward, conv2d_backward below for the gradients):
//   * one band (the whole image) and several, including bands made by the channel count alone at
//     the default 4 MiB workspace (rows per band = workspace / (C k^2 OW sizeof(T))), uneven last
//     bands, one-row bands whose col2im cannot run in two phases on cpu_omp (kernel 5) and
//     two-row bands that can (kernel 3);
//   * pointwise convolutions in one and in several 4096-pixel blocks;
//   * single-row, single-column and single-pixel images, odd and even sizes, strides 1 and 2;
//   * cpu_omp on 1 and 2 threads: outputs and input gradients identical to the bit (each band's
//     values are computed by one GEMM either way), weight gradients equal up to summation order
//     (2 threads sum per band group, 1 thread in band order).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "conv_reference.hpp"
#include "support/backend_test.hpp"
#include "tessel/autograd/check_gradients.hpp"
#include "tessel/nn/conv2d.hpp"

#if TESSEL_HAS_OPENMP
#  include <omp.h>
#endif

namespace ts = tessel;

namespace {

/// dx = sum over outputs of w * dy scattered back, dw = sum dy * x, db = sum dy (the adjoint of
/// conv_ref::conv2d, written from its definition).
struct conv_grads {
    ts::tensor<double> dx, dw, db;
};
conv_grads conv2d_backward(const ts::tensor<double>& x, const ts::tensor<double>& w, const ts::tensor<double>& dy,
                           conv_ref::params q) {
    const auto N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), O = w.dim(0);
    const auto OH = dy.dim(2), OW = dy.dim(3);
    conv_grads g{ts::tensor<double>(x.shape(), 0.0), ts::tensor<double>(w.shape(), 0.0),
                 ts::tensor<double>(ts::shape{O}, 0.0)};
    for (ts::index_t n = 0; n < N; ++n)
        for (ts::index_t o = 0; o < O; ++o)
            for (ts::index_t oh = 0; oh < OH; ++oh)
                for (ts::index_t ow = 0; ow < OW; ++ow) {
                    const double d = dy(n, o, oh, ow);
                    g.db[o] += d;
                    for (ts::index_t c = 0; c < C; ++c)
                        for (ts::index_t kh = 0; kh < q.k; ++kh)
                            for (ts::index_t kw = 0; kw < q.k; ++kw) {
                                const auto ih = oh * q.s - q.p + kh * q.d, iw = ow * q.s - q.p + kw * q.d;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                g.dx(n, c, ih, iw) += w(o, c, kh, kw) * d;
                                g.dw(o, c, kh, kw) += x(n, c, ih, iw) * d;
                            }
                }
    return g;
}

/// Largest |a - b| / max(1, |b|).
double rel_diff(const ts::tensor<double>& a, const ts::tensor<double>& b) {
    REQUIRE(a.shape() == b.shape());
    double m = 0;
    for (ts::index_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i])));
    return m;
}

struct size_case {
    const char* what;
    ts::index_t in, out, k, s, p, d, n, h, w;
    std::size_t workspace_bytes;  ///< 0: the default
    ts::index_t expect_band_rows;  ///< rows per band the case is meant to reach (double)
};

// Band rows for double: workspace_bytes / (in k^2 OW 8), clamped to [1, OH].
const size_case size_cases[] = {
    {"single row, 3x3, one band", 3, 4, 3, 1, 1, 1, 2, 1, 9, 0, 1},
    {"single column, 3x3, one band", 3, 4, 3, 1, 1, 1, 2, 9, 1, 0, 9},
    {"single pixel, 3x3 padded", 5, 3, 3, 1, 1, 1, 1, 1, 1, 0, 1},
    {"single row, stride 2, odd width", 2, 3, 3, 2, 1, 1, 1, 1, 11, 0, 1},
    {"single column, 5x5 dilated", 2, 2, 5, 1, 4, 2, 1, 7, 1, 0, 7},
    {"even sizes, stride 2", 4, 6, 3, 2, 1, 1, 2, 8, 6, 0, 4},
    // 900 channels: 900 * 9 * 8 * 8 = 518400 bytes a row -> 8 rows of 8 fit: one band.
    {"900 channels, 8x8: one band at the default workspace", 900, 2, 3, 1, 1, 1, 1, 8, 8, 0, 8},
    // 1000 channels: 576000 bytes a row -> 7 rows: bands of 7 and 1.
    {"1000 channels, 8x8: two uneven bands at the default workspace", 1000, 2, 3, 1, 1, 1, 1, 8, 8, 0, 7},
    // 3 * 9 * 9 * 8 = 1944 bytes a row; 2 rows fit in 4000 bytes: 5 bands of 2, 2, 2, 2, 1.
    {"two-row bands, 3x3 (col2im in two phases on cpu_omp)", 3, 5, 3, 1, 1, 1, 2, 9, 9, 4000, 2},
    // 3 * 25 * 9 * 8 = 5400 bytes a row; 1 row fits: one-row bands, kernel extent 5 > 2 rows.
    {"one-row bands, 5x5 (col2im in band order on cpu_omp)", 3, 4, 5, 1, 2, 1, 1, 9, 9, 6000, 1},
    {"one-row bands, odd height, stride 2", 3, 4, 3, 2, 1, 1, 1, 9, 7, 500, 1},
    {"130 output channels, two-row bands", 4, 130, 3, 1, 1, 1, 1, 6, 5, 4 * 9 * 5 * 8 * 2, 2},
    // Pointwise: no column buffer; pixels in 4096-pixel blocks (1 x 5000: two blocks).
    {"pointwise, single row of 5000 pixels: two blocks", 3, 2, 1, 1, 0, 1, 1, 1, 5000, 0, 1},
    {"pointwise, single column of 4096 pixels: one full block", 3, 2, 1, 1, 0, 1, 1, 4096, 1, 0, 4096},
};

template <class B>
void check_case(const size_case& c) {
    INFO(c.what);
    const conv_ref::params q{c.k, c.s, c.p, c.d};
    ts::nn::conv2d::config cfg{.in_channels = c.in, .out_channels = c.out, .kernel = c.k, .stride = c.s,
                               .padding = c.p, .dilation = c.d};
    if (c.workspace_bytes > 0) cfg.workspace_bytes = c.workspace_bytes;
    ts::rng init(11);
    ts::nn::conv2d::bind<B, double> layer(cfg, init);
    ts::nn::context<B> ctx;
    const auto x = conv_ref::random_tensor(ts::shape{c.n, c.in, c.h, c.w}, 12);
    const auto xb = x.to<B>();
    const auto y = layer.forward(ctx, xb).template to<ts::cpu_serial>();
    CHECK(layer.band_rows() == c.expect_band_rows);
    const auto w = layer.weight().template to<ts::cpu_serial>();
    const auto b = layer.bias().template to<ts::cpu_serial>();
    const auto ref = conv_ref::conv2d(x, w, &b, q);
    CHECK(rel_diff(y, ref) < 1e-12);

    const auto dy = conv_ref::random_tensor(ref.shape(), 13);
    const auto dx = layer.backward(ctx, dy.template to<B>()).template to<ts::cpu_serial>();
    const auto g = conv2d_backward(x, w, dy, q);
    CHECK(rel_diff(dx, g.dx) < 1e-12);
    CHECK(rel_diff(layer.parameters()[0].grad->template to<ts::cpu_serial>(), g.dw) < 1e-11);
    CHECK(rel_diff(layer.parameters()[1].grad->template to<ts::cpu_serial>(), g.db) < 1e-11);
}

/// Largest |a - b| / max(1, |b|) of two flat vectors of the same size.
double rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
    REQUIRE(a.size() == b.size());
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i])));
    return m;
}

}  // namespace

template <class B>
void conv_every_size_equals_direct_loops() {
    for (const auto& c : size_cases) check_case<B>(c);
}
TESSEL_BACKEND_TEST("conv2d: one band, several bands, pointwise blocks, single rows and columns equal direct loops",
                    conv_every_size_equals_direct_loops)

TEST_CASE("conv2d: single-row and single-column images pass the finite-difference check") {
    for (const auto& [h, w] : {std::pair<ts::index_t, ts::index_t>{1, 6}, {6, 1}, {1, 1}}) {
        CAPTURE(h);
        CAPTURE(w);
        const auto r = ts::autograd::check_gradients<ts::nn::conv2d>(
            {.in_channels = 2, .out_channels = 3, .kernel = 3, .padding = 1}, ts::shape{2, 2, h, w});
        INFO(r.report);
        CHECK(r.passed);
    }
}

#if TESSEL_HAS_OPENMP
TEST_CASE("conv2d: cpu_omp on 1, 2 and 3 threads: outputs identical, gradients identical above 1 thread") {
    // Outputs: each band's values come from one GEMM, whichever thread runs it. Gradients: above
    // one thread the weight-gradient partials are summed per fixed band group, and col2im runs on
    // even bands, then odd bands; both orders are fixed by the geometry, so 2 and 3 threads agree
    // to the bit. One thread sums in band order: the same values up to rounding, and to the bit
    // where the orders coincide (one band, pointwise blocks that never overlap, or two bands).
    const int before = omp_get_max_threads();
    for (const auto& c : size_cases) {
        INFO(c.what);
        ts::nn::conv2d::config cfg{.in_channels = c.in, .out_channels = c.out, .kernel = c.k, .stride = c.s,
                                   .padding = c.p, .dilation = c.d};
        if (c.workspace_bytes > 0) cfg.workspace_bytes = c.workspace_bytes;
        const auto x = conv_ref::random_tensor(ts::shape{c.n, c.in, c.h, c.w}, 14).to<ts::cpu_omp>();
        std::vector<std::vector<double>> ys, dxs, dws;
        for (const int threads : {1, 2, 3}) {
            omp_set_num_threads(threads);
            ts::rng init(15);
            ts::nn::conv2d::bind<ts::cpu_omp, double> layer(cfg, init);
            ts::nn::context<ts::cpu_omp> ctx;
            const auto& y = layer.forward(ctx, x);
            ys.push_back(y.to_vector());
            const auto dy = conv_ref::random_tensor(y.shape(), 16).to<ts::cpu_omp>();
            dxs.push_back(layer.backward(ctx, dy).to_vector());
            dws.push_back(layer.parameters()[0].grad->to_vector());
        }
        CHECK(ys[0] == ys[1]);
        CHECK(ys[1] == ys[2]);
        CHECK(dxs[1] == dxs[2]);
        CHECK(dws[1] == dws[2]);
        const ts::index_t out_h = (c.h + 2 * c.p - c.d * (c.k - 1) - 1) / c.s + 1;
        const bool pointwise = c.k == 1 && c.s == 1 && c.p == 0;
        if (pointwise || (out_h + c.expect_band_rows - 1) / c.expect_band_rows <= 2)
            CHECK(dxs[0] == dxs[1]);
        else
            CHECK(rel_diff(dxs[0], dxs[1]) < 1e-13);
        CHECK(rel_diff(dws[0], dws[1]) < 1e-12);
    }
    omp_set_num_threads(before);
}
#endif
