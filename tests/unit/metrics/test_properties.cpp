// Property tests on random synthetic segmentations: perfect self-scores, invariance to relabelling,
// symmetry where a metric is symmetric, agreement with brute-force definitions, and input checks.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "support/backend_test.hpp"
#include "tessel/core/random.hpp"
#include "tessel/metrics/aggregate.hpp"
#include "tessel/metrics/boundary_displacement.hpp"
#include "tessel/metrics/clustering_scores.hpp"
#include "tessel/metrics/matched_iou.hpp"

namespace mt = tessel::metrics;
using tessel::index_t;
using tessel::label_map;
using tessel::label_t;

namespace {
// Blocky random segmentation: k labels on a grid of cells, so regions have real boundaries.
label_map random_blocks(index_t w, index_t h, int k, std::uint64_t seed, int cell = 3) {
    tessel::rng g(seed);
    const index_t cw = (w + cell - 1) / cell, ch = (h + cell - 1) / cell;
    std::vector<label_t> cells(static_cast<std::size_t>(cw * ch));
    for (auto& c : cells) c = static_cast<label_t>(g.below(static_cast<std::uint64_t>(k)));
    label_map m(w, h);
    for (index_t y = 0; y < h; ++y)
        for (index_t x = 0; x < w; ++x) m(x, y) = cells[static_cast<std::size_t>((y / cell) * cw + x / cell)];
    return m;
}
// A one-to-one relabelling onto sparse, negative and huge ids.
label_map scramble(const label_map& m, std::uint64_t seed) {
    tessel::rng g(seed);
    label_map out = m;
    const label_t mult = 2 * static_cast<label_t>(g.below(1000)) + 100003;
    for (auto& v : out.values()) v = v * mult - 50000000;
    return out;
}
constexpr double eps = 1e-12;
}  // namespace

template <class B>
void self_scores_are_perfect() {
    for (std::uint64_t s = 1; s <= 5; ++s) {
        const auto a = random_blocks(23, 17, 2 + static_cast<int>(s), s);
        const auto t = mt::contingency(a, a, B{});
        CHECK(mt::rand_index(t) == doctest::Approx(1.0).epsilon(eps));
        CHECK(std::abs(mt::variation_of_information(t).vi) < 1e-12);
        CHECK(mt::covering(t, mt::covering_direction::gt_by_seg) == doctest::Approx(1.0).epsilon(eps));
        CHECK(mt::covering(t, mt::covering_direction::seg_by_gt) == doctest::Approx(1.0).epsilon(eps));
        CHECK(mt::boundary_displacement_error(a, a, B{}) == 0.0);
        CHECK(mt::normalized_mutual_information(t) == doctest::Approx(1.0).epsilon(eps));
        CHECK(mt::adjusted_rand_index(t) == doctest::Approx(1.0).epsilon(eps));
        const auto h = mt::hungarian_scores(t);
        CHECK(h.accuracy == 1.0);
        CHECK(h.miou_gt_classes == 1.0);
        CHECK(h.miou_union == 1.0);
        CHECK(h.weighted_jaccard == 1.0);
        CHECK(h.weighted_jaccard_pred == 1.0);
        CHECK(mt::foreground_iou(a, a, mt::mask_polarity::as_given, B{}).iou == 1.0);
    }
}
TESSEL_BACKEND_TEST("metrics: a segmentation against itself scores perfectly", self_scores_are_perfect)

template <class B>
void relabelling_invariance() {
    for (std::uint64_t s = 1; s <= 5; ++s) {
        const auto a = random_blocks(31, 19, 5, s), b = random_blocks(31, 19, 4, s + 100, 4);
        const auto a2 = scramble(a, s), b2 = scramble(b, s + 7);
        const auto t = mt::contingency(a, b, B{}), t2 = mt::contingency(a2, b2, B{});
        CHECK(t2.dense() == t.dense());  // monotone relabelling keeps the row/column order
        CHECK(mt::rand_index(t2) == doctest::Approx(mt::rand_index(t)).epsilon(eps));
        CHECK(mt::variation_of_information(t2).vi == doctest::Approx(mt::variation_of_information(t).vi).epsilon(eps));
        CHECK(mt::covering(t2) == doctest::Approx(mt::covering(t)).epsilon(eps));
        CHECK(mt::boundary_displacement_error(a2, b2, B{}) ==
              doctest::Approx(mt::boundary_displacement_error(a, b, B{})).epsilon(eps));
        CHECK(mt::hungarian_scores(t2).accuracy == doctest::Approx(mt::hungarian_scores(t).accuracy).epsilon(eps));
        CHECK(mt::normalized_mutual_information(t2) ==
              doctest::Approx(mt::normalized_mutual_information(t)).epsilon(eps));
    }
}
TESSEL_BACKEND_TEST("metrics: scores do not change under one-to-one relabelling", relabelling_invariance)

TEST_CASE("metrics: symmetric scores are symmetric, directed ones swap") {
    for (std::uint64_t s = 1; s <= 6; ++s) {
        const auto a = random_blocks(20, 20, 6, s), b = random_blocks(20, 20, 3, s + 50, 5);
        const auto ab = mt::contingency(a, b), ba = mt::contingency(b, a);
        CHECK(mt::rand_index(ab) == doctest::Approx(mt::rand_index(ba)).epsilon(eps));
        CHECK(mt::variation_of_information(ab).vi == doctest::Approx(mt::variation_of_information(ba).vi).epsilon(eps));
        CHECK(mt::variation_of_information(ab).h_seg_given_gt ==
              doctest::Approx(mt::variation_of_information(ba).h_gt_given_seg).epsilon(eps));
        CHECK(mt::boundary_displacement_error(a, b) == doctest::Approx(mt::boundary_displacement_error(b, a)).epsilon(eps));
        CHECK(mt::adjusted_rand_index(ab) == doctest::Approx(mt::adjusted_rand_index(ba)).epsilon(eps));
        CHECK(mt::normalized_mutual_information(ab) == doctest::Approx(mt::normalized_mutual_information(ba)).epsilon(eps));
        CHECK(mt::covering(ab, mt::covering_direction::gt_by_seg) ==
              doctest::Approx(mt::covering(ba, mt::covering_direction::seg_by_gt)).epsilon(eps));
        const auto h1 = mt::homogeneity_completeness_v_measure(ab), h2 = mt::homogeneity_completeness_v_measure(ba);
        CHECK(h1.homogeneity == doctest::Approx(h2.completeness).epsilon(eps));
        CHECK(mt::hungarian_scores(ab).accuracy == doctest::Approx(mt::hungarian_scores(ba).accuracy).epsilon(eps));
        CHECK(mt::rand_score(ab) == doctest::Approx(mt::rand_index(ab)).epsilon(1e-12));
    }
}

TEST_CASE("metrics: contingency, RI and covering agree with brute-force definitions") {
    const auto a = random_blocks(9, 7, 4, 3, 2), b = random_blocks(9, 7, 3, 4, 2);
    const auto t = mt::contingency(a, b);
    const index_t n = a.size();
    // RI over all unordered pairs.
    index_t agree = 0;
    for (index_t i = 0; i < n; ++i)
        for (index_t j = i + 1; j < n; ++j)
            agree += ((a.data()[i] == a.data()[j]) == (b.data()[i] == b.data()[j])) ? 1 : 0;
    CHECK(mt::rand_index(t) == doctest::Approx(static_cast<double>(agree) / static_cast<double>(n * (n - 1) / 2)).epsilon(eps));
    // Covering of b by a, region sets enumerated directly.
    double cov = 0;
    for (label_t g = 0; g < 3; ++g) {
        index_t size_g = 0;
        double best = 0;
        for (index_t i = 0; i < n; ++i) size_g += b.data()[i] == g;
        for (label_t s = 0; s < 4; ++s) {
            index_t inter = 0, uni = 0;
            for (index_t i = 0; i < n; ++i) {
                inter += (a.data()[i] == s && b.data()[i] == g);
                uni += (a.data()[i] == s || b.data()[i] == g);
            }
            if (uni) best = std::max(best, static_cast<double>(inter) / static_cast<double>(uni));
        }
        cov += static_cast<double>(size_g) * best;
    }
    CHECK(mt::covering(t) == doctest::Approx(cov / static_cast<double>(n)).epsilon(eps));
}

TEST_CASE("metrics: huge label ranges take the sorted path and agree with the dense one") {
    label_map a = random_blocks(40, 30, 50, 9, 1), b = random_blocks(40, 30, 50, 10, 1);
    // Every pixel its own label in a spread-out range: rows*cols exceeds the dense limit.
    label_map u(40, 30);
    for (index_t i = 0; i < u.size(); ++i) u.data()[i] = static_cast<label_t>(i * 40000 - 2000000000);
    const auto t = mt::contingency(u, b);
    CHECK(t.rows() == 1200);
    CHECK(mt::homogeneity_completeness_v_measure(t).homogeneity == doctest::Approx(1.0));
    label_map a_big = a;
    for (auto& v : a_big.values()) v = v * 30000000 - 900000000;
    const auto t1 = mt::contingency(a, b), t2 = mt::contingency(a_big, b);
    CHECK(t1.dense() == t2.dense());
}

TEST_CASE("metrics: BDE against a brute-force distance transform") {
    for (std::uint64_t s = 1; s <= 4; ++s) {
        const auto a = random_blocks(13, 11, 3, s, 4), b = random_blocks(13, 11, 4, s + 9, 3);
        const auto ba = mt::gradient_boundary(a), bb = mt::gradient_boundary(b);
        auto nearest = [&](const std::vector<std::uint8_t>& mask, index_t x, index_t y) {
            double best = 1e300;
            for (index_t v = 0; v < 11; ++v)
                for (index_t u = 0; u < 13; ++u)
                    if (mask[static_cast<std::size_t>(v * 13 + u)])
                        best = std::min(best, std::sqrt(static_cast<double>((u - x) * (u - x) + (v - y) * (v - y))));
            return best;
        };
        const auto da = mt::distance_transform(std::span<const std::uint8_t>(ba), 13, 11);
        double sa = 0, sb = 0;
        index_t na = 0, nb = 0;
        for (index_t y = 0; y < 11; ++y)
            for (index_t x = 0; x < 13; ++x) {
                const auto k = static_cast<std::size_t>(y * 13 + x);
                CHECK(da[k] == doctest::Approx(nearest(ba, x, y)).epsilon(1e-12));
                if (ba[k]) sa += nearest(bb, x, y), ++na;
                if (bb[k]) sb += nearest(ba, x, y), ++nb;
            }
        CHECK(mt::boundary_displacement_error(a, b) ==
              doctest::Approx((sa / static_cast<double>(na) + sb / static_cast<double>(nb)) / 2).epsilon(1e-12));
    }
}

TEST_CASE("metrics: gradient boundary semantics (stripes, label identity, constant maps)") {
    // Labels 1,2,1 in a row: the middle pixel is not marked; 1,2,3 marks it (METRICS.md §5).
    CHECK(mt::gradient_boundary(label_map(3, 1, std::vector<label_t>{1, 2, 1})) == std::vector<std::uint8_t>{1, 0, 1});
    CHECK(mt::gradient_boundary(label_map(3, 1, std::vector<label_t>{1, 2, 3})) == std::vector<std::uint8_t>{1, 1, 1});
    const auto frame = mt::gradient_boundary(label_map(4, 3, 7));
    CHECK(frame == std::vector<std::uint8_t>{1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1});
    CHECK(mt::distance_transform(std::span<const std::uint8_t>(std::vector<std::uint8_t>(4, 0)), 2, 2)[0] ==
          std::numeric_limits<double>::infinity());
}

TEST_CASE("metrics: foreground IoU and the polarity oracle") {
    const label_map gt(4, 1, std::vector<label_t>{1, 1, 0, 0});
    const label_map inverted(4, 1, std::vector<label_t>{0, 0, 1, 1});
    CHECK(mt::foreground_iou(inverted, gt).iou == 0.0);
    const auto o = mt::foreground_iou(inverted, gt, mt::mask_polarity::oracle);
    CHECK(o.iou == 1.0);
    CHECK(o.flipped);
    const label_map half(4, 1, std::vector<label_t>{1, 0, 0, 0});
    CHECK(mt::foreground_iou(half, gt).iou == doctest::Approx(0.5));
    CHECK_FALSE(mt::foreground_iou(half, gt, mt::mask_polarity::oracle).flipped);
    CHECK(mt::foreground_iou(label_map(2, 2, 0), label_map(2, 2, 0)).iou == 1.0);  // both empty
}

TEST_CASE("metrics: clustering score special cases follow scikit-learn") {
    const label_map one(3, 3, 5), split = random_blocks(3, 3, 3, 2, 1);
    CHECK(mt::normalized_mutual_information(mt::contingency(one, one)) == 1.0);
    CHECK(mt::normalized_mutual_information(mt::contingency(split, one)) == 0.0);
    const auto h = mt::homogeneity_completeness_v_measure(mt::contingency(split, one));
    CHECK(h.homogeneity == 1.0);  // H(gt) = 0
    CHECK(h.completeness == 0.0);
    CHECK(h.v_measure == 0.0);
    CHECK(mt::rand_index(mt::contingency(label_map(1, 1, 3), label_map(1, 1, 4))) == 1.0);
    // ARI of independent-looking labelings is near 0, of a permutation exactly 1.
    const label_map x(4, 1, std::vector<label_t>{0, 0, 1, 1}), y(4, 1, std::vector<label_t>{0, 1, 0, 1});
    CHECK(mt::adjusted_rand_index(mt::contingency(x, y)) == doctest::Approx(-0.5));  // sklearn gives -0.5
}

TEST_CASE("metrics: DFC modes pick the finest and coarsest annotations") {
    const label_map seg = random_blocks(12, 12, 4, 1);
    const std::vector<label_map> gts{random_blocks(12, 12, 3, 2), random_blocks(12, 12, 6, 3), label_map(12, 12, 1)};
    std::vector<mt::contingency_table> tables;
    for (const auto& g : gts) tables.push_back(mt::contingency(seg, g));
    CHECK(mt::dfc_scores(tables, mt::dfc_gt_mode::all).segment_best_iou.size() ==
          static_cast<std::size_t>(tables[0].cols() + tables[1].cols() + 1));
    CHECK(mt::dfc_scores(tables, mt::dfc_gt_mode::fine).segment_best_iou.size() == static_cast<std::size_t>(tables[1].cols()));
    const auto coarse = mt::dfc_scores(tables, mt::dfc_gt_mode::coarse);
    REQUIRE(coarse.segment_best_iou.size() == 1);
    const std::vector<mt::dfc_image_scores> imgs{coarse, mt::dfc_scores(tables, mt::dfc_gt_mode::fine)};
    const auto sum = mt::dfc_aggregate(imgs);
    CHECK(sum.max_miou == doctest::Approx((imgs[0].max_miou + imgs[1].max_miou) / 2));
}

TEST_CASE("metrics: ODS/OIS and the BSR aggregator") {
    const std::vector<std::vector<double>> s{{0.1, 0.5, 0.5}, {0.9, 0.2, 0.3}};
    const auto r = mt::ods_ois(s, true);
    CHECK(r.per_setting[0] == doctest::Approx(0.5));
    CHECK(r.ods_setting == 0);  // 0.5, 0.35, 0.4: first maximiser
    CHECK(r.ois == doctest::Approx(0.7));
    CHECK(r.per_image_best == std::vector<index_t>{1, 0});
    const auto lo = mt::ods_ois(s, false);
    CHECK(lo.ods_setting == 1);
    CHECK(lo.ois == doctest::Approx(0.15));
    const std::vector<std::vector<double>> ragged{{1, 2}, {1}};
    CHECK_THROWS_AS(mt::ods_ois(ragged, true), tessel::error);
    CHECK(mt::round_g6(1235208.0) == 1235210.0);
    CHECK(mt::round_g6(0.72507334) == 0.725073);
    // Covering is pooled (sum of counts over sum of areas), not a mean of per-image ratios.
    mt::bsr_image_stats a, b;
    a.settings = {{1, 0, {10, 100, 0, 0}}};
    b.settings = {{1, 0, {90, 100 * 9, 0, 0}}};
    a.cnt_r_best = 10;
    b.cnt_r_best = 90;
    const std::vector<mt::bsr_image_stats> imgs{a, b};
    const auto agg = mt::bsr_aggregate(imgs);
    CHECK(agg.covering_ods == doctest::Approx(100.0 / 1000.0));
    CHECK(agg.images[1].reverse_covering == 0.0);  // 0/0 guarded to 0
    std::vector<mt::bsr_image_stats> mismatch{a, b};
    mismatch[1].settings.push_back(mismatch[1].settings[0]);
    CHECK_THROWS_AS(mt::bsr_aggregate(mismatch), tessel::error);
}

TEST_CASE("metrics: bad input throws tessel::error naming the sizes") {
    const label_map a(4, 3), b(3, 4), empty;
    try {
        (void)mt::contingency(a, b);
        FAIL("size mismatch must throw");
    } catch (const tessel::error& e) {
        CHECK(std::string(e.what()).find("4x3") != std::string::npos);
        CHECK(std::string(e.what()).find("3x4") != std::string::npos);
    }
    CHECK_THROWS_AS((void)mt::contingency(empty, empty), tessel::error);
    CHECK_THROWS_AS((void)mt::boundary_displacement_error(a, b), tessel::error);
    CHECK_THROWS_AS((void)mt::foreground_iou(a, b), tessel::error);
    CHECK_THROWS_AS((void)mt::variation_of_information(mt::contingency(a, a), 1.0), tessel::error);
    const std::vector<label_map> none;
    CHECK_THROWS_AS((void)mt::probabilistic_rand_index(a, std::span<const label_map>(none)), tessel::error);
    const std::vector<label_map> wrong{b};
    CHECK_THROWS_AS((void)mt::bsr_covering(a, std::span<const label_map>(wrong)), tessel::error);
}
