// expect: the cuda backend must be used from a \.cu file compiled by nvcc
// Running a loop on the cuda backend from a g++ translation unit names the fix in the diagnostic.
#include <tessel/backend/parallel.hpp>

int main() {
    tessel::parallel_for(tessel::cuda{}, 4, [](tessel::index_t) {});
    return 0;
}
