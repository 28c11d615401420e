#include <doctest/doctest.h>

#include "tessel/interop/xtensor.hpp"

namespace ts = tessel;

TEST_CASE("xtensor interop: round trip, shapes and zero-copy adaptor") {
    ts::tensor<double> t(ts::shape{2, 2, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
    auto a = ts::interop::to_xarray(t);
    REQUIRE(a.dimension() == 3);
    CHECK(a.shape()[2] == 3);
    CHECK(a(1, 0, 2) == 8.0);
    auto back = ts::interop::from_xtensor(a * 2.0);
    CHECK(back.shape() == t.shape());
    CHECK(back(1, 1, 1) == 20.0);
    auto view = ts::interop::adapt(t);
    view(0, 1, 1) = -1.0;
    CHECK(t(0, 1, 1) == -1.0);
}
