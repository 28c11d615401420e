// The dataset readers on folders written by the test itself, plus the shared mask sets when present.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tessel/data/bsds.hpp"
#include "tessel/data/masks.hpp"
#include "tessel/io/image.hpp"

namespace fs = std::filesystem;
using tessel::label_map;

namespace {
fs::path fresh_dir(const char* name) {
    const fs::path d = fs::temp_directory_path() / (std::string("tessel_test_data_") + name);
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}
}  // namespace

TEST_CASE("data: BSDS layout by file names and by index.txt") {
    const fs::path d = fresh_dir("bsds");
    const label_map m(5, 4, 1);
    for (const char* f : {"200_gt0.png", "200_gt1.png", "35_gt0.png", "35_gt1.png", "35_gt2.png"})
        tessel::io::write_label_png(d / f, m);
    const tessel::data::bsds_dataset set(d);
    REQUIRE(set.size() == 2);
    CHECK(set[0].id == "200");  // ids sort as text, like the BSR per-image files
    CHECK(set[1].ground_truths.size() == 3);
    CHECK(set.load_ground_truths(1).size() == 3);
    CHECK(set[0].image == d / "200.jpg");
    CHECK_THROWS_AS((void)set.load_image(0), tessel::error);  // no jpg written
    {
        std::ofstream(d / "index.txt") << "35 5 4 3\n200 5 4 2\n";
    }
    const tessel::data::bsds_dataset indexed(d);
    CHECK(indexed[1].id == "35");
    CHECK(indexed[1].width == 5);
    {
        std::ofstream(d / "index.txt") << "35 5 4 2\n";
    }
    CHECK_THROWS_AS(tessel::data::bsds_dataset{d}, tessel::error);  // count disagrees with the folder
    fs::remove(d / "index.txt");
    fs::remove(d / "35_gt1.png");
    CHECK_THROWS_AS(tessel::data::bsds_dataset{d}, tessel::error);  // gap in the numbering
    CHECK_THROWS_AS(tessel::data::bsds_dataset{d / "missing"}, tessel::error);
    fs::remove_all(d);
}

TEST_CASE("data: prediction files, single or a family") {
    const fs::path d = fresh_dir("pred");
    const label_map m(3, 3, 2);
    tessel::io::write_label_png(d / "7.png", m);
    tessel::io::write_label_png(d / "8_seg0.png", m);
    tessel::io::write_label_png(d / "8_seg1.png", m);
    tessel::io::write_label_png(d / "9_seg1.png", m);
    CHECK(tessel::data::find_predictions(d, "7").size() == 1);
    CHECK(tessel::data::find_predictions(d, "8").size() == 2);
    CHECK(tessel::data::find_predictions(d, "10").empty());
    CHECK_THROWS_AS((void)tessel::data::find_predictions(d, "9"), tessel::error);
    tessel::io::write_label_png(d / "7_seg0.png", m);
    CHECK_THROWS_AS((void)tessel::data::find_predictions(d, "7"), tessel::error);
    fs::remove_all(d);
}

TEST_CASE("data: binary mask sets are binarised") {
    const fs::path d = fresh_dir("masks");
    tessel::io::write_label_png(d / "a_gt0.png", label_map(2, 1, std::vector<tessel::label_t>{0, 255}));
    const tessel::data::mask_dataset set(d);
    CHECK(set.load_mask(0).values() == std::vector<tessel::label_t>{0, 1});
    tessel::io::write_label_png(d / "a_gt1.png", label_map(2, 1, 0));
    CHECK_THROWS_AS(tessel::data::mask_dataset{d}, tessel::error);
    fs::remove_all(d);

    for (const char* name : {"kvasir_seg", "ecssd"}) {
        const fs::path root = fs::path(TESSEL_TEST_DATA_DIR) / name;
        if (!fs::exists(root / "index.txt")) {
            MESSAGE("skipped: " << root.string() << " not found");
            continue;
        }
        const tessel::data::mask_dataset shared(root);
        CHECK(shared.size() == 60);
        const auto mask = shared.load_mask(0);
        CHECK(mask.width() == shared[0].width);
        CHECK(mask.height() == shared[0].height);
        CHECK(std::all_of(mask.values().begin(), mask.values().end(), [](tessel::label_t v) { return v == 0 || v == 1; }));
    }
}

TEST_CASE("data: ambiguous numbers and index lines are refused, naming the file and line") {
    const fs::path d = fresh_dir("ambiguous");
    const label_map m(5, 4, 1);
    tessel::io::write_label_png(d / "a_gt0.png", m);
    tessel::io::write_label_png(d / "a_gt1.png", m);
    // a_gt01.png would be read as a second a_gt1.png and one of the two silently dropped.
    tessel::io::write_label_png(d / "a_gt01.png", m);
    CHECK_THROWS_WITH_AS(tessel::data::bsds_dataset{d}, doctest::Contains("a_gt01.png is numbered 01; numbers are written"),
                         tessel::error);
    fs::remove(d / "a_gt01.png");
    // A number past INT_MAX used to read as 0, replacing a_gt0.png.
    tessel::io::write_label_png(d / "a_gt99999999999.png", m);
    CHECK_THROWS_WITH_AS(tessel::data::bsds_dataset{d}, doctest::Contains("a_gt99999999999.png is numbered 99999999999"),
                         tessel::error);
    fs::remove(d / "a_gt99999999999.png");
    // The same rule for prediction families read by scan_numbered.
    tessel::io::write_label_png(d / "a_seg00.png", m);
    CHECK_THROWS_WITH_AS((void)tessel::data::scan_numbered(d, "seg"), doctest::Contains("a_seg00.png is numbered 00"),
                         tessel::error);
    fs::remove(d / "a_seg00.png");
    const tessel::data::bsds_dataset fine(d);
    CHECK(fine[0].ground_truths == std::vector<fs::path>{d / "a_gt0.png", d / "a_gt1.png"});

    std::ofstream(d / "index.txt") << "a 5 4 2\na 5 4 2\n";
    CHECK_THROWS_WITH_AS(tessel::data::bsds_dataset{d}, doctest::Contains("line 2: image a is listed twice"), tessel::error);
    std::ofstream(d / "index.txt") << "\na -5 4 2\n";
    CHECK_THROWS_WITH_AS(tessel::data::bsds_dataset{d}, doctest::Contains("line 2: image a has size -5x4"), tessel::error);
    std::ofstream(d / "index.txt") << "a 5 4\n";
    CHECK_THROWS_WITH_AS(tessel::data::bsds_dataset{d}, doctest::Contains("line 1: expected '<id> <width> <height> <n_gt>'"),
                         tessel::error);
    fs::remove_all(d);
}
