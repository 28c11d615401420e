// The policies self_train is built from, on constructed cases. Kanezaki 2018's pseudo-label rule
// (stages::superpixel_majority): the majority per superpixel, ties to the smallest label, the
// last class reachable, superpixel ids that are not 0..K-1, maps whose size differs from the
// image in either direction. The DFC loss's settings: each weight out of range on its own. The
// trainer's progress period and its smallest image.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
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

namespace policies_test {
/// -log softmax(z)[c] for one pixel of 3 logits, in double.
double nll(const float* z, int c) {
    const double m = std::max({double(z[0]), double(z[1]), double(z[2])});
    double s = 0;
    for (int k = 0; k < 3; ++k) s += std::exp(z[k] - m);
    return std::log(s) + m - z[c];
}
}  // namespace policies_test

TEST_CASE("dfc_loss with scribbles: CE over unscribbled pixels + w_scr CE over scribbled ones, by hand") {
    // q = 3 classes on a 2 x 2 image; pixel-major copies of the logits for the reference.
    const float zp[4][3] = {{1.0f, -0.5f, 0.25f}, {0.0f, 2.0f, -1.0f}, {-0.75f, 0.5f, 1.5f}, {0.3f, 0.2f, 0.1f}};
    std::vector<float> planar(12);
    for (int p = 0; p < 4; ++p)
        for (int c = 0; c < 3; ++c) planar[static_cast<std::size_t>(c * 4 + p)] = zp[p][c];
    const ts::tensor<float, ts::cpu_serial> r(ts::shape{1, 3, 2, 2}, planar);
    const ts::tensor<ts::label_t, ts::cpu_serial> pseudo(ts::shape{1, 2, 2}, {0, 1, 2, 0});
    ts::pipeline::state<ts::cpu_serial> st;
    ts::tensor<float, ts::cpu_serial> dr;
    const double w_sim = 0.75, w_scr = 2.5;
    ts::stages::dfc_loss::bind<ts::cpu_serial> loss({.similarity_weight = w_sim, .continuity_weight = 0,
                                                     .scribble_weight = w_scr});
    // Scribbles on pixels 1 (class 2, the last one: a value equal to q - 1 is a class) and 3 (class 1).
    const ts::label_t u = ts::stages::scribble_unlabelled;
    ts::label_map a(2, 2, u);
    a.data()[1] = 2;
    a.data()[3] = 1;
    loss.set_scribbles(&a);
    using policies_test::nll;
    const double expect_a = w_sim * (nll(zp[0], 0) + nll(zp[2], 2)) / 2 + w_scr * (nll(zp[1], 2) + nll(zp[3], 1)) / 2;
    CHECK(loss.value_and_grad(r, pseudo, dr, st) == doctest::Approx(expect_a).epsilon(1e-6));
    // Another map set later is read afresh (the prepared targets are per map): one scribble only.
    ts::label_map b(2, 2, u);
    b.data()[0] = 1;
    loss.set_scribbles(&b);
    const double expect_b = w_sim * (nll(zp[1], 1) + nll(zp[2], 2) + nll(zp[3], 0)) / 3 + w_scr * nll(zp[0], 1);
    CHECK(loss.value_and_grad(r, pseudo, dr, st) == doctest::Approx(expect_b).epsilon(1e-6));
    // Cleared: the plain CE against the pseudo-labels over every pixel.
    loss.set_scribbles(nullptr);
    const double expect_none = w_sim * (nll(zp[0], 0) + nll(zp[1], 1) + nll(zp[2], 2) + nll(zp[3], 0)) / 4;
    CHECK(loss.value_and_grad(r, pseudo, dr, st) == doctest::Approx(expect_none).epsilon(1e-6));
    // With continuity weight 1.5: + 1.5 (mean |vertical differences| + mean |horizontal ones|),
    // each over 3 classes x 2 pairs. The reported value is the weighted objective, not the sum
    // of the unweighted terms.
    double vertical = 0, horizontal = 0;
    for (int c = 0; c < 3; ++c) {
        vertical += std::abs(zp[2][c] - zp[0][c]) + std::abs(zp[3][c] - zp[1][c]);
        horizontal += std::abs(zp[1][c] - zp[0][c]) + std::abs(zp[3][c] - zp[2][c]);
    }
    ts::stages::dfc_loss::bind<ts::cpu_serial> with_continuity({.similarity_weight = w_sim, .continuity_weight = 1.5});
    CHECK(with_continuity.value_and_grad(r, pseudo, dr, st) ==
          doctest::Approx(expect_none + 1.5 * (vertical / 6 + horizontal / 6)).epsilon(1e-6));
    // A value equal to q is not a class, nor is a negative one or any other besides scribble_unlabelled.
    for (const ts::label_t bad : {ts::label_t{3}, ts::label_t{254}, ts::label_t{-1}}) {
        ts::label_map c(2, 2, u);
        c.data()[2] = bad;
        loss.set_scribbles(&c);
        CHECK_THROWS_WITH_AS(loss.value_and_grad(r, pseudo, dr, st), doctest::Contains("is not a class id below 3"),
                             ts::error);
    }
    // The map must be the image's size, in both directions.
    for (const auto& [w, h] : {std::pair<ts::index_t, ts::index_t>{2, 1}, {1, 2}, {4, 1}}) {
        ts::label_map c(w, h, u);
        loss.set_scribbles(&c);
        CHECK_THROWS_WITH_AS(loss.value_and_grad(r, pseudo, dr, st), doctest::Contains("scribble map is"), ts::error);
    }
}
