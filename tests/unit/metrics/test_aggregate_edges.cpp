// The ODS/OIS and BSR aggregators at their edges: empty families refused, UCM thresholds printed
// for the settings chosen, a threshold list of the wrong length refused, and 0/0 ratios written
// as 0 (the reference's guard), not -0. Found by tests/mutation/mutate.py: each of these could
// change without any other test noticing.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tessel/metrics/aggregate.hpp"

namespace mt = tessel::metrics;

namespace {
std::string error_of(auto&& f) {
    try {
        f();
    } catch (const tessel::error& e) {
        return e.what();
    }
    return "";
}
}  // namespace

TEST_CASE("ods_ois and bsr_aggregate: an image without settings is refused, naming it") {
    const std::vector<std::vector<double>> no_settings{{}, {}};
    CHECK(error_of([&] { (void)mt::ods_ois(no_settings, true); }).find("image 0 has no settings") != std::string::npos);
    const std::vector<mt::bsr_image_stats> empty(2);
    CHECK(error_of([&] { (void)mt::bsr_aggregate(empty); }).find("image 0 has no settings") != std::string::npos);
}

TEST_CASE("bsr_aggregate: UCM thresholds label the chosen settings; a list of the wrong length is refused") {
    // Two settings; RI 0.5 then 0.75 (PRI ODS t1), VI 1 then 2 (VoI ODS t0), covering 1/4 then
    // 3/4 (ODS t1). With thresholds {0.25, 0.5} the files print 0.5, 0.25 and 0.5 for them.
    mt::bsr_image_stats im;
    im.settings = {{0.5, 1.0, {1, 4, 1, 4}}, {0.75, 2.0, {3, 4, 1, 4}}};
    im.cnt_r_best = 3;
    const std::vector<mt::bsr_image_stats> imgs{im};
    mt::bsr_options opt;
    opt.thresholds = {0.25, 0.5};
    const auto r = mt::bsr_aggregate(imgs, opt);
    CHECK(r.thresholds == std::vector<double>{0.25, 0.5});
    auto files = mt::bsr_files(r);
    CHECK(files["eval_RI_VOI.txt"] == "       0.5       0.75       0.75       0.25          1          1\n");
    CHECK(files["eval_cover.txt"] == "       0.5       0.75       0.75       0.75\n");
    CHECK(files["eval_cover_th.txt"] == "      0.25       0.25\n       0.5       0.75\n");

    opt.thresholds = {0.25, 0.5, 0.75};
    CHECK(error_of([&] { (void)mt::bsr_aggregate(imgs, opt); }).find("3 thresholds given for 2 settings") !=
          std::string::npos);
}

TEST_CASE("bsr_aggregate: 0/0 covering ratios are +0, printed as 0 like the reference") {
    // sum_p = 0 and cnt_p = 0: collect_eval_reg guards the quotient as cnt / (sum + (sum == 0)),
    // which is +0; a guard that subtracted would give -0 and print "-0".
    mt::bsr_image_stats im;
    im.settings = {{1, 0, {0, 0, 0, 0}}};
    const std::vector<mt::bsr_image_stats> imgs{im};
    const auto r = mt::bsr_aggregate(imgs);
    CHECK(r.images[0].covering == 0.0);
    CHECK_FALSE(std::signbit(r.images[0].covering));
    CHECK_FALSE(std::signbit(r.images[0].reverse_covering));
    CHECK_FALSE(std::signbit(r.covering_ods));
    CHECK(mt::bsr_files(r)["eval_cover_img.txt"] == "         1          1          0          0\n");
}
