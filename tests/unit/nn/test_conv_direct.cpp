// nn::conv2d on the direct engine (ops/conv2d_direct.hpp), against direct loops in double written
// from the definitions (conv_reference.hpp and the adjoint below), at the shapes that reach each
// path of the tile kernels:
//   * output-channel blocks of the register width, then 4, 2 and 1 (in_channel_blocks): 1, 3, 5,
//     7, 13 and 32 channels on both sides;
//   * rows that are one vector, several vectors and a partial vector (widths 1, 6, 16, 17, 40 at
//     every vector width of the target), padding 0, 1 and 2;
//   * one band (heights under 8 rows) and several uneven bands (heights 19, 37, 200);
//   * single-row and single-column images; batches of several images;
//   * cpu_omp on 1 and 2 threads: identical to the bit (bands depend only on the height);
//   * the selection rule of conv_engine::automatic and the fallback of `direct` on shapes the
//     engine does not compute (stride 2, 5x5, dilation 2, double).
// The engine computes in float (check_gradients runs layers in double, where nn::conv2d falls back
// to im2col), so its gradients are checked against the adjoint loops at float tolerance; those
// loops are the ones test_conv_sizes.cpp holds the im2col engine to.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "conv_reference.hpp"
#include "support/backend_test.hpp"
#include "tessel/nn/conv2d.hpp"

#if TESSEL_HAS_OPENMP
#  include <omp.h>
#endif

namespace ts = tessel;

namespace {

struct grads {
    ts::tensor<double> dx, dw, db;
};
/// The adjoint of conv_ref::conv2d for stride 1, dilation 1, written from its definition.
grads conv_backward(const ts::tensor<double>& x, const ts::tensor<double>& w, const ts::tensor<double>& dy, ts::index_t k,
                    ts::index_t p) {
    const auto N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), O = w.dim(0), OH = dy.dim(2), OW = dy.dim(3);
    grads g{ts::tensor<double>(x.shape(), 0.0), ts::tensor<double>(w.shape(), 0.0), ts::tensor<double>(ts::shape{O}, 0.0)};
    for (ts::index_t n = 0; n < N; ++n)
        for (ts::index_t o = 0; o < O; ++o)
            for (ts::index_t oh = 0; oh < OH; ++oh)
                for (ts::index_t ow = 0; ow < OW; ++ow) {
                    const double d = dy(n, o, oh, ow);
                    g.db[o] += d;
                    for (ts::index_t c = 0; c < C; ++c)
                        for (ts::index_t kh = 0; kh < k; ++kh)
                            for (ts::index_t kw = 0; kw < k; ++kw) {
                                const auto ih = oh - p + kh, iw = ow - p + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                g.dx(n, c, ih, iw) += w(o, c, kh, kw) * d;
                                g.dw(o, c, kh, kw) += x(n, c, ih, iw) * d;
                            }
                }
    return g;
}

template <class B>
ts::tensor<float, B> to_float(const ts::tensor<double>& t) {
    ts::tensor<float> f(t.shape());
    for (ts::index_t i = 0; i < t.numel(); ++i) f[i] = static_cast<float>(t[i]);
    return f.template to<B>();
}
template <class B>
ts::tensor<double> to_double(const ts::tensor<float, B>& t) {
    const auto h = t.template to<ts::cpu_serial>();
    ts::tensor<double> d(h.shape());
    for (ts::index_t i = 0; i < h.numel(); ++i) d[i] = h[i];
    return d;
}

/// Largest |a - b| / max(1, max |b|): float results of sums of up to a few hundred products.
double scaled_diff(const ts::tensor<double>& a, const ts::tensor<double>& b) {
    REQUIRE(a.shape() == b.shape());
    double m = 0, scale = 1;
    for (ts::index_t i = 0; i < b.numel(); ++i) scale = std::max(scale, std::abs(b[i]));
    for (ts::index_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
    return m / scale;
}

struct direct_case {
    const char* what;
    ts::index_t in, out, p, n, h, w;
};
const direct_case direct_cases[] = {
    {"single row, padded", 3, 5, 1, 2, 1, 9},
    {"single column, padded", 3, 5, 1, 2, 9, 1},
    {"single pixel, padding 1", 2, 3, 1, 1, 1, 1},
    {"valid 3x3 on 3x3: one output", 4, 2, 0, 1, 3, 3},
    {"16-wide rows, no padding", 3, 32, 0, 2, 16, 16},
    {"17-wide rows (one float past a vector), padding 1", 3, 7, 1, 1, 11, 17},
    {"one channel in, thirteen out, padding 2", 1, 13, 2, 1, 19, 6},
    {"32 in, 8 out: GraPL's second layer on a band", 32, 8, 0, 1, 37, 40},
    {"5 in, 3 out, tall: several uneven bands", 5, 3, 1, 1, 200, 7},
    {"32 in, 4 out, 90 wide, 200 tall: several chunks per band", 32, 4, 1, 1, 200, 90},
};

template <class B>
void check_case(const direct_case& c) {
    INFO(c.what);
    ts::nn::conv2d::config cfg{.in_channels = c.in, .out_channels = c.out, .kernel = 3, .padding = c.p,
                               .engine = ts::nn::conv_engine::direct};
    ts::rng init(21);
    ts::nn::conv2d::bind<B, float> layer(cfg, init);
    ts::nn::context<B> ctx;
    const auto x = conv_ref::random_tensor(ts::shape{c.n, c.in, c.h, c.w}, 22);
    const auto xf = to_float<B>(x);
    const auto y = to_double(layer.forward(ctx, xf));
    REQUIRE(layer.uses_direct_engine());
    const auto w = to_double(layer.weight()), b = to_double(layer.bias());
    const auto ref = conv_ref::conv2d(x, w, &b, {3, 1, c.p, 1});
    CHECK(scaled_diff(y, ref) < 2e-6);

    const auto dy = conv_ref::random_tensor(ref.shape(), 23);
    const auto dx = to_double(layer.backward(ctx, to_float<B>(dy)));
    const auto g = conv_backward(x, w, dy, 3, c.p);
    CHECK(scaled_diff(dx, g.dx) < 2e-6);
    CHECK(scaled_diff(to_double(*layer.parameters()[0].grad), g.dw) < 2e-6);
    // The bias gradient is the layer's float channel sum (not the engine's): up to 18000 terms.
    CHECK(scaled_diff(to_double(*layer.parameters()[1].grad), g.db) < 1e-5);

    // A second forward/backward on the same shape reuses the tiles: stale values must not leak.
    const auto x2 = conv_ref::random_tensor(x.shape(), 24);
    const auto x2f = to_float<B>(x2);  // backward reads the forward's input: it must outlive it
    const auto y2 = to_double(layer.forward(ctx, x2f));
    CHECK(scaled_diff(y2, conv_ref::conv2d(x2, w, &b, {3, 1, c.p, 1})) < 2e-6);
    const auto dx2 = to_double(layer.backward(ctx, to_float<B>(dy)));
    CHECK(scaled_diff(dx2, conv_backward(x2, w, dy, 3, c.p).dx) < 2e-6);
}

}  // namespace

TEST_CASE("conv2d direct engine: the test shapes reach one band, several bands and several chunks per band") {
    auto geometry = [](ts::index_t c, ts::index_t h, ts::index_t w, ts::index_t p) {
        ts::ops::conv_geometry g{.channels = c, .height = h, .width = w, .kernel = 3, .padding = p};
        g.finish("test");
        return g;
    };
    ts::ops::conv2d_direct_engine<ts::cpu_serial> e;
    e.configure(geometry(3, 9, 1, 1), 5);
    CHECK(e.bands() == 2);  // 9 output rows: bands of at least 8 rows -> 2
    e.configure(geometry(4, 3, 3, 0), 2);
    CHECK(e.bands() == 1);
    e.configure(geometry(5, 200, 7, 1), 3);
    CHECK(e.bands() == 16);
    CHECK(e.chunk_rows() >= 200 / 16 + 1);  // one chunk per band
    e.configure(geometry(32, 200, 90, 1), 4);
    CHECK(e.bands() == 16);
    CHECK(e.chunk_rows() < 200 / 16);  // several chunks per band
}

template <class B>
void direct_engine_equals_direct_loops() {
    for (const auto& c : direct_cases) check_case<B>(c);
}
TESSEL_BACKEND_TEST("conv2d direct engine: every block width, row width, band count and padding equals direct loops",
                    direct_engine_equals_direct_loops)

TEST_CASE("conv2d direct engine: backward_add_into adds the input gradient, skipping it leaves dW right") {
    ts::nn::conv2d::config cfg{.in_channels = 3, .out_channels = 4, .kernel = 3, .padding = 1,
                               .engine = ts::nn::conv_engine::direct};
    ts::rng init(31);
    ts::nn::conv2d::bind<ts::cpu_serial, float> layer(cfg, init);
    ts::nn::context<ts::cpu_serial> ctx;
    const auto x = conv_ref::random_tensor(ts::shape{1, 3, 10, 12}, 32);
    const auto xf = to_float<ts::cpu_serial>(x);
    const auto y = layer.forward(ctx, xf);
    const auto dy = conv_ref::random_tensor(y.shape(), 33);
    const auto g = conv_backward(x, to_double(layer.weight()), dy, 3, 1);
    ts::tensor<float> acc(x.shape(), 1.0f);
    layer.backward_add_into(ctx, to_float<ts::cpu_serial>(dy), acc);
    ts::tensor<double> expect(x.shape());
    for (ts::index_t i = 0; i < x.numel(); ++i) expect[i] = 1.0 + g.dx[i];
    CHECK(scaled_diff(to_double(acc), expect) < 2e-6);
    layer.set_input_grad_needed(false);
    layer.backward(ctx, to_float<ts::cpu_serial>(dy));
    CHECK(scaled_diff(to_double(*layer.parameters()[0].grad), g.dw) < 2e-6);
}

TEST_CASE("conv2d engine selection: automatic takes the direct engine for 3x3 stride-1 convs on few channels only") {
    using ts::nn::conv_engine;
    auto runs_direct = [](conv_engine e, ts::index_t in, ts::index_t k, ts::index_t s, ts::index_t d,
                          ts::index_t out = 4) {
        ts::nn::conv2d::config cfg{.in_channels = in, .out_channels = out, .kernel = k, .stride = s, .padding = 1,
                                   .dilation = d, .engine = e};
        ts::rng init(41);
        ts::nn::conv2d::bind<ts::cpu_serial, float> layer(cfg, init);
        ts::nn::context<ts::cpu_serial> ctx;
        layer.forward(ctx, ts::tensor<float>(ts::shape{1, in, 12, 12}, 0.5f));
        return layer.uses_direct_engine();
    };
    constexpr auto most = ts::nn::direct_max_channels;
    CHECK(runs_direct(conv_engine::automatic, 3, 3, 1, 1));
    CHECK(runs_direct(conv_engine::automatic, most, 3, 1, 1, most));
    CHECK_FALSE(runs_direct(conv_engine::automatic, most + 1, 3, 1, 1));
    CHECK_FALSE(runs_direct(conv_engine::automatic, 3, 3, 1, 1, most + 1));
    CHECK(runs_direct(conv_engine::direct, 100, 3, 1, 1, 100));
    CHECK_FALSE(runs_direct(conv_engine::im2col, 3, 3, 1, 1));
    // Shapes the engine does not compute fall back to im2col even when asked for.
    CHECK_FALSE(runs_direct(conv_engine::direct, 3, 3, 2, 1));
    CHECK_FALSE(runs_direct(conv_engine::direct, 3, 5, 1, 1));
    CHECK_FALSE(runs_direct(conv_engine::direct, 3, 3, 1, 2));
    ts::nn::conv2d::config cfg{.in_channels = 3, .out_channels = 4, .kernel = 3, .padding = 1,
                               .engine = conv_engine::direct};
    ts::rng init(42);
    ts::nn::conv2d::bind<ts::cpu_serial, double> in_double(cfg, init);
    ts::nn::context<ts::cpu_serial> ctx;
    in_double.forward(ctx, ts::tensor<double>(ts::shape{1, 3, 6, 6}, 0.5));
    CHECK_FALSE(in_double.uses_direct_engine());
}

#if TESSEL_HAS_OPENMP
TEST_CASE("conv2d direct engine: cpu_omp on 1 and 2 threads gives identical outputs and gradients") {
    const int before = omp_get_max_threads();
    for (const auto& c : direct_cases) {
        INFO(c.what);
        ts::nn::conv2d::config cfg{.in_channels = c.in, .out_channels = c.out, .kernel = 3, .padding = c.p,
                                   .engine = ts::nn::conv_engine::direct};
        const auto x = to_float<ts::cpu_omp>(conv_ref::random_tensor(ts::shape{c.n, c.in, c.h, c.w}, 51));
        std::vector<std::vector<float>> ys, dxs, dws;
        for (const int threads : {1, 2}) {
            omp_set_num_threads(threads);
            ts::rng init(52);
            ts::nn::conv2d::bind<ts::cpu_omp, float> layer(cfg, init);
            ts::nn::context<ts::cpu_omp> ctx;
            const auto& y = layer.forward(ctx, x);
            ys.push_back(y.to_vector());
            const auto dy = to_float<ts::cpu_omp>(conv_ref::random_tensor(y.shape(), 53));
            dxs.push_back(layer.backward(ctx, dy).to_vector());
            dws.push_back(layer.parameters()[0].grad->to_vector());
        }
        CHECK(ys[0] == ys[1]);
        CHECK(dxs[0] == dxs[1]);
        CHECK(dws[0] == dws[1]);
    }
    omp_set_num_threads(before);
}
#endif
