// Compile-time tests of the core and nn concepts: each accepts what it should and rejects the rest.
#include <string>
#include <vector>

#include "tessel/core/concepts.hpp"
#include "tessel/nn/relu.hpp"
#include "tessel/nn/sequential.hpp"

namespace ts = tessel;

namespace {
struct not_a_backend {
    int state = 0;
};
struct missing_name {};
struct spec_without_config {};
struct layer_without_backward {
    struct config {};
    template <ts::Backend B, class T = float>
    struct bind {
        const ts::tensor<T, B>& forward(ts::nn::context<B>&, const ts::tensor<T, B>& x) { return x; }
        ts::nn::parameter_list<T, B> parameters() { return {}; }
    };
};
}  // namespace

static_assert(ts::Backend<ts::cpu_serial> && ts::Backend<ts::cpu_omp> && ts::Backend<ts::cuda>);
static_assert(!ts::Backend<not_a_backend> && !ts::Backend<missing_name> && !ts::Backend<int>);
static_assert(ts::HostBackend<ts::cpu_omp> && !ts::HostBackend<ts::cuda>);
static_assert(ts::Tensor<ts::tensor<float>> && !ts::Tensor<std::vector<float>>);
static_assert(ts::TensorOf<ts::tensor<double, ts::cpu_omp>, double, ts::cpu_omp>);
static_assert(!ts::TensorOf<ts::tensor<double, ts::cpu_omp>, float, ts::cpu_omp>);
static_assert(!ts::TensorOf<ts::tensor<float, ts::cpu_omp>, float, ts::cpu_serial>);
static_assert(ts::nn::LayerSpec<ts::nn::relu> && !ts::nn::LayerSpec<spec_without_config>);
static_assert(ts::nn::LayerSpec<ts::nn::sequential<ts::nn::relu, ts::nn::relu>>);
static_assert(ts::nn::Layer<ts::nn::relu::bind<ts::cpu_omp, double>, ts::cpu_omp, double>);
static_assert(ts::nn::LayerSpec<layer_without_backward>);
static_assert(!ts::nn::Layer<layer_without_backward::bind<ts::cpu_serial>, ts::cpu_serial>);
