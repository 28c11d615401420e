#include <doctest/doctest.h>

#include "support/backend_test.hpp"
#include "tessel/autograd/check_gradients.hpp"
#include "tessel/nn/relu.hpp"
#include "tessel/nn/repeat.hpp"
#include "tessel/nn/sequential.hpp"

namespace ts = tessel;

template <class B>
void relu_forward_backward() {
    ts::rng init(1);
    ts::nn::relu::bind<B> layer({}, init);
    ts::nn::context<B> ctx;
    ts::tensor<float, B> x(ts::shape{1, 1, 2, 2}, {-1.f, 2.f, 0.f, 3.5f});
    const auto& y = layer.forward(ctx, x);
    CHECK(y.to_vector() == std::vector<float>{0.f, 2.f, 0.f, 3.5f});
    ts::tensor<float, B> dy(ts::shape{1, 1, 2, 2}, {1.f, 1.f, 1.f, -2.f});
    CHECK(layer.backward(ctx, dy).to_vector() == std::vector<float>{0.f, 1.f, 0.f, -2.f});
    ts::tensor<float, B> wrong(ts::shape{1, 1, 2, 3});
    CHECK_THROWS_AS(layer.backward(ctx, wrong), ts::error);
}
TESSEL_BACKEND_TEST("relu: forward and backward by hand", relu_forward_backward)

TEST_CASE("relu: gradient check") {
    auto r = ts::autograd::check_gradients<ts::nn::relu>({}, ts::shape{2, 3, 4, 5});
    INFO(r.report);
    CHECK(r.passed);
    CHECK(r.coords_checked > 100);
}

TEST_CASE("sequential and repeat: composition equals applying the layers in turn") {
    using net = ts::nn::sequential<ts::nn::relu, ts::nn::repeat<ts::nn::relu>>;
    ts::rng init(1);
    net::bind<ts::cpu_serial> n({{}, {.count = 3, .block = {}}}, init);
    ts::nn::context<ts::cpu_serial> ctx;
    ts::tensor<float> x(ts::shape{4}, {-1.f, 1.f, -2.f, 2.f});
    CHECK(n.forward(ctx, x).to_vector() == std::vector<float>{0.f, 1.f, 0.f, 2.f});
    ts::tensor<float> dy(ts::shape{4}, {5.f, 6.f, 7.f, 8.f});
    CHECK(n.backward(ctx, dy).to_vector() == std::vector<float>{0.f, 6.f, 0.f, 8.f});
    CHECK(n.parameters().empty());
    auto r = ts::autograd::check_gradients<net>({{}, {.count = 2, .block = {}}}, ts::shape{3, 7});
    INFO(r.report);
    CHECK(r.passed);
}

TEST_CASE("check_scalar_gradient catches a wrong gradient") {
    ts::tensor<double> x(ts::shape{3}, {0.5, -1.0, 2.0});
    auto f = [&] { return x[0] * x[0] + 3 * x[1] + x[2] * x[1]; };
    ts::tensor<double> good(ts::shape{3}, {1.0, 3.0 + 2.0, -1.0});
    ts::tensor<double> bad(ts::shape{3}, {1.0, 3.0, -1.0});
    CHECK(ts::autograd::check_scalar_gradient(f, x, good).passed);
    CHECK_FALSE(ts::autograd::check_scalar_gradient(f, x, bad).passed);
}
