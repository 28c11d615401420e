// The policies self_train is built from, on constructed cases. Kanezaki 2018's pseudo-label rule
// (stages::superpixel_majority): the majority per superpixel, ties to the smallest label, the
// last class reachable, superpixel ids that are not 0..K-1, maps whose size differs from the
// image in either direction. The DFC loss's settings: each weight out of range on its own. The
// trainer's progress period and its smallest image.
#include <doctest/doctest.h>

#include <limits>
#include <string_view>
#include <utility>
#include <vector>

#include "support/synthetic.hpp"
#include "tessel/methods/kim2020.hpp"
#include "tessel/pipeline/pipeline.hpp"
#include "tessel/pipeline/stages/self_train.hpp"

namespace ts = tessel;

namespace majority_test {
/// A state over a w x h image whose superpixels are `sp` (row-major, sp_w x sp_h).
struct scene {
    ts::image<std::uint8_t> img;
    ts::pipeline::state<ts::cpu_serial> st;
    scene(ts::index_t w, ts::index_t h, ts::index_t sp_w, ts::index_t sp_h, const std::vector<ts::label_t>& sp)
        : img(w, h, 3) {
        st.input = &img;
        st.superpixels = ts::label_map(sp_w, sp_h);
        REQUIRE(static_cast<ts::index_t>(sp.size()) == sp_w * sp_h);
        for (std::size_t i = 0; i < sp.size(); ++i) st.superpixels.data()[i] = sp[i];
    }
};
}  // namespace majority_test

TEST_CASE("superpixel_majority: each superpixel takes its most frequent label, ties to the smallest") {
    // 6 x 2 pixels, superpixel ids 7 (columns 0-1), 3 (columns 2-3) and 100 (columns 4-5): ids
    // need not be 0..K-1 nor in order of appearance.
    majority_test::scene s(6, 2, 6, 2, {7, 7, 3, 3, 100, 100,  //
                                        7, 7, 3, 3, 100, 100});
    ts::stages::superpixel_majority rule;
    const ts::index_t classes = 5;
    rule.prepare(s.st, classes);
    std::vector<ts::label_t> labels = {
        2, 4, 3, 1, 4, 4,  //
        4, 4, 1, 3, 0, 4,  //
    };
    // id 7: labels {2, 4, 4, 4} -> 4, the last class (a loop stopping one class short loses it);
    // id 3: {3, 1, 1, 3}, a tie of 1 and 3 -> 1; id 100: {4, 4, 0, 4} -> 4.
    rule(s.st, labels.data(), 12);
    CHECK(labels == std::vector<ts::label_t>{4, 4, 1, 1, 4, 4, 4, 4, 1, 1, 4, 4});

    // Called again (the next iteration) the counts start from zero: a tie of 0 and 2 in every
    // superpixel gives 0 everywhere, whatever the previous call counted.
    labels = {0, 2, 2, 0, 0, 2,  //
              2, 0, 0, 2, 2, 0};
    rule(s.st, labels.data(), 12);
    CHECK(labels == std::vector<ts::label_t>(12, 0));

    // A tie of three labels, the largest first in pixel order: still the smallest wins.
    majority_test::scene one(3, 1, 3, 1, {0, 0, 0});
    rule.prepare(one.st, classes);
    labels = {4, 2, 3};
    rule(one.st, labels.data(), 3);
    CHECK(labels == std::vector<ts::label_t>{2, 2, 2});
}

TEST_CASE("superpixel_majority: a superpixel map of another size than the image is refused at prepare") {
    ts::stages::superpixel_majority rule;
    const std::vector<ts::label_t> six(6, 0);
    // Same height, other width; same width, other height; both other: each named with both sizes.
    for (const auto& [sw, sh] : {std::pair<ts::index_t, ts::index_t>{2, 3}, {3, 2}, {6, 1}}) {
        majority_test::scene s(3, 3, sw, sh, six);
        CHECK_THROWS_WITH_AS(rule.prepare(s.st, 4), doctest::Contains("superpixels are"), ts::error);
    }
    majority_test::scene ok(3, 2, 3, 2, six);
    CHECK_NOTHROW(rule.prepare(ok.st, 4));
    // No input image, or no superpixels: refused too.
    ts::pipeline::state<ts::cpu_serial> bare;
    CHECK_THROWS_WITH_AS(rule.prepare(bare, 4), doctest::Contains("needs superpixels"), ts::error);
    ok.st.input = nullptr;
    CHECK_THROWS_WITH_AS(rule.prepare(ok.st, 4), doctest::Contains("superpixels are"), ts::error);
    // A label array of another length than the map (a batch) is refused when the rule runs.
    ok.st.input = &ok.img;
    rule.prepare(ok.st, 4);
    std::vector<ts::label_t> labels(12, 0);
    CHECK_THROWS_WITH_AS(rule(ok.st, labels.data(), 12), doctest::Contains("batches are not supported"), ts::error);
}

TEST_CASE("dfc_loss: every weight must be finite and >= 0, each checked on its own") {
    using cfg = ts::stages::dfc_loss::config;
    const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
    for (const double bad : {-0.5, inf, nan}) {
        for (const cfg c : {cfg{.similarity_weight = bad}, cfg{.continuity_weight = bad}, cfg{.scribble_weight = bad}})
            CHECK_THROWS_WITH_AS(ts::stages::dfc_loss::bind<ts::cpu_serial>{c},
                                 doctest::Contains("loss weights must be finite and >= 0"), ts::error);
    }
    // Zero is allowed for each (0 disables that term), and so are the defaults.
    CHECK_NOTHROW(ts::stages::dfc_loss::bind<ts::cpu_serial>{cfg{.similarity_weight = 0}});
    CHECK_NOTHROW(ts::stages::dfc_loss::bind<ts::cpu_serial>{cfg{.continuity_weight = 0}});
    CHECK_NOTHROW(ts::stages::dfc_loss::bind<ts::cpu_serial>{cfg{.scribble_weight = 0}});
    CHECK_NOTHROW(ts::stages::dfc_loss::bind<ts::cpu_serial>{cfg{}});
}

namespace policies_test {
using stage = ts::stages::self_train<ts::methods::dfc_network>;
/// The steps at which self_train reported progress in a run of `opt` on a small scene.
std::vector<ts::index_t> progress_steps(const ts::image<std::uint8_t>& img, ts::stages::self_train_options opt,
                                        ts::stages::dfc_loss::config loss = {}) {
    stage::config cfg{.net = ts::methods::dfc_network_config(8, 1), .train = opt, .loss = loss};
    ts::pipeline::pipeline<ts::cpu_serial, stage> p(cfg);
    std::vector<ts::index_t> steps;
    p.run(img, ts::seed{3}, [&](std::string_view name, ts::index_t step, ts::index_t total, std::string_view) {
        if (name == "self_train") {
            CHECK(total == opt.max_iterations);
            steps.push_back(step);
        }
    });
    return steps;
}
}  // namespace policies_test

TEST_CASE("self_train: progress comes every progress_every iterations, never with 0; negative is refused") {
    const auto scene = ts::testing::make_shapes(12, 10, 6, 2);
    using v = std::vector<ts::index_t>;
    CHECK(policies_test::progress_steps(scene.img, {.max_iterations = 7, .min_labels = 0, .progress_every = 3}) ==
          v{3, 6});
    CHECK(policies_test::progress_steps(scene.img, {.max_iterations = 4, .min_labels = 0, .progress_every = 1}) ==
          v{1, 2, 3, 4});
    CHECK(policies_test::progress_steps(scene.img, {.max_iterations = 5, .min_labels = 0, .progress_every = 0}).empty());
    CHECK_THROWS_WITH_AS(policies_test::progress_steps(scene.img, {.max_iterations = 5, .progress_every = -2}),
                         doctest::Contains("progress_every must be >= 0"), ts::error);
}

TEST_CASE("self_train: an image of one pixel is refused, two pixels train without the continuity term") {
    ts::image<std::uint8_t> one(1, 1, 3, 90), two(2, 1, 3, 90);
    two(1, 0, 0) = 200;
    const ts::stages::dfc_loss::config no_continuity{.continuity_weight = 0};
    CHECK_THROWS_WITH_AS(policies_test::progress_steps(one, {.max_iterations = 2, .min_labels = 0}, no_continuity),
                         doctest::Contains("needs at least 2"), ts::error);
    CHECK(policies_test::progress_steps(two, {.max_iterations = 2, .min_labels = 0}, no_continuity) ==
          std::vector<ts::index_t>{1, 2});
    // The continuity term compares neighbouring rows and columns: one row is refused by the loss.
    CHECK_THROWS_WITH_AS(policies_test::progress_steps(two, {.max_iterations = 2, .min_labels = 0}),
                         doctest::Contains("needs at least 2 rows and 2 columns"), ts::error);
}
