// CUDA build of the backend tests: the same functor bodies, compiled by nvcc. Device cases are
// reported as skipped when no GPU is present.
#include <doctest/doctest.h>

#include <thrust/device_vector.h>

#include "support/backend_test.hpp"
#include "tessel/backend/parallel.hpp"
#include "tessel/core/tensor.hpp"

namespace ts = tessel;

struct iota_functor {
    double* p;
    TESSEL_HD void operator()(ts::index_t i) const { p[i] = static_cast<double>(i); }
};
struct read_functor {
    const double* p;
    TESSEL_HD double operator()(ts::index_t i) const { return p[i]; }
};

template <class B>
void device_parallel_loops() {
    ts::tensor<double, B> t(ts::shape{10007});
    ts::parallel_for(B{}, t.numel(), iota_functor{t.data()});
    const double s = ts::parallel_sum(B{}, t.numel(), 0.0, read_functor{t.data()});
    CHECK(s == doctest::Approx(10006.0 * 10007.0 / 2.0));
}
TESSEL_CUDA_TEST("parallel_for and parallel_sum on the device", device_parallel_loops)
// The host backends, compiled by nvcc, must keep working in the same binary.
TESSEL_BACKEND_TEST("parallel_for and parallel_sum, host backends under nvcc", device_parallel_loops)

TEST_CASE("cuda_device_available answers without crashing") {
    const bool avail = ts::cuda_device_available();
    MESSAGE("CUDA device available: " << (avail ? "yes" : "no (device cases are skipped)"));
    CHECK((avail || !avail));
}
