// Every differentiable block's backward against finite differences (double precision) on both
// CPU backends: the cpu_omp instantiations run different loop partitions (band-parallel conv,
// per-channel reductions), so they are checked on their own, not only compared with cpu_serial.
#include <doctest/doctest.h>

#include "support/backend_test.hpp"
#include "tessel/autograd/check_gradients.hpp"
#include "tessel/nn/activation.hpp"
#include "tessel/nn/batch_norm.hpp"
#include "tessel/nn/conv2d.hpp"
#include "tessel/nn/conv_transpose2d.hpp"
#include "tessel/nn/dropout.hpp"
#include "tessel/nn/eca.hpp"
#include "tessel/nn/fused.hpp"
#include "tessel/nn/inception.hpp"
#include "tessel/nn/linear.hpp"
#include "tessel/nn/max_pool2d.hpp"
#include "tessel/nn/pool.hpp"
#include "tessel/nn/relu.hpp"
#include "tessel/nn/upsample.hpp"

namespace ts = tessel;
namespace nn = ts::nn;

namespace {
template <class Spec, class B>
void expect_gradients(const typename Spec::config& cfg, const ts::shape& s, bool training = true) {
    ts::autograd::gradient_check_options opt;
    opt.training = training;
    const auto r = ts::autograd::check_gradients<Spec, B>(cfg, s, opt);
    INFO(r.report);
    CHECK(r.passed);
    CHECK(r.coords_checked > 0);
}
}  // namespace

template <class B>
void every_block_gradient() {
    const ts::shape img{2, 4, 7, 6};
    expect_gradients<nn::relu, B>({}, img);
    expect_gradients<nn::tanh, B>({}, img);
    expect_gradients<nn::sigmoid, B>({}, img);
    expect_gradients<nn::silu, B>({}, img);
    expect_gradients<nn::selu, B>({}, img);
    expect_gradients<nn::leaky_relu, B>({}, img);
    expect_gradients<nn::softmax, B>({}, img);
    expect_gradients<nn::log_softmax, B>({}, img);
    expect_gradients<nn::fused_relu_tanh, B>({}, img);
    expect_gradients<nn::fused_relu_tanh, B>({.relu_weight = 0.3, .tanh_weight = 0.7, .learnable = true}, img);
    expect_gradients<nn::avg_pool2d, B>({.kernel = 3, .stride = 2, .padding = 1}, img);
    expect_gradients<nn::global_avg_pool, B>({}, img);
    expect_gradients<nn::max_pool2d, B>({.kernel = 3, .stride = 1, .padding = 1}, img);
    expect_gradients<nn::upsample, B>({.scale_factor = 2}, img);
    expect_gradients<nn::upsample, B>({.mode = nn::upsample_mode::bilinear, .scale_factor = 2}, img);
    expect_gradients<nn::dropout, B>({.p = 0.3}, img);
    expect_gradients<nn::eca, B>({.channels = 4, .kernel = 3}, img);
    expect_gradients<nn::batch_norm, B>({.channels = 4}, img, true);
    expect_gradients<nn::batch_norm, B>({.channels = 4}, img, false);
    expect_gradients<nn::conv2d, B>({.in_channels = 4, .out_channels = 5, .kernel = 3, .stride = 2, .padding = 1,
                                     .dilation = 1},
                                    img);
    expect_gradients<nn::conv2d, B>({.in_channels = 4, .out_channels = 3, .kernel = 1}, img);
    expect_gradients<nn::conv_transpose2d, B>({.in_channels = 4, .out_channels = 3, .kernel = 3, .stride = 2,
                                               .padding = 1, .output_padding = 1},
                                              img);
    expect_gradients<nn::linear, B>({.in_features = 6, .out_features = 5}, ts::shape{3, 6});
    expect_gradients<nn::inception, B>({.in_channels = 4, .branch1 = 2, .branch2_reduce = 2, .branch2 = 3,
                                        .branch3_reduce = 2, .branch3 = 2, .branch4 = 2},
                                       img);
}
TESSEL_BACKEND_TEST("every nn block: backward matches finite differences", every_block_gradient)
