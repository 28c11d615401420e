// nn::feature_embedding (PiCNet's FEM): gradient checks at perturbed parameters for both shortcut
// kinds and every activation setting, the composition itself (main path + shortcut, then the
// activation) against the blocks run by hand, the skipped input gradient, and errors.
#include <doctest/doctest.h>

#include <string>

#include "nn_test_util.hpp"
#include "tessel/nn/feature_embedding.hpp"

namespace ts = tessel;
namespace nn = tessel::nn;
using fem = nn::feature_embedding;
using ts::index_t;

TEST_CASE("feature_embedding: gradients against finite differences") {
    SUBCASE("identity shortcut, fixed mix, odd sizes, a batch of two") {
        nn_test::gradient_check<fem>({.in_channels = 4, .out_channels = 4}, ts::shape{2, 4, 5, 7});
    }
    SUBCASE("projection shortcut (3 -> 5), learnable convex mix") {
        nn_test::gradient_check<fem>({.in_channels = 3, .out_channels = 5, .activation = {.learnable = true}},
                                     ts::shape{1, 3, 6, 5});
    }
    SUBCASE("projection (6 -> 4), two free weights, ECA kernel 3, no conv bias, one row") {
        nn_test::gradient_check<fem>({.in_channels = 6,
                                      .out_channels = 4,
                                      .activation = {.relu_weight = 0.7, .tanh_weight = 0.6, .learnable = true,
                                                     .convex = false},
                                      .eca_kernel = 3,
                                      .conv_bias = false},
                                     ts::shape{2, 6, 1, 9});
    }
    SUBCASE("one column, 8 channels (adaptive ECA kernel 3)") {
        nn_test::gradient_check<fem>({.in_channels = 8, .out_channels = 8}, ts::shape{1, 8, 7, 1});
    }
}

TEST_CASE("feature_embedding: the composition act(ECA(main(x)) + shortcut(x))") {
    const fem::config cfg{.in_channels = 3, .out_channels = 6, .activation = {.relu_weight = 0.3, .tanh_weight = 0.7}};
    ts::rng a(11), b(11);
    fem::bind<ts::cpu_serial, double> block(cfg, a);
    CHECK(block.has_projection());
    // The same blocks, drawn from the same stream in the same order.
    fem::main_path::bind<ts::cpu_serial, double> main(fem::main_config(cfg), b);
    fem::projection_path::bind<ts::cpu_serial, double> proj(fem::projection_config(cfg), b);
    nn::fused_relu_tanh::bind<ts::cpu_serial, double> act(cfg.activation, b);
    nn::context<ts::cpu_serial> ctx;
    const auto x = nn_test::random_tensor<double>(ts::shape{2, 3, 5, 4}, 3);
    const auto y = block.forward(ctx, x).to_vector();
    const auto& m = main.forward(ctx, x);
    const auto& s = proj.forward(ctx, x);
    ts::tensor<double> sum(m.shape());
    for (index_t i = 0; i < sum.numel(); ++i) sum[i] = m[i] + s[i];
    const auto expect = act.forward(ctx, sum).to_vector();
    CHECK(nn_test::max_rel_diff(y, expect) <= 1e-14);
    CHECK(block.attention().kernel_size() == 1);  // ECA rule: t = int((log2(6) + 1) / 2) = 1, odd
    CHECK(block.output_activation().current_weights()[0] == doctest::Approx(0.3));
    CHECK(block.parameters().size() == main.parameters().size() + proj.parameters().size());
    CHECK(block.buffers().size() == 6);  // three batch norms' running mean and variance

    // Identity shortcut: no projection parameters.
    ts::rng c(1);
    fem::bind<ts::cpu_serial> same({.in_channels = 5, .out_channels = 5}, c);
    CHECK(!same.has_projection());
    CHECK(same.parameters().size() == 9);  // conv w,b; bn g,b; conv w,b; bn g,b; eca w
}

TEST_CASE("feature_embedding: skipping the input gradient keeps the parameter gradients") {
    const fem::config cfg{.in_channels = 3, .out_channels = 4, .activation = {.learnable = true}};
    ts::rng a(5), b(5);
    fem::bind<ts::cpu_serial, double> full(cfg, a), skip(cfg, b);
    skip.set_input_grad_needed(false);
    nn::context<ts::cpu_serial> ctx;
    const auto x = nn_test::random_tensor<double>(ts::shape{1, 3, 6, 6}, 9);
    const auto dy = nn_test::random_tensor<double>(ts::shape{1, 4, 6, 6}, 10);
    full.forward(ctx, x);
    full.backward(ctx, dy);
    skip.forward(ctx, x);
    skip.backward(ctx, dy);
    auto pf = full.parameters(), ps = skip.parameters();
    REQUIRE(pf.size() == ps.size());
    for (std::size_t k = 0; k < pf.size(); ++k)
        CHECK(nn_test::max_rel_diff(ps[k].grad->to_vector(), pf[k].grad->to_vector()) == 0.0);
}

TEST_CASE("feature_embedding: cpu_omp agrees with cpu_serial") {
    nn_test::serial_omp_agree<fem>({.in_channels = 3, .out_channels = 8}, ts::shape{1, 3, 9, 10}, 1e-4);
}

TEST_CASE("feature_embedding: bad configurations and inputs") {
    ts::rng g(1);
    auto msg = [](auto&& f) -> std::string {
        try {
            f();
        } catch (const ts::error& e) {
            return e.what();
        }
        return "";
    };
    CHECK(msg([&] { fem::bind<ts::cpu_serial> l({.in_channels = 0}, g); }).find("channel counts") != std::string::npos);
    CHECK(msg([&] { fem::bind<ts::cpu_serial> l({.in_channels = 3, .eca_kernel = 4}, g); }).find("odd") !=
          std::string::npos);
    CHECK(msg([&] {
              fem::bind<ts::cpu_serial> l({.in_channels = 3, .activation = {.relu_weight = 2, .tanh_weight = -1}}, g);
          }).find("[0, 1]") != std::string::npos);
    fem::bind<ts::cpu_serial> l({.in_channels = 3, .out_channels = 4}, g);
    nn::context<ts::cpu_serial> ctx;
    ts::tensor<float> x(ts::shape{1, 2, 4, 4});
    CHECK(msg([&] { l.forward(ctx, x); }).find("expects 3") != std::string::npos);
}
