#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "support/backend_test.hpp"
#include "tessel/io/image.hpp"
#include "unit/superpixel/test_slic.inl"

namespace ts = tessel;

TESSEL_BACKEND_TEST("slic: segment counts equal scikit-image's on a synthetic scene", slic_tests::slic_counts_match_skimage)
TESSEL_BACKEND_TEST("slic: count near n_segments, 4-connected segments, minimum size", slic_tests::slic_properties)
TESSEL_BACKEND_TEST("slic: deterministic, and backends agree with cpu_serial", slic_tests::slic_deterministic)

TEST_CASE("slic_seed_grid follows skimage's regular_grid") {
    // METHODS.md section 1.3 examples.
    auto g = ts::slic_seed_grid(512, 512, 14);
    CHECK(g.step_y == 137);
    CHECK(g.start_y == 68);
    CHECK(g.rows == 4);
    CHECK(g.cols == 4);
    g = ts::slic_seed_grid(481, 321, 10000);
    CHECK(g.step_x == 4);
    CHECK(g.start_x == 1);
    CHECK(g.num_seeds() == 9600);
    CHECK(g.max_step() == 4);
    // 481 x 321 at n = 100: s = 39.3 -> start 19, step 39, 12 x 8 seeds.
    g = ts::slic_seed_grid(481, 321, 100);
    CHECK(g.start_y == 19);
    CHECK(g.step_y == 39);
    CHECK(g.rows == 12);
    CHECK(g.cols == 8);
    // A thin image: the short axis is fixed at its length (skimage: slices (1::3, 10::20)).
    g = ts::slic_seed_grid(3, 200, 10);
    CHECK(g.start_y == 1);
    CHECK(g.step_y == 3);
    CHECK(g.start_x == 10);
    CHECK(g.step_x == 20);
    CHECK(g.num_seeds() == 10);
    // More seeds than pixels: every pixel is a seed.
    g = ts::slic_seed_grid(4, 5, 100);
    CHECK(g.num_seeds() == 20);
    CHECK(g.max_step() == 1);
}

TEST_CASE("slic: every pixel its own seed still gives a valid map") {
    const auto img = ts::testing::gradient_scene(9, 7);
    const auto l = ts::slic{{.n_segments = 1000, .enforce_connectivity = false}}(ts::cpu_serial{}, img);
    CHECK(l.count_labels() == 63);
}

TEST_CASE("slic: images of 1 to 3 pixels a side give a label per pixel on every backend") {
    // A 1x1 image used to leave the label buffer unallocated (a default tensor claimed one
    // element) and crash.
    for (int w = 1; w <= 3; ++w)
        for (int h = 1; h <= 3; ++h) {
            CAPTURE(w);
            CAPTURE(h);
            const ts::image<std::uint8_t> img(w, h, 3, 90);
            const auto serial = ts::slic{{}}(ts::cpu_serial{}, img);
            const auto omp = ts::slic{{}}(ts::cpu_omp{}, img);
            CHECK(serial.size() == w * h);
            CHECK(serial.count_labels() >= 1);
            CHECK(omp.values() == serial.values());
        }
}

TEST_CASE("slic: invalid parameters and inputs throw tessel::error naming the value") {
    const auto img = ts::testing::gradient_scene(32, 24);
    auto throws_with = [&](const ts::slic::config& cfg, const char* text) {
        try {
            (void)ts::slic{cfg}(ts::cpu_serial{}, img);
            FAIL("expected tessel::error containing " << text);
        } catch (const ts::error& e) {
            CHECK(e.where() == "tessel::slic");
            CHECK_MESSAGE(std::string(e.what()).find(text) != std::string::npos, e.what());
        }
    };
    throws_with({.n_segments = 0}, "n_segments must be positive, got 0");
    throws_with({.n_segments = -5}, "got -5");
    throws_with({.compactness = 0}, "compactness");
    throws_with({.compactness = -1}, "compactness");
    throws_with({.compactness = std::numeric_limits<float>::quiet_NaN()}, "compactness");
    throws_with({.max_iter = 0}, "max_iter");
    throws_with({.sigma = std::nan("")}, "sigma must be finite");
    throws_with({.sigma = -1}, "sigma");
    throws_with({.min_size_factor = -0.5}, "min_size_factor");
    throws_with({.max_size_factor = 0}, "max_size_factor");
    throws_with({.start_label = -1}, "start_label");
    CHECK_THROWS_AS((void)ts::slic{}(ts::cpu_serial{}, ts::image<std::uint8_t>{}), ts::error);
    CHECK_THROWS_AS((void)ts::slic{}(ts::cpu_omp{}, ts::image<float>(0, 5, 3)), ts::error);
    CHECK_THROWS_AS((void)ts::slic{}(ts::cpu_serial{}, ts::image<float>(4, 4, 9)), ts::error);
    ts::image<float> bad(8, 8, 3, 0.5f);
    bad(3, 2, 1) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS((void)ts::slic{}(ts::cpu_serial{}, bad), ts::error);
    bad(3, 2, 1) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS((void)ts::slic{}(ts::cpu_serial{}, bad), ts::error);
}

TEST_CASE("slic: constant image is handled (no division by a zero range)") {
    const ts::image<std::uint8_t> flat(40, 30, 3, 77);
    const auto l = ts::slic{{.n_segments = 12}}(ts::cpu_omp{}, flat);
    CHECK(l.count_labels() >= 1);
    CHECK(slic_tests::count_components(l) == l.count_labels());
}

TEST_CASE("slic on BSDS500 101085 matches scikit-image's counts (data test)") {
    const std::filesystem::path file = std::filesystem::path(TESSEL_TEST_DATA_DIR) / "bsds500/val/101085.jpg";
    if (!std::filesystem::exists(file)) {
        MESSAGE("skipped: " << file.string() << " not found");
        return;
    }
    const auto img = ts::io::read_image(file, 3);
    // skimage slic (Debian's 0.19.3, start_label=0) on the pixels PIL decodes, which
    // tessel::io::read_image now reproduces byte for byte (tests/unit/io/pil_jpeg_checksums.txt):
    // tessel's counts equal these exactly; the tolerance leaves room for other skimage versions.
    struct ref {
        ts::slic::config cfg;
        ts::index_t count;
    };
    for (const ref& r : {ref{{.n_segments = 100}, 57}, ref{{.n_segments = 1000}, 764}, ref{{.n_segments = 10000}, 8556},
                         ref{{.n_segments = 1000, .slic_zero = true}, 1078},
                         ref{{.n_segments = 10000, .compactness = 100}, 9600}}) {
        CAPTURE(r.cfg.n_segments);
        const auto l = ts::slic{r.cfg}(ts::cpu_omp{}, img);
        CHECK(std::abs(l.count_labels() - r.count) <= std::max<ts::index_t>(1, r.count / 100));
    }
}
