// conv2d and conv_transpose2d: values against direct loops, gradients against finite differences,
// backend agreement, band tiling, initialisation and error messages.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "conv_reference.hpp"
#include "support/backend_test.hpp"
#include "tessel/autograd/check_gradients.hpp"
#include "tessel/nn/conv2d.hpp"
#include "tessel/nn/conv_transpose2d.hpp"
#include "tessel/nn/sequential.hpp"

namespace ts = tessel;
using conv_ref::params;

namespace {
const params conv_cases[] = {{1, 1, 0, 1}, {3, 1, 1, 1}, {3, 2, 1, 1}, {3, 1, 0, 2}, {5, 2, 2, 1},
                             {2, 1, 1, 1}, {3, 3, 2, 2}, {1, 2, 0, 1}, {1, 1, 1, 1}};

template <class B>
void conv_matches_direct_loops() {
    for (const auto q : conv_cases)
        for (bool bias : {true, false}) {
            CAPTURE(q.k);
            CAPTURE(q.s);
            CAPTURE(q.p);
            CAPTURE(q.d);
            CAPTURE(bias);
            ts::rng init(7);
            ts::nn::conv2d::bind<B, double> layer(
                {.in_channels = 3, .out_channels = 4, .kernel = q.k, .stride = q.s, .padding = q.p, .dilation = q.d,
                 .bias = bias},
                init);
            ts::nn::context<B> ctx;
            const auto x = conv_ref::random_tensor(ts::shape{2, 3, 9, 11}, 3);
            const auto xb = x.to<B>();
            const auto& y = layer.forward(ctx, xb);
            ts::tensor<double> bh;
            if (bias) bh = layer.bias().template to<ts::cpu_serial>();
            const auto ref = conv_ref::conv2d(x, layer.weight().template to<ts::cpu_serial>(), bias ? &bh : nullptr, q);
            REQUIRE(y.shape() == ref.shape());
            CHECK(conv_ref::max_abs_diff(y.template to<ts::cpu_serial>(), ref) < 1e-12);
        }
}
TESSEL_BACKEND_TEST("conv2d: forward equals a direct convolution", conv_matches_direct_loops)

template <class B>
void conv_transpose_matches_direct_loops() {
    struct tcase {
        params q;
        ts::index_t op;
    };
    const tcase cases[] = {{{3, 1, 1, 1}, 0}, {{3, 2, 1, 1}, 1}, {{4, 2, 1, 1}, 0}, {{3, 1, 0, 2}, 1},
                           {{1, 1, 0, 1}, 0}, {{5, 3, 2, 1}, 2}, {{2, 2, 0, 1}, 0}};
    for (const auto& [q, op] : cases) {
        CAPTURE(q.k);
        CAPTURE(q.s);
        CAPTURE(q.p);
        CAPTURE(q.d);
        CAPTURE(op);
        ts::rng init(9);
        ts::nn::conv_transpose2d::bind<B, double> layer({.in_channels = 3, .out_channels = 2, .kernel = q.k,
                                                         .stride = q.s, .padding = q.p, .output_padding = op,
                                                         .dilation = q.d},
                                                        init);
        ts::nn::context<B> ctx;
        const auto x = conv_ref::random_tensor(ts::shape{2, 3, 5, 6}, 4);
        const auto xb = x.to<B>();
        const auto& y = layer.forward(ctx, xb);
        const auto bh = layer.bias().template to<ts::cpu_serial>();
        const auto ref = conv_ref::conv_transpose2d(x, layer.weight().template to<ts::cpu_serial>(), &bh, q, op);
        REQUIRE(y.shape() == ref.shape());
        CHECK(conv_ref::max_abs_diff(y.template to<ts::cpu_serial>(), ref) < 1e-12);
    }
}
TESSEL_BACKEND_TEST("conv_transpose2d: forward equals a direct scatter", conv_transpose_matches_direct_loops)
}  // namespace

TEST_CASE("conv2d: gradient checks (double, cpu_serial)") {
    for (const auto q : conv_cases) {
        CAPTURE(q.k);
        CAPTURE(q.s);
        CAPTURE(q.p);
        CAPTURE(q.d);
        auto r = ts::autograd::check_gradients<ts::nn::conv2d>(
            {.in_channels = 3, .out_channels = 4, .kernel = q.k, .stride = q.s, .padding = q.p, .dilation = q.d},
            ts::shape{2, 3, 7, 8});
        INFO(r.report);
        CHECK(r.passed);
    }
    auto nb = ts::autograd::check_gradients<ts::nn::conv2d>(
        {.in_channels = 2, .out_channels = 3, .kernel = 3, .padding = 1, .bias = false}, ts::shape{1, 2, 6, 5});
    INFO(nb.report);
    CHECK(nb.passed);
}

TEST_CASE("conv2d: banded im2col gives the same values and gradients as one band") {
    // A tiny workspace forces one output row per band; the default fits the whole image.
    ts::rng a(5), b(5);
    ts::nn::conv2d::config cfg{.in_channels = 3, .out_channels = 5, .kernel = 3, .stride = 1, .padding = 2, .dilation = 2};
    ts::nn::conv2d::bind<ts::cpu_serial, double> whole(cfg, a);
    cfg.workspace_bytes = 1;
    ts::nn::conv2d::bind<ts::cpu_serial, double> banded(cfg, b);
    ts::nn::context<ts::cpu_serial> ctx;
    const auto x = conv_ref::random_tensor(ts::shape{2, 3, 10, 7}, 11);
    const auto y1 = whole.forward(ctx, x);
    const auto y2 = banded.forward(ctx, x);
    CHECK(banded.band_rows() == 1);
    CHECK(whole.band_rows() == y1.dim(2));
    CHECK(conv_ref::max_abs_diff(y1, y2) < 1e-12);
    const auto dy = conv_ref::random_tensor(y1.shape(), 12);
    const auto dx1 = whole.backward(ctx, dy);
    const auto dx2 = banded.backward(ctx, dy);
    CHECK(conv_ref::max_abs_diff(dx1, dx2) < 1e-12);
    CHECK(conv_ref::max_abs_diff(*whole.parameters()[0].grad, *banded.parameters()[0].grad) < 1e-12);
    auto r = ts::autograd::check_gradients<ts::nn::conv2d>(cfg, ts::shape{1, 3, 6, 5});
    INFO(r.report);
    CHECK(r.passed);
}

TEST_CASE("conv2d: set_input_grad_needed(false) leaves parameter gradients unchanged") {
    ts::rng a(2), b(2);
    const ts::nn::conv2d::config cfg{.in_channels = 2, .out_channels = 3, .kernel = 3, .padding = 1};
    ts::nn::conv2d::bind<ts::cpu_serial, double> full(cfg, a), skip(cfg, b);
    skip.set_input_grad_needed(false);
    ts::nn::context<ts::cpu_serial> ctx;
    const auto x = conv_ref::random_tensor(ts::shape{1, 2, 5, 5}, 1);
    full.forward(ctx, x);
    skip.forward(ctx, x);
    const auto dy = conv_ref::random_tensor(ts::shape{1, 3, 5, 5}, 2);
    full.backward(ctx, dy);
    CHECK_FALSE(skip.backward(ctx, dy).shape() == x.shape());  // dx was never computed
    CHECK(conv_ref::max_abs_diff(*full.parameters()[0].grad, *skip.parameters()[0].grad) == 0.0);
    CHECK(conv_ref::max_abs_diff(*full.parameters()[1].grad, *skip.parameters()[1].grad) == 0.0);
}

TEST_CASE("conv_transpose2d: gradient checks (double, cpu_serial)") {
    struct tcase {
        params q;
        ts::index_t op;
    };
    for (const auto& [q, op] : {tcase{{3, 1, 1, 1}, 0}, tcase{{3, 2, 1, 1}, 1}, tcase{{4, 2, 1, 1}, 0},
                                tcase{{3, 1, 0, 2}, 1}, tcase{{1, 1, 0, 1}, 0}}) {
        CAPTURE(q.k);
        CAPTURE(q.s);
        CAPTURE(op);
        auto r = ts::autograd::check_gradients<ts::nn::conv_transpose2d>(
            {.in_channels = 3, .out_channels = 2, .kernel = q.k, .stride = q.s, .padding = q.p, .output_padding = op,
             .dilation = q.d},
            ts::shape{2, 3, 4, 5});
        INFO(r.report);
        CHECK(r.passed);
    }
}

TEST_CASE("conv2d / conv_transpose2d: cpu_serial and cpu_omp agree (float)") {
    using net = ts::nn::sequential<ts::nn::conv2d, ts::nn::conv_transpose2d, ts::nn::conv2d>;
    const net::config cfg{{.in_channels = 3, .out_channels = 8, .kernel = 3, .stride = 2, .padding = 1},
                          {.in_channels = 8, .out_channels = 4, .kernel = 3, .stride = 2, .padding = 1, .output_padding = 1},
                          {.in_channels = 4, .out_channels = 6, .kernel = 1}};
    ts::rng a(3), b(3);
    net::bind<ts::cpu_serial> s(cfg, a);
    net::bind<ts::cpu_omp> o(cfg, b);
    ts::nn::context<ts::cpu_serial> cs;
    ts::nn::context<ts::cpu_omp> co;
    // Layers keep a pointer to their input until backward, so inputs must outlive the step.
    const auto xd = conv_ref::random_tensor(ts::shape{2, 3, 40, 33}, 5).cast<float>();
    const auto xo = xd.to<ts::cpu_omp>();
    const auto ys = s.forward(cs, xd).to_vector();
    const auto yo = o.forward(co, xo).to_vector();
    REQUIRE(ys.size() == yo.size());
    double m = 0;
    for (std::size_t i = 0; i < ys.size(); ++i) m = std::max(m, double(std::abs(ys[i] - yo[i])));
    CHECK(m < 1e-4);
    ts::tensor<float> dy(s.forward(cs, xd).shape(), 0.5f);
    const auto dxs = s.backward(cs, dy).to_vector();
    const auto dxo = o.backward(co, dy.to<ts::cpu_omp>()).to_vector();
    m = 0;
    for (std::size_t i = 0; i < dxs.size(); ++i) m = std::max(m, double(std::abs(dxs[i] - dxo[i])));
    CHECK(m < 1e-3);
    auto ps = s.parameters();
    auto po = o.parameters();
    for (std::size_t k = 0; k < ps.size(); ++k) {
        const auto gs = ps[k].grad->to_vector(), go = po[k].grad->to_vector();
        double mg = 0, scale = 1;
        for (std::size_t i = 0; i < gs.size(); ++i) {
            mg = std::max(mg, double(std::abs(gs[i] - go[i])));
            scale = std::max(scale, double(std::abs(gs[i])));
        }
        CHECK(mg / scale < 1e-4);
    }
}

TEST_CASE("conv2d: seeded initialisation is deterministic and within PyTorch's bounds") {
    const ts::nn::conv2d::config cfg{.in_channels = 4, .out_channels = 6, .kernel = 3};
    ts::rng a(42), b(42), c(43);
    ts::nn::conv2d::bind<ts::cpu_serial> l1(cfg, a), l2(cfg, b), l3(cfg, c);
    CHECK(l1.weight().to_vector() == l2.weight().to_vector());
    CHECK(l1.bias().to_vector() == l2.bias().to_vector());
    CHECK(l1.weight().to_vector() != l3.weight().to_vector());
    const double bound = 1.0 / std::sqrt(4.0 * 9.0);  // kaiming_uniform(a = sqrt 5) = 1/sqrt(fan_in)
    double wmax = 0, bmax = 0;
    for (float v : l1.weight().to_vector()) wmax = std::max(wmax, double(std::abs(v)));
    for (float v : l1.bias().to_vector()) bmax = std::max(bmax, double(std::abs(v)));
    CHECK(wmax <= bound);
    CHECK(wmax > 0.8 * bound);  // 216 draws: the largest is close to the bound
    CHECK(bmax <= bound);
    CHECK(l1.weight().shape() == ts::shape{6, 4, 3, 3});

    ts::rng d(42);
    ts::nn::conv2d::bind<ts::cpu_serial> xav({.in_channels = 4, .out_channels = 6, .kernel = 3,
                                              .init = ts::nn::init::scheme::xavier_uniform},
                                             d);
    const double xbound = std::sqrt(6.0 / (36.0 + 54.0));
    double xmax = 0;
    for (float v : xav.weight().to_vector()) xmax = std::max(xmax, double(std::abs(v)));
    CHECK(xmax <= xbound);
    CHECK(xmax > bound);  // Xavier's bound (0.258) is wider than PyTorch's (0.167)
}

TEST_CASE("conv2d / conv_transpose2d: errors name the op and the shapes") {
    ts::rng init(1);
    ts::nn::context<ts::cpu_serial> ctx;
    ts::nn::conv2d::bind<ts::cpu_serial> conv({.in_channels = 3, .out_channels = 4, .kernel = 3}, init);
    auto message = [](auto&& f) {
        try {
            f();
        } catch (const ts::error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    const auto m1 = message([&] { conv.forward(ctx, ts::tensor<float>(ts::shape{1, 4, 8, 8})); });
    CHECK(m1.find("tessel::nn::conv2d::forward") != std::string::npos);
    CHECK(m1.find("4 channels") != std::string::npos);
    CHECK(m1.find("[1,4,8,8]") != std::string::npos);
    const auto m2 = message([&] { conv.forward(ctx, ts::tensor<float>(ts::shape{0, 3, 8, 8})); });
    CHECK(m2.find("empty input") != std::string::npos);
    const auto m3 = message([&] { conv.forward(ctx, ts::tensor<float>(ts::shape{1, 3, 2, 8})); });
    CHECK(m3.find("smaller than the kernel") != std::string::npos);
    const auto m4 = message([&] { conv.backward(ctx, ts::tensor<float>(ts::shape{1, 4, 6, 6})); });
    CHECK(m4.find("before forward") != std::string::npos);
    const ts::tensor<float> ok(ts::shape{1, 3, 8, 8});
    conv.forward(ctx, ok);
    const auto m5 = message([&] { conv.backward(ctx, ts::tensor<float>(ts::shape{1, 4, 7, 6})); });
    CHECK(m5.find("[1,4,7,6]") != std::string::npos);

    CHECK(message([&] { ts::nn::conv2d::bind<ts::cpu_serial>({.in_channels = 3, .out_channels = 4, .kernel = 0}, init); })
              .find("kernel must be >= 1, got 0") != std::string::npos);
    CHECK(message([&] { ts::nn::conv2d::bind<ts::cpu_serial>({.in_channels = 3, .out_channels = 4, .stride = 0}, init); })
              .find("stride must be >= 1, got 0") != std::string::npos);
    CHECK(message([&] { ts::nn::conv2d::bind<ts::cpu_serial>({.in_channels = 3, .out_channels = 4, .padding = -1}, init); })
              .find("padding must be >= 0, got -1") != std::string::npos);
    CHECK(message([&] { ts::nn::conv2d::bind<ts::cpu_serial>({.in_channels = 0, .out_channels = 4}, init); })
              .find("in_channels must be positive") != std::string::npos);
    CHECK(message([&] { ts::nn::conv2d::bind<ts::cpu_serial>({.in_channels = 1, .out_channels = 4, .dilation = 0}, init); })
              .find("dilation") != std::string::npos);

    const auto t1 = message([&] {
        ts::nn::conv_transpose2d::bind<ts::cpu_serial>({.in_channels = 2, .out_channels = 2, .kernel = 3, .stride = 2,
                                                        .output_padding = 2},
                                                       init);
    });
    CHECK(t1.find("tessel::nn::conv_transpose2d") != std::string::npos);
    CHECK(t1.find("output_padding") != std::string::npos);
    ts::nn::conv_transpose2d::bind<ts::cpu_serial> tc({.in_channels = 2, .out_channels = 3, .kernel = 3}, init);
    const auto t2 = message([&] { tc.forward(ctx, ts::tensor<float>(ts::shape{1, 5, 4, 4})); });
    CHECK(t2.find("tessel::nn::conv_transpose2d::forward") != std::string::npos);
    CHECK(t2.find("[1,5,4,4]") != std::string::npos);
    CHECK(message([&] { ts::nn::conv_transpose2d::bind<ts::cpu_serial>({.in_channels = 2, .out_channels = 3, .stride = 0}, init); })
              .find("stride must be >= 1") != std::string::npos);
}

TEST_CASE("conv2d: band-parallel cpu_omp path equals cpu_serial (double)") {
    // Small workspaces give many bands, so cpu_omp distributes bands over threads; the kernel
    // extents cover both the phased (even/odd bands) col2im and its serial fallback.
    const params cases[] = {{3, 1, 1, 1}, {3, 2, 1, 1}, {5, 1, 2, 2}, {2, 1, 0, 1}};
    for (const auto q : cases)
        for (std::size_t bytes : {std::size_t(1), std::size_t(3 * 27 * 20 * 8)}) {
            CAPTURE(q.k);
            CAPTURE(q.s);
            CAPTURE(q.d);
            CAPTURE(bytes);
            const ts::nn::conv2d::config cfg{.in_channels = 3, .out_channels = 4, .kernel = q.k, .stride = q.s,
                                             .padding = q.p, .dilation = q.d, .workspace_bytes = bytes};
            ts::rng a(8), b(8);
            ts::nn::conv2d::bind<ts::cpu_serial, double> s(cfg, a);
            ts::nn::conv2d::bind<ts::cpu_omp, double> o(cfg, b);
            ts::nn::context<ts::cpu_serial> cs;
            ts::nn::context<ts::cpu_omp> co;
            const auto x = conv_ref::random_tensor(ts::shape{2, 3, 23, 20}, 13);
            const auto xo = x.to<ts::cpu_omp>();
            const auto ys = s.forward(cs, x);
            const auto yo = o.forward(co, xo).to<ts::cpu_serial>();
            CHECK(o.band_rows() < yo.dim(2));
            CHECK(conv_ref::max_abs_diff(ys, yo) < 1e-12);
            const auto dy = conv_ref::random_tensor(ys.shape(), 14);
            const auto dys = dy.to<ts::cpu_omp>();
            const auto dxs = s.backward(cs, dy);
            const auto dxo = o.backward(co, dys).to<ts::cpu_serial>();
            CHECK(conv_ref::max_abs_diff(dxs, dxo) < 1e-12);
            for (std::size_t k = 0; k < 2; ++k)
                CHECK(conv_ref::max_abs_diff(*s.parameters()[k].grad, o.parameters()[k].grad->to<ts::cpu_serial>()) < 1e-11);
        }
}

TEST_CASE("conv2d: pointwise convolution in pixel blocks, cpu_omp equals cpu_serial and direct loops") {
    // 2 x 75 x 70 pixels: more than one 4096-pixel block per image.
    const ts::nn::conv2d::config cfg{.in_channels = 3, .out_channels = 4, .kernel = 1};
    ts::rng a(8), b(8);
    ts::nn::conv2d::bind<ts::cpu_serial, double> s(cfg, a);
    ts::nn::conv2d::bind<ts::cpu_omp, double> o(cfg, b);
    ts::nn::context<ts::cpu_serial> cs;
    ts::nn::context<ts::cpu_omp> co;
    const auto x = conv_ref::random_tensor(ts::shape{2, 3, 75, 70}, 15);
    const auto xo = x.to<ts::cpu_omp>();
    const auto ys = s.forward(cs, x);
    const auto bh = s.bias();
    CHECK(conv_ref::max_abs_diff(ys, conv_ref::conv2d(x, s.weight(), &bh, {1, 1, 0, 1})) < 1e-12);
    CHECK(conv_ref::max_abs_diff(ys, o.forward(co, xo).to<ts::cpu_serial>()) < 1e-12);
    const auto dy = conv_ref::random_tensor(ys.shape(), 16);
    const auto dyo = dy.to<ts::cpu_omp>();
    CHECK(conv_ref::max_abs_diff(s.backward(cs, dy), o.backward(co, dyo).to<ts::cpu_serial>()) < 1e-12);
    for (std::size_t k = 0; k < 2; ++k)
        CHECK(conv_ref::max_abs_diff(*s.parameters()[k].grad, o.parameters()[k].grad->to<ts::cpu_serial>()) < 1e-10);
    auto r = ts::autograd::check_gradients<ts::nn::conv2d>(cfg, ts::shape{1, 3, 70, 60});
    INFO(r.report);
    CHECK(r.passed);
}

#if TESSEL_HAS_OPENMP
TEST_CASE("conv2d: cpu_omp gradients are bit-identical for 2, 3 and 4 threads") {
    // The band-parallel backward hands bands to whichever thread is free. Weight-gradient
    // partials are kept per fixed group of bands and added in group order, so neither the
    // thread count nor the schedule may change a bit (per-thread partials would).
    const ts::nn::conv2d::config cfg{.in_channels = 5, .out_channels = 6, .kernel = 3, .padding = 1,
                                     .workspace_bytes = 2 * 45 * 33 * 8};  // two output rows per band: 20 bands
    const auto x = conv_ref::random_tensor(ts::shape{1, 5, 40, 33}, 21).to<ts::cpu_omp>();
    const int before = omp_get_max_threads();
    std::vector<std::vector<double>> dw, dx;
    for (const int threads : {2, 3, 4, 2}) {
        omp_set_num_threads(threads);
        ts::rng init(5);
        ts::nn::conv2d::bind<ts::cpu_omp, double> conv(cfg, init);
        ts::nn::context<ts::cpu_omp> ctx;
        const auto& y = conv.forward(ctx, x);
        const auto dy = conv_ref::random_tensor(y.shape(), 22).to<ts::cpu_omp>();
        dx.push_back(conv.backward(ctx, dy).to_vector());
        dw.push_back(conv.parameters()[0].grad->to_vector());
    }
    omp_set_num_threads(before);
    for (std::size_t i = 1; i < dw.size(); ++i) {
        CAPTURE(i);
        CHECK(dw[i] == dw[0]);
        CHECK(dx[i] == dx[0]);
    }
}
#endif
