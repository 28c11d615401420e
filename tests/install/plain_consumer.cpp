// A program built without CMake, with the plain flags of docs/without_cmake.md: the umbrella
// header compiles, cpu_omp uses the threads OpenMP gives it (TESSEL_HAS_OPENMP follows -fopenmp),
// and a preset runs. Prints one line; exits non-zero on any failure.
//   plain [W H ITERATIONS]   (default 32 24 3; docs/without_cmake.md times 481 321 5 per flag set)
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <tessel/tessel.hpp>
#ifdef _OPENMP
#  include <omp.h>
#endif

int main(int argc, char** argv) {
    const tessel::index_t W = argc > 3 ? std::atoi(argv[1]) : 32, H = argc > 3 ? std::atoi(argv[2]) : 24;
    const tessel::index_t iterations = argc > 3 ? std::atoi(argv[3]) : 3;
    const int threads = tessel::num_threads(tessel::cpu_omp{});
#ifdef _OPENMP
    if (threads != omp_get_max_threads()) {
        std::printf("cpu_omp runs on %d threads, OpenMP offers %d\n", threads, omp_get_max_threads());
        return 1;
    }
#endif
    tessel::image<std::uint8_t> img(W, H, 3);
    for (tessel::index_t y = 0; y < H; ++y)
        for (tessel::index_t x = 0; x < W; ++x)
            for (int c = 0; c < 3; ++c) img(x, y, c) = static_cast<std::uint8_t>(x < W / 2 ? 40 + 10 * c : 200 - 30 * c);
    tessel::methods::kim2020_config cfg;
    cfg.channels = argc > 3 ? 100 : 8;
    cfg.train.max_iterations = iterations;
    cfg.train.min_labels = 0;
    tessel::methods::kim2020<tessel::cpu_omp> method(cfg);
    const auto t0 = std::chrono::steady_clock::now();
    const auto labels = method.run(img, tessel::seed{1});
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("plain build: %d threads, %lld segments after %lld iterations, %.3f s per iteration (run time / iterations)\n", threads,
                static_cast<long long>(labels.count_labels()), static_cast<long long>(method.last_report().iterations),
                s / static_cast<double>(iterations));
    return method.last_report().iterations == iterations ? 0 : 1;
}
