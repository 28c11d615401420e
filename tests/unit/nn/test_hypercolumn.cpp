// nn/hypercolumn.hpp and the SuperAE networks of methods/dsc.hpp: layout of the concatenation,
// gradients against finite differences (odd sizes, strided stages), reflect padding.
#include <doctest/doctest.h>

#include "nn_test_util.hpp"
#include "tessel/methods/dsc.hpp"
#include "tessel/nn/hypercolumn.hpp"
#include "tessel/ops/pad.hpp"

namespace ts = tessel;
namespace dm = tessel::methods;
using nn_test::gradient_check;

namespace {
using hc2 = ts::nn::hypercolumn<dm::superae_module, dm::superae_module>;
hc2::config small_hc(ts::nn::upsample_mode mode = ts::nn::upsample_mode::bilinear) {
    return {{dm::superae_module_config(2, 3, 1), dm::superae_module_config(3, 4, 2)}, mode};
}
}  // namespace

TEST_CASE("hypercolumn: output = [x, up(stage 1), up(stage 2)] at the input size") {
    ts::rng init(5);
    hc2::bind<ts::cpu_serial> h(small_hc(ts::nn::upsample_mode::nearest), init);
    ts::nn::context<ts::cpu_serial> ctx;
    const auto x = nn_test::random_tensor(ts::shape{2, 2, 5, 7}, 3);
    const auto& y = h.forward(ctx, x);
    REQUIRE(y.shape() == ts::shape{2, 2 + 3 + 4, 5, 7});
    const auto& a1 = h.stage_output(0);
    const auto& a2 = h.stage_output(1);
    CHECK(a1.shape() == ts::shape{2, 3, 5, 7});
    CHECK(a2.shape() == ts::shape{2, 4, 3, 4});  // stride 2, padding 1: ceil
    const ts::index_t P = 35;
    for (ts::index_t n = 0; n < 2; ++n)
        for (ts::index_t i = 0; i < P; ++i) {
            for (ts::index_t c = 0; c < 2; ++c) CHECK(y[(n * 9 + c) * P + i] == x[(n * 2 + c) * P + i]);
            for (ts::index_t c = 0; c < 3; ++c) CHECK(y[(n * 9 + 2 + c) * P + i] == a1[(n * 3 + c) * P + i]);
            // nearest from 3 x 4 to 5 x 7: row floor(y * 3 / 5), column floor(x * 4 / 7)
            const ts::index_t yy = i / 7, xx = i % 7, sy = yy * 3 / 5, sx = xx * 4 / 7;
            for (ts::index_t c = 0; c < 4; ++c) CHECK(y[(n * 9 + 5 + c) * P + i] == a2[((n * 4 + c) * 3 + sy) * 4 + sx]);
        }
    CHECK(ts::nn::count_parameters(h.parameters()) == (2 * 3 * 9 + 3 + 6) + (3 * 4 * 9 + 4 + 8));
    CHECK(h.buffers().size() == 4);
}

TEST_CASE("hypercolumn: gradient check, bilinear and nearest, odd and even sizes, one row") {
    for (auto mode : {ts::nn::upsample_mode::bilinear, ts::nn::upsample_mode::nearest}) {
        gradient_check<hc2>(small_hc(mode), ts::shape{2, 2, 5, 7});
        gradient_check<hc2>(small_hc(mode), ts::shape{1, 2, 6, 4});
        gradient_check<hc2>(small_hc(mode), ts::shape{2, 2, 1, 5});
    }
}

TEST_CASE("SuperAE decoder (transposed convs doubling the size, conv, sigmoid): gradient check") {
    gradient_check<dm::superae_decoder>(dm::superae_decoder_config(), ts::shape{1, 256, 2, 3}, {.max_coords = 48});
    // The whole autoencoder on an input that is a multiple of 4 reproduces its size.
    ts::rng init(0);
    dm::superae_network::bind<ts::cpu_serial> net(dm::superae_config(), init);
    ts::nn::context<ts::cpu_serial> ctx;
    const auto x = nn_test::random_tensor(ts::shape{2, 3, 12, 8}, 1, 0, 1);
    const auto& r = net.forward(ctx, x);
    CHECK(r.shape() == x.shape());
    for (ts::index_t i = 0; i < r.numel(); ++i) CHECK((r[i] > 0 && r[i] < 1));
}

TEST_CASE("DSC embedding: 451 channels into K, gradient check at a small width") {
    ts::rng init(0);
    dm::dsc_embedding::bind<ts::cpu_serial> e(dm::dsc_embedding_config(32), init);
    ts::nn::context<ts::cpu_serial> ctx;
    CHECK(e.forward(ctx, nn_test::random_tensor(ts::shape{1, 3, 9, 6}, 2, 0, 1)).shape() == ts::shape{1, 32, 9, 6});
    using small = ts::nn::sequential<hc2, ts::nn::conv2d>;
    gradient_check<small>({small_hc(), ts::nn::conv2d::config{.in_channels = 9, .out_channels = 3, .kernel = 1}},
                          ts::shape{1, 2, 5, 6});
    CHECK_THROWS_AS(dm::dsc_embedding_config(1), ts::error);
}

TEST_CASE("reflect_pad and crop: PyTorch's reflect, periodic beyond the extent, one-row maps") {
    ts::tensor<float, ts::cpu_serial> x(ts::shape{1, 1, 2, 3}, {0, 1, 2, 3, 4, 5});
    ts::tensor<float, ts::cpu_serial> y, c;
    ts::ops::reflect_pad(x, 2, 4, y);
    REQUIRE(y.shape() == ts::shape{1, 1, 4, 7});
    // columns 0 1 2 | 1 0 1 2 ; rows 0 1 | 0 1
    const std::vector<float> expected = {0, 1, 2, 1, 0, 1, 2, 3, 4, 5, 4, 3, 4, 5,
                                         0, 1, 2, 1, 0, 1, 2, 3, 4, 5, 4, 3, 4, 5};
    CHECK(y.to_vector() == expected);
    ts::ops::crop(y, 2, 3, c);
    CHECK(c.to_vector() == x.to_vector());
    ts::tensor<float, ts::cpu_serial> row(ts::shape{1, 1, 1, 2}, {7, 8});
    ts::ops::reflect_pad(row, 3, 0, y);
    CHECK(y.to_vector() == std::vector<float>{7, 8, 7, 8, 7, 8, 7, 8});
    CHECK_THROWS_AS(ts::ops::crop(x, 3, 3, c), ts::error);
    CHECK(ts::ops::round_up(321, 4) == 324);
    CHECK(ts::ops::round_up(480, 4) == 480);
}
