// expect: the cuda backend must be used from a \.cu file compiled by nvcc
// A cuda tensor in a translation unit that g++ compiles must be a readable static_assert, not a
// link error.
#include <tessel/core/tensor.hpp>

int main() {
    tessel::tensor<float, tessel::cuda> t(tessel::shape{4});
    return static_cast<int>(t.numel());
}
