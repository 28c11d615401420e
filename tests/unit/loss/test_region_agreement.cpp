// loss/region_agreement.hpp (PiCNet's L_global): region means, the weighted edge L1 and their
// composition against hand computations; affinities from mean features with the median scale;
// finite-difference checks of each op and of the composition behind a softmax layer node.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "support/error_message.hpp"
#include "support/tape_check.hpp"
#include "tessel/loss/region_agreement.hpp"
#include "tessel/nn/activation.hpp"

namespace ts = tessel;
namespace ag = tessel::autograd;
using ts::index_t;
using ts::label_t;

namespace {
// 3 x 2 map:  0 0 1 / 2 2 1  -> edges {0,1} (1 pixel pair), {0,2} (2), {1,2} (1).
ts::label_map small_map() { return ts::label_map(3, 2, std::vector<label_t>{5, 5, 9, 7, 7, 9}); }
using tessel::testing::message_of;
}  // namespace

TEST_CASE("region_graph: dense regions, sizes, unit weights, then feature affinities") {
    auto g = ts::loss::region_graph::from_labels(small_map());
    CHECK(g.num_regions == 3);
    CHECK(g.sizes == std::vector<index_t>{2, 2, 2});
    CHECK(g.adjacency.num_arcs() == 6);
    CHECK(g.weight_sum == 3.0);
    // mu: region 0 at 0, region 1 at (3, 4) (distance 5 from 0), region 2 at (1, 0).
    const std::vector<double> mu = {0, 0, 3, 4, 1, 0};
    g.set_feature_affinities(mu, 2);
    // distances: {0,1} 5, {0,2} 1, {1,2} sqrt(20); median sqrt(20) -> s^2 = 20.
    const double w01 = std::exp(-25.0 / 40), w02 = std::exp(-1.0 / 40), w12 = std::exp(-20.0 / 40);
    CHECK(g.adjacency.weight_or(0, 1, -1) == doctest::Approx(w01));
    CHECK(g.adjacency.weight_or(2, 0, -1) == doctest::Approx(w02));
    CHECK(g.adjacency.weight_or(1, 2, -1) == doctest::Approx(w12));
    CHECK(g.weight_sum == doctest::Approx(w01 + w02 + w12));
    // Equal features: median 0 falls back to s = 1, all weights 1.
    g.set_feature_affinities(std::vector<double>(6, 0.5), 2);
    CHECK(g.weight_sum == doctest::Approx(3.0));
    CHECK(message_of([&] { g.set_feature_affinities(std::vector<double>(5, 0.0), 2); }).find("5 feature values") !=
          std::string::npos);
}

TEST_CASE("region_agreement: value and gradient by hand on a 3 x 2 map") {
    auto g = ts::loss::region_graph::from_labels(small_map());
    g.set_feature_affinities(std::vector<double>{0, 0, 3, 4, 1, 0}, 2);
    // p: 2 channels; means: region 0 (0.2, 0.8), region 1 (0.6, 0.4), region 2 (0.5, 0.5).
    ts::tensor<double> p(ts::shape{1, 2, 2, 3}, {0.1, 0.3, 0.5, 0.4, 0.6, 0.7, 0.9, 0.7, 0.5, 0.6, 0.4, 0.3});
    ts::testing::dtape t;
    auto v = t.input(p);
    auto m = ts::loss::region_mean(v, g);
    auto l = ts::loss::edge_l1(m, g);
    const double w01 = g.adjacency.weight_or(0, 1, 0), w02 = g.adjacency.weight_or(0, 2, 0),
                 w12 = g.adjacency.weight_or(1, 2, 0);
    CHECK(m.value()[0] == doctest::Approx(0.2));
    CHECK(m.value()[3] == doctest::Approx(0.4));
    const double expect = (w01 * 0.8 + w02 * 0.6 + w12 * 0.2) / (w01 + w02 + w12);
    CHECK(l.value()[0] == doctest::Approx(expect).epsilon(1e-12));
    t.backward(l);
    // d/dm_0[0] = (w01 sign(0.2-0.6) + w02 sign(0.2-0.5)) / W; pixel 0 is half of region 0.
    const double W = w01 + w02 + w12;
    CHECK(v.grad()[0] == doctest::Approx(0.5 * (-w01 - w02) / W).epsilon(1e-12));
    CHECK(v.grad()[2] == doctest::Approx(0.5 * (w01 + w12) / W).epsilon(1e-12));   // region 1, channel 0
    CHECK(v.grad()[6 + 3] == doctest::Approx(0.5 * (w12 - w02) / W).epsilon(1e-12));  // region 2, channel 1
}

TEST_CASE("region_agreement: gradients against finite differences, alone and after a softmax node") {
    ts::rng gen(3);
    // A 7 x 5 map of 6 irregular regions.
    std::vector<label_t> lab(35);
    for (index_t i = 0; i < 35; ++i) lab[static_cast<std::size_t>(i)] = static_cast<label_t>((i % 7) / 3 + 3 * ((i / 7) / 3));
    auto g = ts::loss::region_graph::from_labels(ts::label_map(7, 5, lab));
    std::vector<double> mu(static_cast<std::size_t>(g.num_regions * 4));
    for (auto& x : mu) x = gen.uniform(-1, 1);
    g.set_feature_affinities(mu, 4);
    ts::tensor<double> x = ts::testing::random_tensor(ts::shape{1, 4, 5, 7}, gen);
    auto res = ts::testing::check_tape_gradient(
        [&](ts::testing::dtape&, std::vector<ts::testing::dvar>& v) { return ts::loss::region_agreement(v[0], g); },
        {&x});
    INFO(res.report);
    CHECK(res.passed);
    ts::nn::softmax::bind<ts::cpu_serial, double> sm;
    ts::nn::context<ts::cpu_serial> ctx;
    auto res2 = ts::testing::check_tape_gradient(
        [&](ts::testing::dtape& t, std::vector<ts::testing::dvar>& v) {
            return ts::loss::region_agreement(t.layer(sm, ctx, v[0]), g) * 2.5;
        },
        {&x});
    INFO(res2.report);
    CHECK(res2.passed);
}

TEST_CASE("region_agreement: one region has no edges and gives 0; shape errors") {
    auto g = ts::loss::region_graph::from_labels(ts::label_map(4, 1, std::vector<label_t>{2, 2, 2, 2}));
    CHECK(g.num_regions == 1);
    ts::tensor<double> p(ts::shape{1, 3, 1, 4});
    ts::testing::dtape t;
    auto v = t.input(p);
    auto l = ts::loss::region_agreement(v, g);
    CHECK(l.value()[0] == 0.0);
    t.backward(l);
    for (index_t i = 0; i < p.numel(); ++i) CHECK(v.grad()[i] == 0.0);
    ts::tensor<double> wrong(ts::shape{1, 3, 2, 2});
    t.reset();
    auto w = t.input(wrong);
    CHECK(message_of([&] { (void)ts::loss::region_mean(w, g); }).find("does not match the 4x1 region map") !=
          std::string::npos);
    CHECK(message_of([] { (void)ts::loss::region_graph::from_labels(ts::label_map{}); }).find("empty") !=
          std::string::npos);
}
