// ops::argmax_channels at ties: the smallest channel index wins, as torch.argmax (Kim 2020's
// pseudo-labels and stopping rule are computed from it, so a different tie rule changes which
// label a pixel gets and how many labels are counted). Each expected label is read off the
// constructed responses in the comments.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "support/backend_test.hpp"
#include "tessel/ops/argmax.hpp"

namespace ts = tessel;
using ts::index_t;
using ts::label_t;

template <class B>
void argmax_ties_go_to_the_smallest_channel() {
    // [N=1, C=4, H=1, W=6]; channel k of pixel p is x[k * 6 + p].
    //   pixel 0: all four equal                       -> 0
    //   pixel 1: channels 1 and 3 tie at the maximum  -> 1
    //   pixel 2: channels 2 and 3 tie, 0 and 1 lower  -> 2
    //   pixel 3: channels 0 and 3 tie                 -> 0
    //   pixel 4: -0.0 in channel 0, +0.0 in channel 2, both the maximum (they compare equal) -> 0
    //   pixel 5: a unique maximum in channel 3, as a control -> 3
    const std::vector<double> v{
        5, 1, 0, 7, -0.0, 1,   // channel 0
        5, 9, 0, 2, -1,   2,   // channel 1
        5, 3, 4, 6, +0.0, 3,   // channel 2
        5, 9, 4, 7, -2,   4};  // channel 3
    ts::tensor<double> host;
    host.assign(ts::shape{1, 4, 1, 6}, v.begin(), v.end());
    const auto x = host.to<B>();
    ts::tensor<label_t, B> labels;
    std::vector<std::uint8_t> seen;
    const index_t distinct = ts::ops::argmax_channels(x, labels, seen);
    CHECK(labels.to_vector() == std::vector<label_t>{0, 1, 2, 0, 0, 3});
    CHECK(distinct == 4);

    // Past a cache or vector width: 300 channels, every one equal to 1 except two maxima of 2
    // at channels 200 and 257 -> 200 for every pixel; one label in use.
    const index_t C = 300, P = 37;
    ts::tensor<float> wide_host(ts::shape{2, C, P, 1}, 1.0f);
    for (index_t n = 0; n < 2; ++n)
        for (index_t p = 0; p < P; ++p) {
            wide_host[(n * C + 200) * P + p] = 2.0f;
            wide_host[(n * C + 257) * P + p] = 2.0f;
        }
    const auto wide = wide_host.to<B>();
    ts::tensor<label_t, B> wl;
    CHECK(ts::ops::argmax_channels(wide, wl, seen) == 1);
    CHECK(wl.to_vector() == std::vector<label_t>(static_cast<std::size_t>(2 * P), 200));
}
TESSEL_BACKEND_TEST("argmax_channels: ties go to the smallest channel, as torch.argmax",
                    argmax_ties_go_to_the_smallest_channel)
