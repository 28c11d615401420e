// enforce_connectivity on hand-made label maps whose answers are worked out in the comments.
#include <doctest/doctest.h>

#include <vector>

#include "tessel/core/random.hpp"
#include "tessel/superpixel/connectivity.hpp"
#include "unit/superpixel/test_slic.inl"

namespace ts = tessel;

TEST_CASE("enforce_connectivity: split labels become separate segments, numbered in raster order") {
    // Label 7 appears in two separate places: it must become two segments.
    const ts::label_map in(4, 3, std::vector<ts::label_t>{7, 7, 2, 7,  //
                                                          7, 7, 2, 7,  //
                                                          2, 2, 2, 7});
    const auto out = ts::enforce_connectivity(in, {.min_size = 0, .max_size = 100}, 1);
    const std::vector<ts::label_t> want{1, 1, 2, 3,  //
                                        1, 1, 2, 3,  //
                                        2, 2, 2, 3};
    CHECK(out.values() == want);
}

TEST_CASE("enforce_connectivity: a small piece joins the last relabelled neighbour its search met") {
    // The single 5 at (1,1) has relabelled neighbours left (x-1) and up (y-1) when it is reached;
    // the search checks +x, -x, +y, -y, so the last one met is the pixel above: label of the 1s.
    const ts::label_map in(3, 3, std::vector<ts::label_t>{1, 1, 1,  //
                                                          2, 5, 3,  //
                                                          2, 3, 3});
    const auto out = ts::enforce_connectivity(in, {.min_size = 2, .max_size = 100}, 0);
    const std::vector<ts::label_t> want{0, 0, 0,  //
                                        1, 0, 2,  //
                                        1, 2, 2};
    CHECK(out.values() == want);
}

TEST_CASE("enforce_connectivity: components are cut at max_size") {
    // One label over a 4 x 2 image with max_size 3: the search stops at 3 pixels, the raster scan
    // restarts at the first pixel left over, and so on.
    const ts::label_map in(4, 2, ts::label_t{9});
    const auto out = ts::enforce_connectivity(in, {.min_size = 0, .max_size = 3}, 0);
    // Breadth-first from (0,0): (0,0), (1,0) [+x], (0,1) [+y] -> segment 0; from (2,0): (2,0),
    // (3,0), (2,1) -> segment 1; from (1,1): (1,1) and nothing else unvisited... (3,1) is not
    // adjacent to (1,1), so (1,1) alone is segment 2 and (3,1) segment 3.
    const std::vector<ts::label_t> want{0, 0, 1, 1,  //
                                        0, 2, 1, 3};
    CHECK(out.values() == want);
}

TEST_CASE("enforce_connectivity: a small first segment joins the next one (no stray label)") {
    // The first component (the single 4 at the corner) is below min_size and has no relabelled
    // neighbour; it takes the label of the next component, which touches it.
    const ts::label_map in(3, 2, std::vector<ts::label_t>{4, 6, 6,  //
                                                          6, 6, 6});
    const auto out = ts::enforce_connectivity(in, {.min_size = 2, .max_size = 100}, 1);
    CHECK(out.values() == std::vector<ts::label_t>(6, 1));
}

TEST_CASE("enforce_connectivity: random maps come out connected and above the minimum size") {
    ts::rng gen(3);
    for (int trial = 0; trial < 20; ++trial) {
        ts::label_map in(23, 17);
        for (auto& v : in.values()) v = static_cast<ts::label_t>(gen.below(4));
        const auto out = ts::enforce_connectivity(in, {.min_size = 5, .max_size = 40}, 1);
        const ts::index_t k = out.count_labels();
        CHECK(slic_tests::count_components(out) == k);
        CHECK(slic_tests::smallest_segment(out) >= 5);
        CHECK(*std::min_element(out.values().begin(), out.values().end()) == 1);
        CHECK(*std::max_element(out.values().begin(), out.values().end()) == k);
    }
}

TEST_CASE("enforce_connectivity: errors") {
    CHECK_THROWS_AS((void)ts::enforce_connectivity(ts::label_map{}, {0, 4}), ts::error);
    CHECK_THROWS_AS((void)ts::enforce_connectivity(ts::label_map(2, 2), {0, 0}), ts::error);
    CHECK_THROWS_AS((void)ts::enforce_connectivity(ts::label_map(2, 2), {0, 4}, -1), ts::error);
    const auto lim = ts::slic_connectivity_limits(154401, 9600, 0.5, 3.0);
    CHECK(lim.min_size == 8);   // int(0.5 * 16.08)
    CHECK(lim.max_size == 48);  // int(3 * 16.08)
}
