// Conformance: the BSR golden set (METRICS.md §11.2) through the data reader, the per-image
// statistics and the aggregator must reproduce every number of the reference's expected/ files:
// digit for digit (so within 2e-6) with the reference's %g rounding of the intermediates, and within
// the files' printing resolution without it (see the bound below). Skips without the data.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "tessel/data/bsds.hpp"
#include "tessel/metrics/aggregate.hpp"

namespace fs = std::filesystem;
namespace mt = tessel::metrics;

namespace {
std::vector<double> numbers(const std::string& text) {
    std::istringstream in(text);
    std::vector<double> v;
    for (double x; in >> x;) v.push_back(x);
    return v;
}
std::vector<std::string> tokens(const std::string& text) {
    std::istringstream in(text);
    std::vector<std::string> v;
    for (std::string x; in >> x;) v.push_back(x);
    return v;
}
std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}
}  // namespace

TEST_CASE("BSR golden set: ODS/OIS/Best and every expected file") {
    const fs::path root = fs::path(TESSEL_TEST_DATA_DIR) / "bsr_golden";
    if (!fs::exists(root / "expected")) {
        MESSAGE("skipped: BSR golden set not found at " << root.string());
        return;
    }
    const tessel::data::bsds_dataset set(root / "gt", root / "images");
    REQUIRE(set.size() == 5);
    CHECK(set[0].id == "2018");
    CHECK(set[1].ground_truths.size() == 6);  // 3063 has 6 annotations
    std::vector<mt::bsr_image_stats> stats;
    for (std::size_t i = 0; i < set.size(); ++i) {
        const auto gts = set.load_ground_truths(i);
        std::vector<tessel::label_map> segs;
        for (const auto& p : tessel::data::find_predictions(root / "segs", set[i].id))
            segs.push_back(tessel::io::read_label_png(p));
        REQUIRE(segs.size() == 5);
        stats.push_back(mt::bsr_evaluate_image<tessel::cpu_serial>(segs, gts));
    }
    const auto rounded = mt::bsr_files(mt::bsr_aggregate(stats, {true, {}}));
    const auto exact = mt::bsr_files(mt::bsr_aggregate(stats, {false, {}}), 17);
    for (const char* name :
         {"eval_RI_VOI.txt", "eval_RI_VOI_thr.txt", "eval_cover.txt", "eval_cover_th.txt", "eval_cover_img.txt"}) {
        const std::string file = name;
        CAPTURE(file);
        const std::string expected = slurp(root / "expected" / name);
        // With the reference's %g rounding of the intermediates (the default): digit for digit.
        CHECK(tokens(rounded.at(name)) == tokens(expected));
        const auto want = numbers(expected), got_rounded = numbers(rounded.at(name)), got = numbers(exact.at(name));
        REQUIRE(want.size() == got.size());
        REQUIRE(want.size() == got_rounded.size());
        for (std::size_t k = 0; k < want.size(); ++k) {
            CAPTURE(k);
            CHECK(std::abs(got_rounded[k] - want[k]) <= 2e-6);
            // Unrounded doubles: the expected files print 6 significant digits (half a unit of the
            // last digit is 5e-6 for VoI >= 1), and P_i = cnt_p / sum_p inherits the reference's
            // rounding of cnt_p (~1.5e5) to whole pixels, up to 0.5 / 154401 = 3.2e-6.
            const double half_unit = want[k] == 0 ? 0 : 0.5 * std::pow(10.0, std::floor(std::log10(std::abs(want[k]))) - 5);
            const bool reverse_covering = file == "eval_cover_img.txt" && k % 4 == 3;
            CHECK(std::abs(got[k] - want[k]) <= 2e-6 + half_unit + (reverse_covering ? 3.3e-6 : 0.0));
        }
    }
    const auto r = mt::bsr_aggregate(stats);
    CHECK(r.covering_ods_setting == 1);
    CHECK(r.pri.ods_setting == 0);
    CHECK(r.voi.ods_setting == 1);
    CHECK(std::abs(r.covering_best - 0.749811) < 2e-6);
}
