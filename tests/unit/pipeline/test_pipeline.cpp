#include <doctest/doctest.h>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "support/synthetic.hpp"
#include "tessel/methods/kim2020.hpp"
#include "tessel/optim/adam.hpp"
#include "tessel/pipeline/pipeline.hpp"
#include "tessel/pipeline/stages/segment_graph_cut.hpp"
#include "tessel/pipeline/stages/self_train.hpp"
#include "tessel/solver/alpha_beta_swap.hpp"

namespace ts = tessel;

namespace {
// Two small real stages: a brightness threshold, and a stage that inverts the labels it finds.
// They exercise the composition machinery: config passing, order, the shared state and reports.
struct threshold_stage {
    struct config {
        int level = 128;
    };
    template <class B>
    struct bind {
        config cfg;
        explicit bind(const config& c) : cfg(c) {}
        void run(ts::pipeline::state<B>& st) {
            ts::pipeline::stage_timer t(st, "threshold");
            const auto& img = *st.input;
            st.labels = ts::label_map(img.width(), img.height());
            for (ts::index_t y = 0; y < img.height(); ++y)
                for (ts::index_t x = 0; x < img.width(); ++x)
                    st.labels(x, y) = img(x, y, 0) >= cfg.level ? 1 : 0;
            st.notify("threshold", 1, 1);
        }
    };
};
struct invert_stage {
    struct config {};
    template <class B>
    struct bind {
        explicit bind(const config&) {}
        void run(ts::pipeline::state<B>& st) {
            ts::expects(!st.labels.empty(), "invert_stage", "needs labels from an earlier stage");
            for (auto& l : st.labels.values()) l = 1 - l;
            st.info.values["inverted"] = 1;
        }
    };
};
}  // namespace

static_assert(ts::pipeline::Stage<threshold_stage, ts::cpu_serial>);

TEST_CASE("pipeline: stages run in order over one state, with their configs") {
    auto scene = ts::testing::make_shapes(48, 40, 5, 2);
    // Red channel: the disc (220) is bright, the background (40) and rectangle (60) are dark.
    ts::pipeline::pipeline<ts::cpu_serial, threshold_stage, invert_stage> p({.level = 128}, {});
    std::vector<std::string> seen;
    auto labels = p.run(scene.img, ts::seed{3}, [&](std::string_view s, ts::index_t, ts::index_t, std::string_view) {
        seen.emplace_back(s);
    });
    for (ts::index_t y = 0; y < 40; ++y)
        for (ts::index_t x = 0; x < 48; ++x) REQUIRE(labels(x, y) == (scene.truth(x, y) == 1 ? 0 : 1));
    CHECK(seen == std::vector<std::string>{"threshold"});
    CHECK(p.last_state().info.num_segments == 2);
    CHECK(p.last_state().info.values.at("inverted") == 1);
    CHECK(p.last_state().info.seconds.count("threshold") == 1);
    CHECK(p.last_state().input_tensor.shape() == ts::shape{1, 3, 40, 48});

    ts::pipeline::pipeline<ts::cpu_serial, invert_stage> bad({});
    CHECK_THROWS_WITH_AS(bad.run(scene.img), doctest::Contains("needs labels"), ts::error);
    ts::image<std::uint8_t> grey(4, 4, 1);
    CHECK_THROWS_AS(p.run(grey), ts::error);
    CHECK_THROWS_AS(p.run(ts::image<std::uint8_t>{}), ts::error);
}

// ---- the typed state store ------------------------------------------------------------------------
namespace {
struct region_count {
    static constexpr const char* name = "region_count";
    int regions = 0;
};
struct count_writer_stage {
    struct config {};
    template <class B>
    struct bind {
        explicit bind(const config&) {}
        void run(ts::pipeline::state<B>& st) { st.template data<region_count>().regions = 7; }
    };
};
struct count_reader_stage {
    struct config {};
    template <class B>
    struct bind {
        explicit bind(const config&) {}
        void run(ts::pipeline::state<B>& st) {
            const int r = st.template require<region_count>("count_reader_stage").regions;
            st.labels = ts::label_map(st.input->width(), st.input->height(), static_cast<ts::label_t>(r));
        }
    };
};
}  // namespace

TEST_CASE("pipeline state: stage data is created once, found by type, and required by name") {
    ts::pipeline::state<ts::cpu_serial> st;
    CHECK(st.find<region_count>() == nullptr);
    st.data<region_count>().regions = 3;
    REQUIRE(st.find<region_count>() != nullptr);
    CHECK(st.find<region_count>()->regions == 3);
    st.data<region_count>().regions += 1;  // the same object, not a new one
    CHECK(st.require<region_count>("test").regions == 4);

    const auto scene = ts::testing::make_shapes(16, 12, 5, 2);
    ts::pipeline::pipeline<ts::cpu_serial, count_writer_stage, count_reader_stage> ok({}, {});
    CHECK(ok.run(scene.img)(3, 4) == 7);
    // A second run starts from an empty store: the reader alone finds nothing.
    ts::pipeline::pipeline<ts::cpu_serial, count_reader_stage> missing({});
    CHECK_THROWS_WITH_AS(missing.run(scene.img), doctest::Contains("count_reader_stage: needs 'region_count'"), ts::error);
}

// ---- self_train: stopping rules and its three policies --------------------------------------------
namespace {
using small_net = ts::methods::dfc_network;
small_net::config small_net_config() { return ts::methods::dfc_network_config(8, 1); }

template <class Rule = ts::stages::no_refinement, class Loss = ts::stages::dfc_loss, class Optim = ts::optim::sgd>
ts::pipeline::report train_once(const ts::image<std::uint8_t>& img, ts::stages::self_train_options opt,
                                typename ts::stages::self_train<small_net, Rule, Loss, Optim>::config cfg = {}) {
    using stage = ts::stages::self_train<small_net, Rule, Loss, Optim>;
    cfg.net = small_net_config();
    cfg.train = opt;
    ts::pipeline::pipeline<ts::cpu_serial, stage> p(cfg);
    p.run(img, ts::seed{5});
    return p.last_state().info;
}

/// Every pseudo-label becomes 0 (counts how often it was prepared and applied).
struct all_zero_rule {
    int prepared = 0, applied = 0;
    template <class B>
    void prepare(const ts::pipeline::state<B>&, ts::index_t) { ++prepared; }
    template <class B>
    void operator()(const ts::pipeline::state<B>&, ts::label_t* labels, ts::index_t n) {
        ++applied;
        std::fill(labels, labels + n, 0);
    }
};
static_assert(ts::stages::PseudoLabelRule<all_zero_rule, ts::cpu_serial>);

/// Plain cross-entropy against the pseudo-labels, times a weight: a minimal SelfTrainLoss.
struct weighted_ce {
    struct config {
        double weight = 1.0;
    };
    template <class B>
    struct bind {
        config cfg;
        explicit bind(const config& c) : cfg(c) {}
        double value_and_grad(const ts::tensor<float, B>& r, const ts::tensor<ts::label_t, B>& labels,
                              ts::tensor<float, B>& dr, const ts::pipeline::state<B>&) {
            return ts::loss::cross_entropy{}.value_and_grad(r, labels, dr, {.weight = cfg.weight});
        }
    };
};
static_assert(ts::stages::SelfTrainLoss<weighted_ce, ts::cpu_serial>);
static_assert(ts::stages::SelfTrainLoss<ts::stages::dfc_loss, ts::cpu_omp>);
}  // namespace

TEST_CASE("self_train: min_labels stops at the first iteration whose label count is <= it, not before") {
    const auto scene = ts::testing::make_shapes(24, 20, 12, 3);
    // The label count of the first iteration, from a run that cannot stop early.
    const auto first = train_once(scene.img, {.max_iterations = 1, .min_labels = 0});
    REQUIRE(first.iterations == 1);
    const auto l1 = static_cast<ts::index_t>(first.values.at("labels_at_stop"));
    REQUIRE(l1 >= 2);
    // min_labels == that count: the rule is "<=", so the run stops right after iteration 1.
    const auto at = train_once(scene.img, {.max_iterations = 50, .min_labels = l1});
    CHECK(at.iterations == 1);
    CHECK(at.values.at("labels_at_stop") == static_cast<double>(l1));
    // One less: iteration 1 does not stop it; whenever it stops, the count is <= min_labels.
    const auto below = train_once(scene.img, {.max_iterations = 50, .min_labels = l1 - 1});
    CHECK(below.iterations > 1);
    if (below.iterations < 50) CHECK(below.values.at("labels_at_stop") <= static_cast<double>(l1 - 1));
    // min_labels 0 never stops early: exactly max_iterations.
    CHECK(train_once(scene.img, {.max_iterations = 7, .min_labels = 0}).iterations == 7);
    // max_iterations 0: no step, the labels of a forward pass of the initial network.
    CHECK(train_once(scene.img, {.max_iterations = 0, .min_labels = 0}).iterations == 0);
}

TEST_CASE("self_train: max_seconds stops after the step that exhausts the budget, and says so") {
    const auto scene = ts::testing::make_shapes(24, 20, 12, 3);
    // A budget every step exhausts: exactly one step, flagged.
    const auto tiny = train_once(scene.img, {.max_iterations = 50, .min_labels = 0, .max_seconds = 1e-9});
    CHECK(tiny.iterations == 1);
    CHECK(tiny.values.at("stopped_by_time_budget") == 1.0);
    // Exhausted on the last allowed iteration: the iteration limit ended the run, no flag.
    const auto last = train_once(scene.img, {.max_iterations = 1, .min_labels = 0, .max_seconds = 1e-9});
    CHECK(last.iterations == 1);
    CHECK(last.values.count("stopped_by_time_budget") == 0);
    // A budget no run reaches changes nothing, and 0 means no budget.
    const auto ample = train_once(scene.img, {.max_iterations = 6, .min_labels = 0, .max_seconds = 1e6});
    const auto none = train_once(scene.img, {.max_iterations = 6, .min_labels = 0, .max_seconds = 0});
    CHECK(ample.iterations == 6);
    CHECK(none.iterations == 6);
    CHECK(ample.values.count("stopped_by_time_budget") == 0);
    CHECK(ample.values.at("final_loss") == none.values.at("final_loss"));
    // Out of range: named with the value.
    for (const double bad : {-1.0, std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()})
        CHECK_THROWS_WITH_AS(train_once(scene.img, {.max_iterations = 3, .min_labels = 0, .max_seconds = bad}),
                             doctest::Contains("max_seconds must be finite and >= 0"), ts::error);
}

TEST_CASE("self_train: the rule, the loss and the optimiser are the stage's policies") {
    const auto scene = ts::testing::make_shapes(24, 20, 12, 3);
    using stage = ts::stages::self_train<small_net, all_zero_rule, weighted_ce, ts::optim::adam>;
    typename stage::config cfg{.net = small_net_config(),
                               .train = {.max_iterations = 25, .min_labels = 0},
                               .loss = {.weight = 1.0},
                               .optim = {.lr = 0.05}};
    ts::pipeline::pipeline<ts::cpu_serial, stage> p(cfg);
    const auto labels = p.run(scene.img, ts::seed{2});
    // Trained with Adam on CE against all-zero targets, the network's argmax is 0 everywhere.
    for (auto l : labels.values()) REQUIRE(l == 0);
    CHECK(p.last_state().info.iterations == 25);

    // The default policies (no rule, DFC loss, SGD 0.1 / 0.9) on the same image keep several labels.
    const auto dfc = train_once(scene.img, {.max_iterations = 25, .min_labels = 0});
    CHECK(dfc.values.at("labels_at_stop") >= 2);

    // A zero loss weight leaves the network untouched: the output equals the untrained forward pass.
    typename stage::config frozen = cfg;
    frozen.loss.weight = 0.0;
    frozen.train.max_iterations = 5;
    typename stage::config none = cfg;
    none.train.max_iterations = 0;
    ts::pipeline::pipeline<ts::cpu_serial, stage> pf(frozen), pn(none);
    CHECK(pf.run(scene.img, ts::seed{2}).values() == pn.run(scene.img, ts::seed{2}).values());

    // Scribbles need a loss that takes them.
    typename stage::config scribbled = cfg;
    scribbled.scribbles = ts::label_map(24, 20, ts::stages::scribble_unlabelled);
    ts::pipeline::pipeline<ts::cpu_serial, stage> ps(scribbled);
    CHECK_THROWS_WITH_AS(ps.run(scene.img), doctest::Contains("does not take scribbles"), ts::error);
}

// ---- segment_graph_cut: Potts post-processing over the segments ----------------------------------
namespace {
/// Writes a 20x20 labelling (left half 0, right half 1, a 4x4 square 2 inside the right half) and
/// class probabilities: each half is sure of its own class; the square prefers its class 2 only
/// slightly over 1 (0.5 against 0.45). The image is dark on the left, bright on the right, the
/// square as bright as its surroundings.
struct planted_segments {
    struct config {};
    template <class B>
    struct bind {
        explicit bind(const config&) {}
        void run(ts::pipeline::state<B>& st) {
            const ts::index_t N = 20;
            st.labels = ts::label_map(N, N, 0);
            ts::tensor<float, ts::cpu_serial> p(ts::shape{3, N, N});
            for (ts::index_t y = 0; y < N; ++y)
                for (ts::index_t x = 0; x < N; ++x) {
                    const bool square = x >= 13 && x < 17 && y >= 8 && y < 12;
                    const ts::label_t l = square ? 2 : (x >= 10 ? 1 : 0);
                    st.labels(x, y) = l;
                    const float probs[3][3] = {{0.9f, 0.05f, 0.05f}, {0.05f, 0.9f, 0.05f}, {0.05f, 0.45f, 0.5f}};
                    for (int c = 0; c < 3; ++c) p.data()[(c * N + y) * N + x] = probs[l][c];
                }
            st.template data<ts::pipeline::class_probabilities>().probabilities = std::move(p);
        }
    };
};
ts::image<std::uint8_t> halves_image() {
    ts::image<std::uint8_t> img(20, 20, 3);
    for (ts::index_t y = 0; y < 20; ++y)
        for (ts::index_t x = 0; x < 20; ++x)
            for (int c = 0; c < 3; ++c) img(x, y, c) = x >= 10 ? 220 : 30;
    return img;
}
}  // namespace

TEST_CASE("segment_graph_cut: a weakly held segment merges into its look-alike neighbour, strong ones stay") {
    // The square's unary gap is ln(0.5 / 0.45) = 0.105; keeping it costs lambda * 16/20 = 0.8 of
    // boundary (normalised by the longest, the 20 px between the halves, at equal colour), so it
    // merges. The halves differ in colour and are sure of their class: they stay apart.
    using cut = ts::stages::segment_graph_cut<>;
    ts::pipeline::pipeline<ts::cpu_serial, planted_segments, cut> p({}, {.lambda = 1.0, .compact = false});
    const auto out = p.run(halves_image());
    for (ts::index_t y = 0; y < 20; ++y)
        for (ts::index_t x = 0; x < 20; ++x) REQUIRE(out(x, y) == (x >= 10 ? 1 : 0));
    CHECK(p.last_state().info.values.at("graph_cut_labels_before") == 3);
    CHECK(p.last_state().info.values.at("graph_cut_labels_after") == 2);

    // With lambda 0 only the unaries count: every segment keeps its most probable class (the
    // square's class 2), and compaction maps the classes to 0..2 in order.
    ts::pipeline::pipeline<ts::cpu_serial, planted_segments, cut> none({}, {.lambda = 0.0});
    const auto kept = none.run(halves_image());
    CHECK(kept(14, 9) == 2);
    CHECK(kept(12, 9) == 1);
    CHECK(kept(3, 3) == 0);

    // A swap solver fits too; without probabilities in the state the stage names what it needs.
    ts::pipeline::pipeline<ts::cpu_serial, planted_segments, ts::stages::segment_graph_cut<ts::alpha_beta_swap<ts::potts>>>
        swap({}, {.lambda = 1.0, .compact = false});
    CHECK(swap.run(halves_image())(14, 9) == 1);
    ts::pipeline::pipeline<ts::cpu_serial, threshold_stage, cut> missing({.level = 128}, {});
    CHECK_THROWS_WITH_AS(missing.run(halves_image()), doctest::Contains("needs 'class_probabilities'"), ts::error);
    CHECK_THROWS_AS((cut::bind<ts::cpu_serial>({.lambda = -1})), ts::error);
}

TEST_CASE("self_train keep_probabilities feeds segment_graph_cut") {
    const auto scene = ts::testing::make_shapes(24, 20, 12, 3);
    using stage = ts::stages::self_train<small_net>;
    ts::pipeline::pipeline<ts::cpu_serial, stage, ts::stages::segment_graph_cut<>> p(
        {.net = small_net_config(), .train = {.max_iterations = 4, .min_labels = 0, .keep_probabilities = true}},
        {.lambda = 4.0});
    const auto out = p.run(scene.img, ts::seed{1});
    const auto* probs = p.last_state().find<ts::pipeline::class_probabilities>();
    REQUIRE(probs != nullptr);
    CHECK(probs->probabilities.shape() == ts::shape{8, 20, 24});
    double sum = 0;
    for (ts::index_t c = 0; c < 8; ++c) sum += probs->probabilities.data()[c * 480 + 37];
    CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
    const auto& v = p.last_state().info.values;
    CHECK(v.at("graph_cut_labels_after") <= v.at("graph_cut_labels_before"));
    CHECK(out.count_labels() == static_cast<ts::index_t>(v.at("graph_cut_labels_after")));
}
