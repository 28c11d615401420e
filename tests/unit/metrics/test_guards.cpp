// The guards and smallest cases of the region metrics: an empty table, a log base of exactly 1,
// a two-pixel image (one pair), tables that do not share a segmentation, and ground truths that
// are all "no region" (label 0). Each expected value is worked out in the comment above it; the
// mutation run of docs/testing.md found these boundaries unasserted.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "tessel/metrics/contingency.hpp"
#include "tessel/metrics/covering.hpp"
#include "tessel/metrics/rand_index.hpp"
#include "tessel/metrics/variation_of_information.hpp"

namespace mt = tessel::metrics;
using tessel::label_map;

TEST_CASE("region metrics refuse an empty contingency table") {
    const mt::contingency_table empty{};
    CHECK_THROWS_AS((void)mt::rand_index(empty), tessel::error);
    CHECK_THROWS_AS((void)mt::entropies(empty), tessel::error);
    CHECK_THROWS_AS((void)mt::covering(empty), tessel::error);
    CHECK_THROWS_AS((void)mt::covering(empty, mt::covering_direction::seg_by_gt), tessel::error);
}

TEST_CASE("entropies: the log base must exceed 1; base 1 and below are refused, just above is not") {
    const auto t = mt::contingency(label_map(2, 1, {0, 1}), label_map(2, 1, {0, 0}));
    CHECK_THROWS_AS((void)mt::entropies(t, 1.0), tessel::error);
    CHECK_THROWS_AS((void)mt::entropies(t, 0.5), tessel::error);
    // H(S) of two singletons is log 2 / log base; at base e that is exactly log(2).
    const auto e = mt::entropies(t, std::exp(1.0));
    CHECK(e.h_seg == doctest::Approx(std::log(2.0)).epsilon(1e-12));
    CHECK(e.h_gt == 0.0);
}

TEST_CASE("rand_index: one pixel scores 1, two pixels have exactly one pair") {
    // One pixel: no pairs, 1 by convention.
    CHECK(mt::rand_index(label_map(1, 1, {3}), label_map(1, 1, {7})) == 1.0);
    // Two pixels, seg splits them and gt joins them: the only pair disagrees, RI = 0.
    CHECK(mt::rand_index(label_map(2, 1, {0, 1}), label_map(2, 1, {5, 5})) == 0.0);
    // Both split: the pair agrees, RI = 1.
    CHECK(mt::rand_index(label_map(1, 2, {0, 1}), label_map(1, 2, {4, 2})) == 1.0);
    // Three pixels, seg {a,a,b}, gt {a,a,a}: pairs (0,1) agree, (0,2) and (1,2) disagree: 1/3.
    CHECK(mt::rand_index(label_map(3, 1, {0, 0, 1}), label_map(3, 1, {0, 0, 0})) ==
          doctest::Approx(1.0 / 3.0).epsilon(1e-15));
}

TEST_CASE("covering: every region's weight counted once, in both directions") {
    // seg {0,0,1,1,1,2}, gt {0,0,0,1,1,1}. Regions and best IoUs:
    //   gt 0 (3 px): seg 0 -> 2/3, seg 1 -> 1/5; best 2/3.  gt 1 (3 px): seg 1 -> 2/4, seg 2 -> 1/3;
    //   best 1/2. C(gt by seg) = (3 * 2/3 + 3 * 1/2) / 6 = 3.5 / 6.
    //   seg 0 (2 px): 2/3. seg 1 (3 px): max(1/5, 2/4) = 1/2. seg 2 (1 px): 1/3.
    //   C(seg by gt) = (2 * 2/3 + 3 * 1/2 + 1 * 1/3) / 6 = (4/3 + 3/2 + 1/3) / 6 = (19/6) / 6.
    const label_map seg(6, 1, {0, 0, 1, 1, 1, 2}), gt(6, 1, {0, 0, 0, 1, 1, 1});
    CHECK(mt::covering(seg, gt) == doctest::Approx(3.5 / 6.0).epsilon(1e-14));
    CHECK(mt::covering(seg, gt, mt::covering_direction::seg_by_gt) == doctest::Approx(19.0 / 36.0).epsilon(1e-14));
}

TEST_CASE("bsr_covering_counts: tables must share one segmentation, labels and size both") {
    // Seg labels start at 1 here, since BSR's counts drop seg label 0 as a region.
    const label_map gt(2, 2, {1, 1, 2, 2});
    const auto t = mt::contingency(label_map(2, 2, {1, 1, 2, 2}), gt);
    // The same seg labels over a different pixel count: refused even though the labels agree.
    const auto other_size = mt::contingency(label_map(3, 2, {1, 1, 2, 2, 2, 2}), label_map(3, 2, {1, 1, 1, 2, 2, 2}));
    REQUIRE(other_size.row_labels == t.row_labels);
    const std::vector<mt::contingency_table> bad_size{t, other_size};
    CHECK_THROWS_AS((void)mt::bsr_covering_counts(bad_size), tessel::error);
    // The same size but different seg labels: refused.
    const auto other_labels = mt::contingency(label_map(2, 2, {1, 1, 3, 3}), gt);
    const std::vector<mt::contingency_table> bad_labels{t, other_labels};
    CHECK_THROWS_AS((void)mt::bsr_covering_counts(bad_labels), tessel::error);
    // Two identical tables are accepted: every region doubles, the ratio stays 1.
    const std::vector<mt::contingency_table> same{t, t};
    const auto c = mt::bsr_covering_counts(same);
    CHECK(c.cnt_r == 8.0);
    CHECK(c.sum_r == 8.0);
    CHECK(c.cnt_p == 4.0);
    CHECK(c.sum_p == 4.0);
    CHECK_THROWS_AS((void)mt::bsr_covering_counts(std::vector<mt::contingency_table>{}), tessel::error);
}

TEST_CASE("bsr_covering: ground truths with no region (all label 0) score 0, not NaN") {
    const label_map seg(2, 2, {0, 1, 1, 1});
    const std::vector<label_map> gts{label_map(2, 2, {0, 0, 0, 0}), label_map(2, 2, {0, 0, 0, 0})};
    const double sc = mt::bsr_covering(seg, gts);
    CHECK_FALSE(std::isnan(sc));
    CHECK(sc == 0.0);
    // One labelled GT beside an empty one: only its regions count, and seg label 0 is no segment.
    // gt {1,1,2,2} vs seg {0,1,1,1}: region 1 (2 px) meets seg 1 in 1 px, union 4: 1/4; region 2
    // (2 px) lies inside seg 1: 2/3. Covering = (2 * 1/4 + 2 * 2/3) / 4 = (11/6) / 4.
    const std::vector<label_map> mixed{label_map(2, 2, {0, 0, 0, 0}), label_map(2, 2, {1, 1, 2, 2})};
    CHECK(mt::bsr_covering(seg, mixed) == doctest::Approx(11.0 / 24.0).epsilon(1e-14));
}
