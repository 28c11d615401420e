#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "support/synthetic.hpp"
#include "tessel/pipeline/pipeline.hpp"

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
