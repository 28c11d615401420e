// conv_bench: forward + backward of Kim 2020's network body (METHODS.md §2.1) at 481x321 on
// cpu_omp, against a large Eigen SGEMM with the same thread count.
//
// Body: conv3x3 3->100, ReLU, BN, conv3x3 100->100, ReLU, BN, conv1x1 100->100, BN (train-mode
// BN, input gradient of the first conv skipped as in training). Prints one JSON line each:
//   kim2020_body_fwd_bwd  whole body, gflops = conv GEMM flops / body time
//   kim2020_convs_fwd_bwd the three conv layers alone (sum of their forward + backward times)
//   conv3x3_100_fwd_bwd   the 100->100 3x3 conv alone (forward + backward incl. dx)
//   sgemm_2048            Eigen's own (OpenMP-parallel) 2048^3 SGEMM
//   sgemm_2048_tessel     the same Eigen kernel through tessel::ops::gemm(cpu_omp) (C split
//                         between the threads)
// ratio_to_sgemm = (our GFLOP/s) / (SGEMM GFLOP/s), where the SGEMM figure is the faster of the
// two 2048^3 runs, so the ratio is never flattered by a slow peer. Times are the best of `reps`
// runs after a warm-up run (the 2-core machine is shared, so the minimum is the least disturbed
// figure). Eigen needs the host ISA to be competitive: bench/CMakeLists.txt builds this program
// with -march=native (TESSEL_BENCH_NATIVE).
#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "args.hpp"
#include "tessel/nn/batch_norm.hpp"
#include "tessel/nn/conv2d.hpp"
#include "tessel/nn/relu.hpp"
#include "tessel/nn/sequential.hpp"
#include "tessel/ops/gemm.hpp"

namespace ts = tessel;
using B = ts::cpu_omp;

template <class F>
double best_of(int reps, F&& f) {
    f();  // warm-up: first-call allocations, page faults, thread pool start
    double best = 1e300;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

int main(int argc, char** argv) {
    ts::bench::handle_help(argc, argv, "usage: conv_bench [repeats (default 3)]: 3x3 convolution and GEMM timings at 481x321");
    const int reps = static_cast<int>(ts::bench::int_arg(argc, argv, 1, 3, 1, 1000, "repeats"));
    const int threads = ts::num_threads(B{});
    const ts::index_t H = 321, W = 481, q = 100, P = H * W;

    // ---- peer: Eigen SGEMM 2048^3 with the same number of threads ------------------------------
    const ts::index_t n = 2048;
    Eigen::setNbThreads(threads);
    Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n), c(n, n);
    const double sgemm_flops = 2.0 * double(n) * double(n) * double(n);
    const double t_sgemm = best_of(reps, [&] { c.noalias() = a * b; });
    std::printf("{\"bench\":\"sgemm_2048\",\"seconds\":%.4f,\"gflops\":%.1f,\"threads\":%d}\n", t_sgemm,
                sgemm_flops / t_sgemm * 1e-9, threads);
    const double t_split = best_of(reps, [&] {
        ts::ops::gemm(B{}, ts::ops::gemm_args<float>{.m = n, .n = n, .k = n, .a = a.data(), .lda = n, .b = b.data(),
                                                     .ldb = n, .c = c.data(), .ldc = n});
    });
    std::printf("{\"bench\":\"sgemm_2048_tessel\",\"seconds\":%.4f,\"gflops\":%.1f,\"threads\":%d}\n", t_split,
                sgemm_flops / t_split * 1e-9, threads);
    const double ref_gflops = sgemm_flops / std::min(t_sgemm, t_split) * 1e-9;
    std::fflush(stdout);

    // ---- Kim 2020 body ------------------------------------------------------------------------
    using body = ts::nn::sequential<ts::nn::conv2d, ts::nn::relu, ts::nn::batch_norm, ts::nn::conv2d, ts::nn::relu,
                                    ts::nn::batch_norm, ts::nn::conv2d, ts::nn::batch_norm>;
    ts::rng init(1);
    body::bind<B> net({{.in_channels = 3, .out_channels = q, .kernel = 3, .padding = 1}, {}, {.channels = q},
                       {.in_channels = q, .out_channels = q, .kernel = 3, .padding = 1}, {}, {.channels = q},
                       {.in_channels = q, .out_channels = q, .kernel = 1}, {.channels = q}},
                      init);
    net.set_input_grad_needed(false);
    ts::nn::context<B> ctx;
    ts::tensor<float, B> x(ts::shape{1, 3, H, W});
    ts::rng data(2);
    for (ts::index_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(data.uniform01());
    ts::tensor<float, B> dy(ts::shape{1, q, H, W});
    for (ts::index_t i = 0; i < dy.numel(); ++i) dy[i] = static_cast<float>(data.uniform(-1e-3, 1e-3));

    // GEMM flops of the three convs: forward, dW, and dx for all but the first.
    const double f3 = 2.0 * double(P) * double(q) * 27, f100 = 2.0 * double(P) * double(q) * 900,
                 f1 = 2.0 * double(P) * double(q) * 100;
    const double body_flops = 2 * f3 + 3 * f100 + 3 * f1;
    const double t_body = best_of(reps, [&] {
        net.forward(ctx, x);
        net.backward(ctx, dy);
    });
    const double body_gflops = body_flops / t_body * 1e-9;
    std::printf("{\"bench\":\"kim2020_body_fwd_bwd\",\"seconds\":%.4f,\"gflops\":%.1f,\"ratio_to_sgemm\":%.3f,"
                "\"gflop\":%.1f,\"image\":\"481x321\",\"channels\":%lld,\"threads\":%d}\n",
                t_body, body_gflops, body_gflops / ref_gflops, body_flops * 1e-9, static_cast<long long>(q), threads);
    std::fflush(stdout);

    // ---- the conv layers alone, each timed on its own input from the body ------------------------
    const auto& a0 = x;
    const auto& a1 = net.layer<0>().forward(ctx, a0);
    const auto& a3 = net.layer<2>().forward(ctx, net.layer<1>().forward(ctx, a1));
    const auto& a4 = net.layer<3>().forward(ctx, a3);
    const auto& a6 = net.layer<5>().forward(ctx, net.layer<4>().forward(ctx, a4));
    auto time_conv = [&](auto& conv, const ts::tensor<float, B>& in) {
        return best_of(reps, [&] {
            conv.forward(ctx, in);
            conv.backward(ctx, dy);
        });
    };
    const double t_c1 = time_conv(net.layer<0>(), a0), t_c2 = time_conv(net.layer<3>(), a3),
                 t_c3 = time_conv(net.layer<6>(), a6);
    const double convs_gflops = body_flops / (t_c1 + t_c2 + t_c3) * 1e-9;
    std::printf("{\"bench\":\"kim2020_convs_fwd_bwd\",\"seconds\":%.4f,\"gflops\":%.1f,\"ratio_to_sgemm\":%.3f,"
                "\"conv3x3_3_seconds\":%.4f,\"conv3x3_100_seconds\":%.4f,\"conv1x1_100_seconds\":%.4f}\n",
                t_c1 + t_c2 + t_c3, convs_gflops, convs_gflops / ref_gflops, t_c1, t_c2, t_c3);
    const double conv_gflops = 3 * f100 / t_c2 * 1e-9;
    std::printf("{\"bench\":\"conv3x3_100_fwd_bwd\",\"seconds\":%.4f,\"gflops\":%.1f,\"ratio_to_sgemm\":%.3f,"
                "\"band_rows\":%lld}\n",
                t_c2, conv_gflops, conv_gflops / ref_gflops, static_cast<long long>(net.layer<3>().band_rows()));
    return 0;
}
