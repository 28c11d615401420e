#include <doctest/doctest.h>

#include <numeric>

#include "nn_test_util.hpp"
#include "support/backend_test.hpp"
#include "tessel/nn/pool.hpp"
#include "tessel/nn/upsample.hpp"

namespace ts = tessel;
namespace nn = tessel::nn;
using nn_test::check_values;

namespace {
/// A 1 x 1 x h x w ramp 0, 1, 2, ... in row-major order.
template <class B, class T = float>
ts::tensor<T, B> ramp(ts::index_t h, ts::index_t w) {
    std::vector<T> v(static_cast<std::size_t>(h * w));
    std::iota(v.begin(), v.end(), T(0));
    ts::tensor<T, B> t;
    t.assign(ts::shape{1, 1, h, w}, v.begin(), v.end());
    return t;
}
template <class Spec, class B>
std::vector<float> forward_of(const typename Spec::config& cfg, const ts::tensor<float, B>& x) {
    ts::rng init(1);
    typename Spec::template bind<B> layer(cfg, init);
    nn::context<B> ctx;
    return layer.forward(ctx, x).to_vector();
}
}  // namespace

// Expected pooling values: a small Python transcription of torch.nn.AvgPool2d's rules (window
// clipped to the padded input for the divisor, or to the input when count_include_pad=False;
// ceil_mode's last window must start inside input + left padding), checked by hand for the first
// windows: e.g. kernel 3, stride 2, padding 1 at (0, 0) sums {0, 1, 4, 5} = 10 and divides by 9.
template <class B>
void avg_pool_values() {
    const auto x4 = ramp<B>(4, 4), x5 = ramp<B>(5, 5);
    check_values(forward_of<nn::avg_pool2d, B>({.kernel = 2}, x4), {2.5, 4.5, 10.5, 12.5});
    check_values(forward_of<nn::avg_pool2d, B>({.kernel = 3, .stride = 2, .padding = 1}, x4),
                 {10.0 / 9, 24.0 / 9, 51.0 / 9, 10});
    check_values(forward_of<nn::avg_pool2d, B>({.kernel = 3, .stride = 2, .padding = 1, .count_include_pad = false}, x4),
                 {2.5, 4, 8.5, 10});
    check_values(forward_of<nn::avg_pool2d, B>({.kernel = 2, .ceil_mode = true}, x5),
                 {3, 5, 6.5, 13, 15, 16.5, 20.5, 22.5, 24});
    check_values(forward_of<nn::avg_pool2d, B>({.kernel = 3, .stride = 2, .padding = 1, .ceil_mode = true}, x5),
                 {4.0 / 3, 3, 8.0 / 3, 7, 12, 9, 8, 13, 28.0 / 3});
    check_values(forward_of<nn::global_avg_pool, B>({}, x4), {7.5});
}
TESSEL_BACKEND_TEST("avg_pool2d / global_avg_pool: values by hand", avg_pool_values)

TEST_CASE("avg_pool2d: output shapes follow PyTorch's formula") {
    using P = nn::avg_pool2d;
    CHECK(P::output_size(4, {.kernel = 2}) == 2);
    CHECK(P::output_size(5, {.kernel = 2}) == 2);
    CHECK(P::output_size(5, {.kernel = 2, .ceil_mode = true}) == 3);
    CHECK(P::output_size(7, {.kernel = 3, .stride = 2, .padding = 1}) == 4);
    CHECK(P::output_size(6, {.kernel = 3, .stride = 3, .padding = 1, .ceil_mode = true}) == 3);
    CHECK(P::output_size(1, {.kernel = 2}) == 0);
}

TEST_CASE("avg_pool2d / global_avg_pool: backward spreads each output over its window") {
    ts::rng init(1);
    nn::context<ts::cpu_serial> ctx;
    nn::avg_pool2d::bind<ts::cpu_serial> p({.kernel = 2}, init);
    p.forward(ctx, ramp<ts::cpu_serial>(4, 4));
    ts::tensor<float> dy(ts::shape{1, 1, 2, 2}, {4.f, 8.f, -4.f, 0.f});
    check_values(p.backward(ctx, dy).to_vector(), {1, 1, 2, 2, 1, 1, 2, 2, -1, -1, 0, 0, -1, -1, 0, 0});
    nn::global_avg_pool::bind<ts::cpu_serial> g({}, init);
    ts::tensor<float> x(ts::shape{2, 1, 2, 2});
    CHECK(g.forward(ctx, x).shape() == ts::shape{2, 1, 1, 1});
    ts::tensor<float> gdy(ts::shape{2, 1, 1, 1}, {8.f, -4.f});
    check_values(g.backward(ctx, gdy).to_vector(), {2, 2, 2, 2, -1, -1, -1, -1});
}

TEST_CASE("avg_pool2d / global_avg_pool: gradient checks") {
    const ts::shape s{2, 3, 7, 6};
    nn_test::gradient_check<nn::avg_pool2d>({.kernel = 2}, s);
    nn_test::gradient_check<nn::avg_pool2d>({.kernel = 3, .stride = 2, .padding = 1}, s);
    nn_test::gradient_check<nn::avg_pool2d>({.kernel = 3, .stride = 2, .padding = 1, .count_include_pad = false}, s);
    nn_test::gradient_check<nn::avg_pool2d>({.kernel = 2, .ceil_mode = true}, s);
    nn_test::gradient_check<nn::avg_pool2d>({.kernel = 4, .stride = 1, .padding = 2, .ceil_mode = true}, s);
    nn_test::gradient_check<nn::global_avg_pool>({}, s);
}

// Expected resize values: a Python transcription of PyTorch's source-index rules. The bilinear x2
// result for [[1, 2], [3, 4]] is also the well-known output of
// F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False).
template <class B>
void upsample_values() {
    using nn::upsample_mode;
    ts::tensor<float, B> x(ts::shape{1, 1, 2, 2}, {1.f, 2.f, 3.f, 4.f});
    check_values(forward_of<nn::upsample, B>({.scale_factor = 2}, x),
                 {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
    // 2x2 -> 3x5 by size: rows floor(o * 2/3) = 0,0,1; columns floor(o * 0.4) = 0,0,0,1,1.
    check_values(forward_of<nn::upsample, B>({.output_h = 3, .output_w = 5}, x),
                 {1, 1, 1, 2, 2, 1, 1, 1, 2, 2, 3, 3, 3, 4, 4});
    check_values(forward_of<nn::upsample, B>({.mode = upsample_mode::bilinear, .scale_factor = 2}, x),
                 {1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4});
    ts::tensor<float, B> row(ts::shape{1, 1, 1, 5}, {0.f, 1.f, 4.f, 9.f, 16.f});
    // Scale 1.5 maps by 1/1.5 (PyTorch's default); recompute_scale_factor maps by in/out = 5/7.
    check_values(forward_of<nn::upsample, B>({.mode = upsample_mode::bilinear, .scale_factor = 1.5}, row),
                 {0, 0.5, 1.5, 3.5, 6.5, 10.1666667, 14.8333333});
    check_values(forward_of<nn::upsample, B>(
                     {.mode = upsample_mode::bilinear, .scale_factor = 1.5, .recompute_scale_factor = true}, row),
                 {0, 0.571428571, 1.85714286, 4, 7.57142857, 12, 16});
    check_values(forward_of<nn::upsample, B>({.mode = upsample_mode::bilinear, .output_h = 1, .output_w = 3}, row),
                 {0.333333333, 4, 13.6666667});
    // 2x5 ramp at scale 0.5 -> 1x2, sources floor(o * 2): row 0, columns 0 and 2.
    check_values(forward_of<nn::upsample, B>({.scale_factor = 0.5}, ramp<B>(2, 5)), {0, 2});
}
TESSEL_BACKEND_TEST("upsample: nearest and bilinear values by hand", upsample_values)

TEST_CASE("upsample: bilinear of a linear ramp is linear inside, constant-clamped at the borders") {
    // Half-pixel sampling of f(i) = i at scale 2 gives (o + 0.5) / 2 - 0.5 away from the borders.
    ts::rng init(1);
    nn::context<ts::cpu_serial> ctx;
    nn::upsample::bind<ts::cpu_serial, double> up({.mode = nn::upsample_mode::bilinear, .scale_factor = 2}, init);
    const auto& y = up.forward(ctx, ramp<ts::cpu_serial, double>(1, 8));
    REQUIRE(y.shape() == ts::shape{1, 1, 2, 16});
    for (ts::index_t o = 1; o < 15; ++o) CHECK(y(0, 0, 0, o) == doctest::Approx((o + 0.5) / 2 - 0.5));
    CHECK(y(0, 0, 0, 0) == 0.0);
    CHECK(y(0, 0, 1, 15) == 7.0);
}

TEST_CASE("upsample: gradient checks") {
    using nn::upsample_mode;
    const ts::shape s{2, 2, 3, 4};
    nn_test::gradient_check<nn::upsample>({.scale_factor = 2}, s);
    nn_test::gradient_check<nn::upsample>({.output_h = 5, .output_w = 7}, s);
    nn_test::gradient_check<nn::upsample>({.output_h = 2, .output_w = 3}, s);
    nn_test::gradient_check<nn::upsample>({.mode = upsample_mode::bilinear, .scale_factor = 2}, s);
    nn_test::gradient_check<nn::upsample>({.mode = upsample_mode::bilinear, .scale_factor = 1.5}, s);
    nn_test::gradient_check<nn::upsample>({.mode = upsample_mode::bilinear, .output_h = 2, .output_w = 3}, s);
    nn_test::gradient_check<nn::upsample>({.mode = upsample_mode::bilinear, .output_h = 8, .output_w = 5}, s);
}

TEST_CASE("upsample: discard_output lends the output to the pool, backward and the next forward are unchanged") {
    ts::rng init(1);
    nn::context<ts::cpu_serial> ctx;
    nn::upsample::bind<ts::cpu_serial, double> up({.mode = nn::upsample_mode::bilinear, .output_h = 5, .output_w = 9},
                                                  init);
    const auto x = ramp<ts::cpu_serial, double>(3, 4);
    const std::vector<double> y0 = up.forward(ctx, x).to_vector();
    ts::tensor<double> dy(ts::shape{1, 1, 5, 9});
    for (ts::index_t i = 0; i < dy.numel(); ++i) dy.data()[i] = 0.25 * static_cast<double>(i % 7) - 0.5;
    const std::vector<double> dx0 = up.backward(ctx, dy).to_vector();

    const std::size_t held = ctx.scratch.capacity<double>();
    up.forward(ctx, x);
    up.discard_output(ctx);
    CHECK(ctx.scratch.capacity<double>() >= held + 45);  // the 5 x 9 output went to the pool
    up.discard_output(ctx);                               // a second call changes nothing
    CHECK(up.backward(ctx, dy).to_vector() == dx0);
    CHECK(up.forward(ctx, x).to_vector() == y0);
    CHECK(ctx.scratch.capacity<double>() == held);  // ... and came back from it
    ts::tensor<double> wrong(ts::shape{1, 1, 5, 8});
    CHECK_THROWS_WITH_AS(up.backward(ctx, wrong), doctest::Contains("differs from the output shape [1,1,5,9]"),
                         ts::error);
}

// Not bitwise: with -march=native the compiler may contract a*b+c into an FMA differently in the
// serial and OpenMP instantiations of the same functor.
TEST_CASE("pool and upsample: cpu_serial and cpu_omp agree") {
    using nn::upsample_mode;
    const ts::shape s{2, 3, 11, 10};
    nn_test::serial_omp_agree<nn::avg_pool2d>({.kernel = 2}, s, 1e-6);
    nn_test::serial_omp_agree<nn::avg_pool2d>({.kernel = 3, .stride = 2, .padding = 1, .ceil_mode = true}, s, 1e-6);
    nn_test::serial_omp_agree<nn::global_avg_pool>({}, s, 1e-6);
    nn_test::serial_omp_agree<nn::upsample>({.scale_factor = 2}, s, 1e-6);
    nn_test::serial_omp_agree<nn::upsample>({.mode = upsample_mode::bilinear, .scale_factor = 2}, s, 1e-6);
    nn_test::serial_omp_agree<nn::upsample>({.mode = upsample_mode::bilinear, .output_h = 7, .output_w = 23}, s, 1e-6);
}

TEST_CASE("pool and upsample: bad configs and inputs") {
    ts::rng init(1);
    nn::context<ts::cpu_serial> ctx;
    using P = nn::avg_pool2d;
    CHECK_THROWS_WITH_AS(P::bind<ts::cpu_serial>({.kernel = 0}, init), doctest::Contains("tessel::nn::avg_pool2d"),
                         ts::error);
    CHECK_THROWS_WITH_AS(P::bind<ts::cpu_serial>({.kernel = 2, .padding = 2}, init),
                         doctest::Contains("padding must lie in [0, kernel / 2]"), ts::error);
    CHECK_THROWS_AS(P::bind<ts::cpu_serial>({.kernel = 2, .stride = -1}, init), ts::error);
    P::bind<ts::cpu_serial> p({.kernel = 3}, init);
    ts::tensor<float> small(ts::shape{1, 1, 2, 5}), empty(ts::shape{1, 0, 4, 4}), flat(ts::shape{4, 4});
    CHECK_THROWS_WITH_AS(p.forward(ctx, small), doctest::Contains("smaller than the kernel"), ts::error);
    CHECK_THROWS_WITH_AS(p.forward(ctx, empty), doctest::Contains("tessel::nn::avg_pool2d: empty input"), ts::error);
    CHECK_THROWS_WITH_AS(p.forward(ctx, flat), doctest::Contains("NCHW"), ts::error);
    nn::global_avg_pool::bind<ts::cpu_serial> g({}, init);
    CHECK_THROWS_WITH_AS(g.forward(ctx, empty), doctest::Contains("tessel::nn::global_avg_pool: empty input"),
                         ts::error);

    using U = nn::upsample;
    CHECK_THROWS_WITH_AS(U::bind<ts::cpu_serial>({}, init), doctest::Contains("tessel::nn::upsample: give exactly one"),
                         ts::error);  // zero scale factor and no size
    CHECK_THROWS_WITH_AS(U::bind<ts::cpu_serial>({.scale_factor = -2}, init), doctest::Contains("positive"), ts::error);
    CHECK_THROWS_AS(U::bind<ts::cpu_serial>({.scale_factor = 2, .output_h = 4, .output_w = 4}, init), ts::error);
    CHECK_THROWS_AS(U::bind<ts::cpu_serial>({.output_h = 4}, init), ts::error);
    U::bind<ts::cpu_serial> u({.scale_factor = 0.1}, init);
    CHECK_THROWS_WITH_AS(u.forward(ctx, small), doctest::Contains("empty output"), ts::error);
    CHECK_THROWS_WITH_AS(u.forward(ctx, empty), doctest::Contains("tessel::nn::upsample: empty input"), ts::error);
}
