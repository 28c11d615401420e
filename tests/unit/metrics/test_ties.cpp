// Ties, asserted exactly: which setting ODS/OIS pick when several are equally good (the reference
// benchmark's rules, METRICS.md §6.3-6.4), and which matching the Hungarian solver returns when
// several are optimal (docs/metrics.md: the solver's fixed column order). Every score below is a
// dyadic fraction, so "equal" means bit-equal and the sums are exact; each expected answer is
// worked out in the comment above it.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tessel/metrics/aggregate.hpp"
#include "tessel/metrics/hungarian.hpp"
#include "tessel/metrics/matched_iou.hpp"

namespace mt = tessel::metrics;
using tessel::index_t;
using tessel::label_map;

TEST_CASE("ods_ois ties: the first best setting wins, for ODS and for each image's OIS") {
    // Higher is better. Means over the 2 images: t0 (0.25 + 0.75) / 2 = 0.5, t1 0.5, t2 0.5: a
    // three-way tie, so ODS is t0 (MATLAB's max returns the first maximiser). Image 0's best is t1
    // (0.75 alone); image 1's is t0 (0.75 alone). OIS = (0.75 + 0.75) / 2 = 0.75.
    const std::vector<std::vector<double>> all_tied{{0.25, 0.75, 0.5}, {0.75, 0.25, 0.5}};
    const auto a = mt::ods_ois(all_tied, true);
    CHECK(a.per_setting == std::vector<double>{0.5, 0.5, 0.5});
    CHECK(a.ods_setting == 0);
    CHECK(a.ods == 0.5);
    CHECK(a.per_image_best == std::vector<index_t>{1, 0});
    CHECK(a.ois == 0.75);

    // A tie that does not include t0: means 0.25, 0.5, 0.5, so ODS is t1, not t2. Image 0 ties
    // t1 and t2 at 0.75 -> t1; image 1 ties all three at 0.25 -> t0. OIS = (0.75 + 0.25) / 2.
    const std::vector<std::vector<double>> late_tie{{0.25, 0.75, 0.75}, {0.25, 0.25, 0.25}};
    const auto b = mt::ods_ois(late_tie, true);
    CHECK(b.ods_setting == 1);
    CHECK(b.ods == 0.5);
    CHECK(b.per_image_best == std::vector<index_t>{1, 0});
    CHECK(b.ois == 0.5);

    // Lower is better (VoI): means 1.25, 0.75, 0.75 -> the first minimiser, t1. Image 0 ties t1
    // and t2 at 0.5 -> t1; image 1 ties everywhere at 1 -> t0. OIS = (0.5 + 1) / 2 = 0.75.
    const std::vector<std::vector<double>> vi{{1.5, 0.5, 0.5}, {1.0, 1.0, 1.0}};
    const auto c = mt::ods_ois(vi, false);
    CHECK(c.ods_setting == 1);
    CHECK(c.ods == 0.75);
    CHECK(c.per_image_best == std::vector<index_t>{1, 0});
    CHECK(c.ois == 0.75);
}

namespace {
/// The exact (unrounded) aggregation, where a tie is a tie of the doubles given.
const mt::bsr_options unrounded = [] {
    mt::bsr_options o;
    o.round_like_reference = false;
    return o;
}();

mt::bsr_image_stats image_with(std::vector<mt::bsr_setting_stats> settings) {
    mt::bsr_image_stats im;
    im.settings = std::move(settings);
    im.cnt_r_best = 0;
    return im;
}
}  // namespace

TEST_CASE("bsr_aggregate ties: covering ODS and the per-image row take the first maximiser, OIS the last") {
    // covering_counts are {cnt_r, sum_r, cnt_p, sum_p}; R = cnt_r / sum_r.
    // Image 0: R = 1/4, 2/4, 4/8 -> t1 and t2 tie at 0.5. Image 1: R = 3/4, 1/4, 1/4.
    // * eval_cover_img.txt row of image 0: the *first* maximiser, t1, so covering 0.5 and reverse
    //   covering cnt_p / sum_p at t1 = 1/4 (t2's would be 3/4).
    // * Covering OIS: collect_eval_reg's loop keeps the *last* maximiser, t2 for image 0, and
    //   pools the counts: (4 + 3) / (8 + 4) = 7/12; the first maximiser would give (2 + 3) / (4 + 4).
    //   On real data sum_r does not depend on t and the two agree; the sums differ here only to
    //   make the rule visible.
    // * Pooled covering per setting: t0 (1 + 3) / (4 + 4) = 1/2, t1 (2 + 1) / 8 = 3/8,
    //   t2 (4 + 1) / 12 = 5/12 -> ODS t0.
    const std::vector<mt::bsr_image_stats> imgs{
        image_with({{0.5, 1.0, {1, 4, 0, 4}}, {0.5, 1.0, {2, 4, 1, 4}}, {0.5, 1.0, {4, 8, 3, 4}}}),
        image_with({{0.5, 1.0, {3, 4, 0, 4}}, {0.5, 1.0, {1, 4, 0, 4}}, {0.5, 1.0, {1, 4, 0, 4}}})};
    const auto r = mt::bsr_aggregate(imgs, unrounded);
    CHECK(r.images[0].best_setting == 1);
    CHECK(r.images[0].covering == 0.5);
    CHECK(r.images[0].reverse_covering == 0.25);
    CHECK(r.images[1].best_setting == 0);
    CHECK(r.covering_ois == 7.0 / 12.0);
    CHECK(r.covering_ods_setting == 0);
    CHECK(r.covering_ods == 0.5);
    // RI and VI are equal at every setting of both images: a full tie, so t0 for both.
    CHECK(r.pri.ods_setting == 0);
    CHECK(r.voi.ods_setting == 0);
    CHECK(r.pri.per_image_best == std::vector<index_t>{0, 0});

    // A tie of the pooled covering: image a has R = 1/2, 2/2, image b 2/2, 1/2, so both settings
    // pool to 3/4 and ODS is the first, t0; eval_cover.txt prints it as setting 1 (1-based).
    const std::vector<mt::bsr_image_stats> pooled_tie{image_with({{0, 0, {1, 2, 0, 1}}, {0, 0, {2, 2, 0, 1}}}),
                                                      image_with({{0, 0, {2, 2, 0, 1}}, {0, 0, {1, 2, 0, 1}}})};
    const auto p = mt::bsr_aggregate(pooled_tie, unrounded);
    CHECK(p.covering_per_setting == std::vector<double>{0.75, 0.75});
    CHECK(p.covering_ods_setting == 0);
    CHECK(p.images[0].best_setting == 1);
    CHECK(p.images[1].best_setting == 0);
    const std::string cover = mt::bsr_files(p)["eval_cover.txt"];
    CHECK(cover.substr(0, 11) == "         1 ");
}

TEST_CASE("bsr_aggregate ties made by the reference's 6-digit rounding pick the first setting") {
    // RI 0.8000001 at t0 and 0.8000004 at t1: the reference re-reads both from %g files as 0.8,
    // a tie, so PRI ODS is t0 and OIS 0.8. Unrounded, t1 is strictly better. The same for VI
    // (lower is better): 1.2000004 and 1.2000001 read back as 1.2 -> t0; unrounded t1. And for
    // covering: cnt_r 0.5000001 and 0.5000004 over sum_r 1 -> 0.5 both -> t0 (the image row's
    // first maximiser too); unrounded t1.
    const std::vector<mt::bsr_image_stats> imgs{
        image_with({{0.8000001, 1.2000004, {0.5000001, 1, 0, 1}}, {0.8000004, 1.2000001, {0.5000004, 1, 0, 1}}})};
    const auto rounded = mt::bsr_aggregate(imgs);
    CHECK(rounded.pri.ods_setting == 0);
    CHECK(rounded.pri.ois == 0.8);
    CHECK(rounded.voi.ods_setting == 0);
    CHECK(rounded.voi.ois == 1.2);
    CHECK(rounded.covering_ods_setting == 0);
    CHECK(rounded.images[0].best_setting == 0);

    const auto exact = mt::bsr_aggregate(imgs, unrounded);
    CHECK(exact.pri.ods_setting == 1);
    CHECK(exact.voi.ods_setting == 1);
    CHECK(exact.covering_ods_setting == 1);
    CHECK(exact.images[0].best_setting == 1);
}

TEST_CASE("hungarian ties: among optimal assignments the solver returns the one its column order gives") {
    // The solver inserts rows in order. Each new row goes to the column of its cheapest
    // augmenting path, the lowest column index among equally cheap ones, and an earlier row is
    // moved only along that path. This is not "the lexicographically first optimum" in general
    // (see the maximising case), so each expected answer is traced by hand.

    // All costs equal (2 x 2, minimising): both assignments cost 0. Row 0 takes column 0, row 1
    // the remaining column 1: the identity.
    const std::vector<double> flat(4, 0.0);
    auto a = mt::solve_assignment(flat, 2, 2);
    CHECK(a.row_to_col == std::vector<index_t>{0, 1});
    CHECK(a.col_to_row == std::vector<index_t>{0, 1});
    CHECK(a.total == 0.0);

    // Rows 0 and 1 are interchangeable on columns 0 and 1 (cost 1 each); column 2 is cheap only
    // for row 2. Optimal total 3 by (0,1,2) or (1,0,2); column order gives (0,1,2).
    const std::vector<double> pair_tie{1, 1, 5, 1, 1, 5, 5, 5, 1};
    a = mt::solve_assignment(pair_tie, 3, 3);
    CHECK(a.row_to_col == std::vector<index_t>{0, 1, 2});
    CHECK(a.total == 3.0);

    // Maximising the same matrix: the optimum is 11 = 5 + 5 + 1 (one of rows 0, 1 on column 2,
    // row 2 on column 0 or 1, the other of rows 0, 1 on what is left): (2,0,1), (2,1,0), (0,2,1)
    // and (1,2,0). Row 0 goes to its best column, 2. Row 1's best, column 2, would cost row 0 a
    // move for no gain, so it takes column 0, the lowest of its tied columns 0 and 1. Row 2 gains
    // 5 on either free-or-freeable column; column 0 would need row 1 to move, the direct path to
    // column 1 is as cheap and is taken: (2,0,1), which is not the lexicographically first (0,2,1).
    a = mt::solve_assignment(pair_tie, 3, 3, true);
    CHECK(a.total == 11.0);
    CHECK(a.row_to_col == std::vector<index_t>{2, 0, 1});

    // Wide 2 x 3: row 0 costs 0 everywhere, row 1 costs 1 on column 0 and 0 elsewhere. Optimal
    // total 0 by (0,1), (0,2), (1,2) or (2,1); column order gives row 0 column 0, then row 1 the
    // lowest zero column left, 1. Column 2 stays unassigned.
    const std::vector<double> wide{0, 0, 0, 1, 0, 0};
    a = mt::solve_assignment(wide, 2, 3);
    CHECK(a.row_to_col == std::vector<index_t>{0, 1});
    CHECK(a.col_to_row == std::vector<index_t>{0, 1, -1});

    // Tall 3 x 2, the transpose of `wide`: solved as the transpose, so it must be the same
    // matching read the other way, with row 2 (the transpose's column 2) unassigned.
    const std::vector<double> tall{0, 1, 0, 0, 0, 0};
    a = mt::solve_assignment(tall, 3, 2);
    CHECK(a.row_to_col == std::vector<index_t>{0, 1, -1});
    CHECK(a.col_to_row == std::vector<index_t>{0, 1});
}

TEST_CASE("hungarian ties decide the weighted Jaccard, so the tie-break is part of the metric") {
    // One segment over 4 pixels; the GT has labels 0 and 1 with 2 pixels each. The overlap table
    // is [2 2]: a tie. Column order matches the segment to GT label 0 (column 0). Accuracy is 2/4
    // either way; GraPL's weighted Jaccard (c) ignores GT-0 pixels, so with the match to label 0
    // GT label 1 is unmatched and scores 0 (matched to label 1 it would score 2 / (2 + 2 - 2) = 1).
    // The plain mean (a): IoU_0 = 2 / (4 + 2 - 2) = 0.5, IoU_1 = 0 -> 0.25.
    const label_map seg(4, 1, {7, 7, 7, 7});
    const label_map gt(4, 1, {0, 1, 0, 1});
    const auto t = mt::contingency(seg, gt);
    const auto m = mt::match_one_to_one(t);
    CHECK(m.seg_to_gt == std::vector<index_t>{0});
    CHECK(m.gt_to_seg == std::vector<index_t>{0, -1});
    const auto s = mt::hungarian_scores(t);
    CHECK(s.accuracy == 0.5);
    CHECK(s.miou_gt_classes == 0.25);
    CHECK(s.weighted_jaccard == 0.0);
}
