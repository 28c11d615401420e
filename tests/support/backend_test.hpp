// Test support: write a test body once as a template over the backend, instantiate per backend.
//
//   template <class B> void slic_counts() { ... }
//   TESSEL_BACKEND_TEST("slic: segment count", slic_counts)
// expands to one TEST_CASE per CPU backend ("... [cpu_serial]", "... [cpu_omp]"). In a .cu file,
// TESSEL_CUDA_TEST adds the cuda case, which doctest reports as skipped when no device is present.
#pragma once
#include <doctest/doctest.h>

#include "tessel/backend/device.hpp"
#include "tessel/backend/tags.hpp"

#define TESSEL_TEST_CAT2(a, b) a##b
#define TESSEL_TEST_CAT(a, b) TESSEL_TEST_CAT2(a, b)

#define TESSEL_BACKEND_TEST(name, body)                                                   \
    TEST_CASE(name " [cpu_serial]") { body<tessel::cpu_serial>(); }                       \
    TEST_CASE(name " [cpu_omp]") { body<tessel::cpu_omp>(); }

#define TESSEL_CUDA_TEST(name, body)                                                      \
    TEST_CASE(name " [cuda]" * doctest::skip(!tessel::cuda_device_available())) {         \
        body<tessel::cuda>();                                                             \
    }
