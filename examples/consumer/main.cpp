// Uses the installed tessel package: a parallel loop on the cpu_omp backend over a synthetic image.
#include <cstdio>

#include <tessel/backend/parallel.hpp>
#include <tessel/core/image.hpp>

int main() {
    tessel::image<unsigned char> img(64, 48, 3, 0);
    unsigned char* px = img.data();
    tessel::parallel_for(tessel::cpu_omp{}, img.num_pixels(), [px](tessel::index_t i) { px[i * 3] = 200; });
    const double sum = tessel::parallel_sum(tessel::cpu_omp{}, img.num_pixels(), 0.0,
                                            [px](tessel::index_t i) { return static_cast<double>(px[i * 3]); });
    std::printf("tessel %s consumer: red sum %.0f over %lld pixels\n", TESSEL_VERSION_STRING, sum,
                static_cast<long long>(img.num_pixels()));
    return sum == 200.0 * 64 * 48 ? 0 : 1;
}
