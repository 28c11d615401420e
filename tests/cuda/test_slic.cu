// CUDA build of the SLIC tests: the same bodies as tests/unit/superpixel (test_slic.inl),
// instantiated for the cuda backend (skipped without a device) and, to prove the header stays
// usable from nvcc-compiled code, for the host backends too.
#include <doctest/doctest.h>

#include "support/backend_test.hpp"
#include "unit/superpixel/test_slic.inl"

static_assert(tessel::SuperpixelAlgorithm<tessel::slic, tessel::cuda>);

TESSEL_CUDA_TEST("slic: segment counts equal scikit-image's on a synthetic scene", slic_tests::slic_counts_match_skimage)
TESSEL_CUDA_TEST("slic: count near n_segments, 4-connected segments, minimum size", slic_tests::slic_properties)
TESSEL_CUDA_TEST("slic: deterministic, and backends agree with cpu_serial", slic_tests::slic_deterministic)

TEST_CASE("slic under nvcc: host backends give the skimage counts") {
    slic_tests::slic_counts_match_skimage<tessel::cpu_serial>();
}

// Felzenszwalb compiles under nvcc too; on the cuda tag it runs on the host (documented), so it
// works without a device.
#include "tessel/superpixel/felzenszwalb.hpp"
static_assert(tessel::SuperpixelAlgorithm<tessel::felzenszwalb, tessel::cuda>);

TEST_CASE("felzenszwalb under nvcc: the cuda tag runs the host path") {
    const auto img = tessel::testing::gradient_scene(160, 120);
    const auto l = tessel::felzenszwalb{{.scale = 100, .sigma = 0.8, .min_size = 20}}(tessel::cuda{}, img);
    CHECK(l.count_labels() == 15);  // skimage 0.21 on the same bytes
}
