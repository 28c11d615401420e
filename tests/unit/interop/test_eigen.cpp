#include <doctest/doctest.h>

#include "tessel/interop/eigen.hpp"

namespace ts = tessel;

TEST_CASE("eigen interop: maps share storage; copies preserve values in either storage order") {
    ts::tensor<float> t(ts::shape{2, 3}, {1, 2, 3, 4, 5, 6});
    auto m = ts::interop::as_eigen(t);
    CHECK(m(1, 0) == 4.0f);
    m(0, 2) = 30.0f;
    CHECK(t(0, 2) == 30.0f);

    Eigen::MatrixXd col(2, 2);  // column-major
    col << 1, 2, 3, 4;
    auto back = ts::interop::to_tensor(col);
    CHECK(back.shape() == ts::shape{2, 2});
    CHECK(back(0, 1) == 2.0);
    CHECK(back(1, 0) == 3.0);

    ts::tensor<float> v(ts::shape{6});
    CHECK_THROWS_AS(ts::interop::as_eigen(v), ts::error);
}
