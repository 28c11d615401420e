// conv_engines_bench: nn::conv2d's two engines on the same 3x3 stride-1 layers, forward +
// backward, to place the rule of conv_engine::automatic (nn/conv2d.hpp, docs/nn_conv.md).
//
// For each shape it times the layer with engine = im2col and engine = direct (same weights, same
// input, cpu_omp on all threads) and prints one JSON line:
//   {"bench":"conv3x3_engines","shape":..., "seconds": direct time, "im2col_seconds": ...,
//    "ratio_to_im2col": direct / im2col, "automatic": the engine automatic picks}
// The shapes are those of the methods: Kim 2020's first layer (3 -> 100 at 481x321, input
// gradient skipped), GraPL's dense layers (3 -> 32, 32 -> 8 at 481x321, valid) and its training
// batch (512 patches of 16 x 16), and square layers of 8, 16 and 32 channels. Times are the best of
// `reps` runs after a warm-up run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "args.hpp"
#include "tessel/nn/conv2d.hpp"

namespace ts = tessel;
using B = ts::cpu_omp;

namespace {

template <class F>
double best_of(int reps, F&& f) {
    f();
    double best = 1e300;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

struct shape_case {
    const char* name;
    ts::index_t n, in, out, h, w, pad;
    bool input_grad;
};

double time_engine(const shape_case& c, ts::nn::conv_engine e, int reps, bool& direct) {
    ts::rng init(1);
    ts::nn::conv2d::bind<B> layer({.in_channels = c.in, .out_channels = c.out, .kernel = 3, .padding = c.pad, .engine = e},
                                  init);
    layer.set_input_grad_needed(c.input_grad);
    ts::nn::context<B> ctx;
    ts::tensor<float, B> x(ts::shape{c.n, c.in, c.h, c.w});
    ts::rng data(2);
    for (ts::index_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(data.uniform(-1, 1));
    const auto& y0 = layer.forward(ctx, x);
    ts::tensor<float, B> dy(y0.shape());
    for (ts::index_t i = 0; i < dy.numel(); ++i) dy[i] = static_cast<float>(data.uniform(-1, 1));
    direct = layer.uses_direct_engine();
    return best_of(reps, [&] {
        layer.forward(ctx, x);
        layer.backward(ctx, dy);
    });
}

}  // namespace

int main(int argc, char** argv) {
    ts::bench::handle_help(argc, argv, "usage: conv_engines_bench [repeats (default 3)]: every convolution engine on the presets' layer shapes");
    const int reps = static_cast<int>(ts::bench::int_arg(argc, argv, 1, 3, 1, 1000, "repeats"));
    const shape_case cases[] = {
        {"kim2020_conv1_3x100_481x321", 1, 3, 100, 321, 481, 1, false},
        {"grapl_dense_3x32_481x321", 1, 3, 32, 321, 481, 0, false},
        {"grapl_dense_32x8_481x321", 1, 32, 8, 319, 479, 0, true},
        {"grapl_batch_512x3x32_16x16", 512, 3, 32, 16, 16, 0, false},
        {"grapl_batch_512x32x8_14x14", 512, 32, 8, 14, 14, 0, true},
        {"square_8_481x321", 1, 8, 8, 321, 481, 1, true},
        {"square_16_481x321", 1, 16, 16, 321, 481, 1, true},
        {"square_32_481x321", 1, 32, 32, 321, 481, 1, true},
    };
    for (const auto& c : cases) {
        bool d_im2col = false, d_direct = false, d_auto = false;
        const double t_im2col = time_engine(c, ts::nn::conv_engine::im2col, reps, d_im2col);
        const double t_direct = time_engine(c, ts::nn::conv_engine::direct, reps, d_direct);
        (void)time_engine(c, ts::nn::conv_engine::automatic, 0, d_auto);
        std::printf("{\"bench\":\"conv3x3_engines\",\"shape\":\"%s\",\"seconds\":%.5f,\"im2col_seconds\":%.5f,"
                    "\"ratio_to_im2col\":%.3f,\"automatic\":\"%s\",\"threads\":%d,\"simd_lanes\":%lld}\n",
                    c.name, t_direct, t_im2col, t_direct / t_im2col, d_auto ? "direct" : "im2col", ts::num_threads(B{}),
                    static_cast<long long>(ts::simd::lanes));
        std::fflush(stdout);
    }
    return 0;
}
