// The toy vector of METRICS.md §11.1: every listed value, hand-derived in the spec, checked here.
#include <doctest/doctest.h>

#include <vector>

#include "tessel/metrics/aggregate.hpp"
#include "tessel/metrics/boundary_displacement.hpp"
#include "tessel/metrics/clustering_scores.hpp"
#include "tessel/metrics/concepts.hpp"
#include "tessel/metrics/contingency.hpp"
#include "tessel/metrics/covering.hpp"
#include "tessel/metrics/matched_iou.hpp"
#include "tessel/metrics/rand_index.hpp"
#include "tessel/metrics/variation_of_information.hpp"

namespace mt = tessel::metrics;
using tessel::label_map;

namespace {
label_map toy_seg(int shift = 0) {
    std::vector<tessel::label_t> v = {0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2};
    for (auto& x : v) x += shift;
    return label_map(4, 4, v);
}
label_map toy_gt(int shift = 0) {
    std::vector<tessel::label_t> v = {0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1};
    for (auto& x : v) x += shift;
    return label_map(4, 4, v);
}
constexpr double eps = 1e-9;
}  // namespace

TEST_CASE("toy vector: contingency table [[4,0],[2,2],[2,6]]") {
    const auto t = mt::contingency(toy_seg(), toy_gt());
    CHECK(t.rows() == 3);
    CHECK(t.cols() == 2);
    CHECK(t.dense() == std::vector<mt::count_t>{4, 0, 2, 2, 2, 6});
    CHECK(t.row_sums == std::vector<mt::count_t>{4, 4, 8});
    CHECK(t.col_sums == std::vector<mt::count_t>{8, 8});
    CHECK(t.total == 16);
    CHECK(t.cells.size() == 5);  // zero cells are not stored
    const auto tt = t.transposed();
    CHECK(tt.dense() == std::vector<mt::count_t>{4, 2, 2, 0, 2, 6});
}

TEST_CASE("toy vector: RI, VI and conditional entropies") {
    for (int shift : {0, 1}) {
        const auto t = mt::contingency(toy_seg(shift), toy_gt(shift));
        CHECK(mt::rand_index(t) == doctest::Approx(0.6).epsilon(eps));
        CHECK(mt::rand_score(t) == doctest::Approx(0.6).epsilon(eps));
        const auto v = mt::variation_of_information(t);
        CHECK(v.vi == doctest::Approx(1.811278124).epsilon(eps));
        CHECK(v.h_seg_given_gt == doctest::Approx(1.155639062).epsilon(eps));
        CHECK(v.h_gt_given_seg == doctest::Approx(0.655639062).epsilon(eps));
        CHECK(mt::variation_of_information(t, 2.718281828459045).vi == doctest::Approx(1.255482325).epsilon(eps));
        // GraPL's "VoI" is the mean of scikit-image's pair, i.e. VI / 2.
        CHECK((v.h_gt_given_seg + v.h_seg_given_gt) / 2 == doctest::Approx(0.905639062).epsilon(eps));
    }
}

TEST_CASE("toy vector: covering in both directions") {
    const auto t = mt::contingency(toy_seg(), toy_gt());
    CHECK(mt::covering(t, mt::covering_direction::gt_by_seg) == doctest::Approx(0.55).epsilon(eps));
    CHECK(mt::covering(t, mt::covering_direction::seg_by_gt) == doctest::Approx(0.475).epsilon(eps));
    // BSR counts on the 1-based labels: one GT, so cnt_r / sum_r is the plain covering.
    const std::vector<mt::contingency_table> one{mt::contingency(toy_seg(1), toy_gt(1))};
    const auto c = mt::bsr_covering_counts(one);
    CHECK(c.sum_r == 16);
    CHECK(c.cnt_r / c.sum_r == doctest::Approx(0.55).epsilon(eps));
    CHECK(c.cnt_p / c.sum_p == doctest::Approx(0.475).epsilon(eps));
}

TEST_CASE("toy vector: boundary maps and BDE") {
    const std::vector<std::uint8_t> seg_b = {0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
    const std::vector<std::uint8_t> gt_b = {0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0};
    CHECK(mt::gradient_boundary(toy_seg()) == seg_b);
    CHECK(mt::gradient_boundary(toy_gt()) == gt_b);
    CHECK(mt::boundary_displacement_error(toy_seg(), toy_gt()) == doctest::Approx(0.366667).epsilon(1e-6));
    CHECK(mt::boundary_displacement_error(toy_seg(1), toy_gt(1)) == doctest::Approx(0.366667).epsilon(1e-6));
}

TEST_CASE("toy vector: NMI, homogeneity, completeness") {
    const auto t = mt::contingency(toy_seg(), toy_gt());
    CHECK(mt::normalized_mutual_information(t) == doctest::Approx(0.275488750).epsilon(eps));
    const auto h = mt::homogeneity_completeness_v_measure(t);
    CHECK(h.homogeneity == doctest::Approx(0.344360938).epsilon(eps));
    CHECK(h.completeness == doctest::Approx(0.229573959).epsilon(eps));
    CHECK(h.v_measure == doctest::Approx(0.275488750).epsilon(eps));  // = arithmetic NMI
}

TEST_CASE("toy vector: Hungarian assignment, accuracy and the four IoU reductions") {
    const auto t = mt::contingency(toy_seg(), toy_gt());
    const auto m = mt::match_one_to_one(t);
    CHECK(m.seg_to_gt == std::vector<tessel::index_t>{0, -1, 1});  // 0->0, 1->dummy, 2->1
    CHECK(m.matched_pixels == 10);
    const auto s = mt::hungarian_scores(t);
    CHECK(s.accuracy == doctest::Approx(0.625).epsilon(eps));
    CHECK(s.iou_per_gt[0] == doctest::Approx(0.5).epsilon(eps));
    CHECK(s.iou_per_gt[1] == doctest::Approx(0.6).epsilon(eps));
    CHECK(s.miou_gt_classes == doctest::Approx(0.55).epsilon(eps));
    CHECK(s.miou_union == doctest::Approx(0.366667).epsilon(1e-6));
    CHECK(s.weighted_jaccard == doctest::Approx(0.75).epsilon(eps));
    CHECK(s.weighted_jaccard_pred == doctest::Approx(0.425).epsilon(eps));
    // On the 1-based labels nothing is ignored: (c) becomes 0.55, (a), (b), (d) and accuracy stay.
    const auto s1 = mt::hungarian_scores(mt::contingency(toy_seg(1), toy_gt(1)));
    CHECK(s1.weighted_jaccard == doctest::Approx(0.55).epsilon(eps));
    CHECK(s1.accuracy == doctest::Approx(0.625).epsilon(eps));
    CHECK(s1.miou_gt_classes == doctest::Approx(0.55).epsilon(eps));
    CHECK(s1.miou_union == doctest::Approx(0.366667).epsilon(1e-6));
    CHECK(s1.weighted_jaccard_pred == doctest::Approx(0.425).epsilon(eps));
}

TEST_CASE("toy vector: DFC best IoU per GT segment") {
    const std::vector<mt::contingency_table> one{mt::contingency(toy_seg(), toy_gt())};
    const auto d = mt::dfc_scores(one);
    REQUIRE(d.segment_best_iou.size() == 2);
    CHECK(d.segment_best_iou[0] == doctest::Approx(0.5).epsilon(eps));
    CHECK(d.segment_best_iou[1] == doctest::Approx(0.6).epsilon(eps));
    CHECK(d.max_miou == doctest::Approx(0.55).epsilon(eps));
}

TEST_CASE("toy vector: PairScore reduction over several ground truths") {
    const std::vector<label_map> gts{toy_gt(), toy_seg()};
    auto ri = [](const mt::contingency_table& t) { return mt::rand_index(t); };
    static_assert(mt::PairScore<decltype(ri)>);
    CHECK(mt::mean_over_ground_truths(ri, toy_seg(), gts) == doctest::Approx((0.6 + 1.0) / 2).epsilon(eps));
    CHECK(mt::probabilistic_rand_index(toy_seg(), std::span<const label_map>(gts)) ==
          doctest::Approx(0.8).epsilon(eps));
}
