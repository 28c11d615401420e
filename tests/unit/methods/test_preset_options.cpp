// Every option a preset documents (its trait's visit_options) changes the preset's output on a
// small scene: an option that silently does nothing is a bug. Each option is changed alone from a
// fast base configuration, by a rule per kind (numbers move within their range, flags flip,
// choices take each other value, label files get a scribble map), and the labels must differ.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "support/synthetic.hpp"
#include "tessel/methods/presets.hpp"

namespace ts = tessel;
namespace pm = tessel::methods;

namespace {

/// Changes the option at position `target` (in visiting order) to its `variant`-th alternative;
/// reports whether that alternative exists and the option's name.
struct change_one {
    int target = 0, variant = 0, position = 0;
    bool changed = false;
    std::string name;
    const ts::label_map* scribbles = nullptr;

    bool mine() { return position++ == target; }
    template <class T>
    void operator()(const pm::number_option<T>& o) {
        if (!mine()) return;
        name = std::string(o.name);
        if (variant > 0) return;
        // Integers one step up (down at the top of the range); reals doubled (0.5 from zero), and
        // halfway to the maximum where doubling leaves the range.
        const double v = static_cast<double>(o.value);
        double next = 0;
        if constexpr (std::is_integral_v<T>)
            next = v + 1 <= o.max ? v + 1 : v - 1;
        else
            next = v == 0 ? 0.5 : (v * 2 <= o.max ? v * 2 : (v + o.max) / 2);
        o.value = static_cast<T>(next);
        changed = true;
    }
    void operator()(const pm::flag_option& o) {
        if (!mine()) return;
        name = std::string(o.name);
        if (variant > 0) return;
        o.value = !o.value;
        changed = true;
    }
    template <class E>
    void operator()(const pm::choice_option<E>& o) {
        if (!mine()) return;
        name = std::string(o.name);
        int k = 0;
        for (const auto& c : o.choices)
            if (c.value != o.value && k++ == variant) {
                o.value = c.value;
                name.push_back('=');
                name.append(c.name.data(), c.name.size());
                changed = true;
                return;
            }
    }
    void operator()(const pm::label_file_option& o) {
        if (!mine()) return;
        name = std::string(o.name);
        if (variant > 0 || scribbles == nullptr) return;
        o.value = *scribbles;
        changed = true;
    }
    /// A model path has no generic alternative; presets test it with a file of their own.
    void operator()(const pm::path_option& o) {
        if (!mine()) return;
        name = std::string(o.name);
    }
};

/// "a, b, c" (doctest prints strings, not vectors).
std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
}

struct count_options {
    int n = 0;
    template <class O>
    void operator()(const O&) {
        ++n;
    }
};

/// Runs P with `base` and with each option changed; returns the names whose change left the labels
/// as they were, and (with compare_report) the report's values (energies, iterations) too.
template <class P>
std::vector<std::string> options_without_effect(const typename P::config& base, const ts::image<std::uint8_t>& img,
                                                const ts::label_map* scribbles = nullptr, bool compare_report = false,
                                                std::string_view refused = {}) {
    typename P::template method<ts::cpu_serial> reference(base);
    const auto expected = reference.run(img, ts::seed{3});
    const auto expected_values = reference.last_report().values;
    typename P::config probe = base;
    count_options count;
    P::visit_options(probe, count);
    std::vector<std::string> idle;
    for (int k = 0; k < count.n; ++k)
        for (int variant = 0;; ++variant) {
            typename P::config c = base;
            change_one change;
            change.target = k;
            change.variant = variant;
            change.scribbles = scribbles;
            P::visit_options(c, change);
            if (!change.changed) break;
            if (!refused.empty() && change.name == refused) {
                // This change makes the configuration invalid: the method must refuse it.
                CHECK_THROWS_AS(typename P::template method<ts::cpu_serial>{c}, ts::error);
                continue;
            }
            typename P::template method<ts::cpu_serial> m(c);
            const bool same_labels = m.run(img, ts::seed{3}).values() == expected.values();
            if (same_labels && (!compare_report || m.last_report().values == expected_values))
                idle.push_back(change.name);
            if (variant > 8) break;
        }
    return idle;
}

/// max-seconds is the one option a short run cannot show: doubling its 0 (no budget) gives 0.5 s,
/// which these runs of a few iterations never reach, and a budget they do reach would make the
/// comparison depend on the machine. A budget every step exhausts must stop the run right after
/// its first step, and the report must say so.
template <class P>
void check_time_budget(typename P::config c, const ts::image<std::uint8_t>& img) {
    REQUIRE(c.train.max_iterations >= 2);
    c.train.max_seconds = 1e-9;
    typename P::template method<ts::cpu_serial> m(c);
    m.run(img, ts::seed{3});
    CHECK(m.last_report().iterations == 1);
    CHECK(m.last_report().values.at("stopped_by_time_budget") == 1.0);
}

const ts::label_map& three_strokes() {
    static const ts::label_map s = [] {
        ts::label_map m(32, 24, ts::stages::scribble_unlabelled);
        for (ts::index_t x = 2; x < 8; ++x) m(x, 21) = 0;
        for (ts::index_t x = 10; x < 14; ++x) m(x, 9) = 1;
        for (ts::index_t x = 22; x < 28; ++x) m(x, 18) = 2;
        return m;
    }();
    return s;
}

}  // namespace

TEST_CASE("preset options: every kim2020 option changes the output") {
    const auto scene = ts::testing::make_shapes(32, 24, 12, 2);
    pm::kim2020_config base;
    base.channels = 12;
    base.train.max_iterations = 6;
    base.train.min_labels = 2;
    // scribble-weight only acts with scribbles, and min-labels one step up is not reached in six
    // iterations: both are checked below at values where they act.
    auto idle = options_without_effect<pm::kim2020_preset>(base, scene.img, &three_strokes());
    std::erase(idle, std::string("scribble-weight"));
    std::erase(idle, std::string("min-labels"));
    std::erase(idle, std::string("max-seconds"));
    CHECK(joined(idle) == "");
    check_time_budget<pm::kim2020_preset>(base, scene.img);
    pm::kim2020_config early = base;
    early.train.min_labels = 100;  // above q: the first iteration stops the run
    pm::kim2020<ts::cpu_serial> stops(early);
    stops.run(scene.img, ts::seed{3});
    CHECK(stops.last_report().iterations == 1);
    base.scribbles = three_strokes();
    pm::kim2020_config heavier = base;
    heavier.loss.scribble_weight = 5.0;
    CHECK(pm::kim2020<ts::cpu_serial>(base).run(scene.img, ts::seed{3}).values() !=
          pm::kim2020<ts::cpu_serial>(heavier).run(scene.img, ts::seed{3}).values());
}

TEST_CASE("preset options: every kanezaki2018 and azad2025 option changes the output") {
    const auto scene = ts::testing::make_shapes(32, 24, 12, 2);
    pm::kanezaki2018_config k;
    k.channels = 12;
    k.train.max_iterations = 6;
    k.train.min_labels = 2;
    k.superpixels.n_segments = 40;
    k.loss.continuity_weight = 0.5;  // the preset's 0 has no "double it"
    // min-labels acts as for kim2020 (above); one more SLIC seed can leave the superpixels as they
    // are, ten fewer cannot.
    auto idle = options_without_effect<pm::kanezaki2018_preset>(k, scene.img);
    std::erase(idle, std::string("min-labels"));
    std::erase(idle, std::string("n-segments"));
    std::erase(idle, std::string("max-seconds"));
    CHECK(joined(idle) == "");
    check_time_budget<pm::kanezaki2018_preset>(k, scene.img);
    pm::kanezaki2018_config fewer = k;
    fewer.superpixels.n_segments = 10;
    CHECK(pm::kanezaki2018<ts::cpu_serial>(k).run(scene.img, ts::seed{3}).values() !=
          pm::kanezaki2018<ts::cpu_serial>(fewer).run(scene.img, ts::seed{3}).values());
    pm::azad2025_config a;
    a.channels = 12;
    a.train.max_iterations = 4;
    a.train.min_labels = 2;
    auto idle_azad = options_without_effect<pm::azad2025_preset>(a, scene.img);
    std::erase(idle_azad, std::string("min-labels"));
    std::erase(idle_azad, std::string("max-seconds"));
    CHECK(joined(idle_azad) == "");
    check_time_budget<pm::azad2025_preset>(a, scene.img);
}

TEST_CASE("preset options: every grapl option changes the output") {
    // 16 px patches as in the paper's setting, on a 6 x 6 grid; 5 segments at the base settings
    // (a base that collapses to one segment would hide every option).
    const auto scene = ts::testing::make_shapes(96, 96, 12, 2);
    pm::grapl_config g;
    g.grid = 6;
    g.k0 = 6;
    g.max_side = 0;  // checked below on an image larger than the cap
    // The graph-step settings (lambda, solver, affinity, energy units) can leave the final labels
    // of so small a case as they were; their graph energies (in the report) cannot.
    const auto idle = options_without_effect<pm::grapl_preset>(g, scene.img, nullptr, true);
    CHECK(joined(idle) == "");
    pm::grapl_config capped = g;
    capped.max_side = 80;
    CHECK(pm::grapl<ts::cpu_serial>(g).run(scene.img, ts::seed{3}).values() !=
          pm::grapl<ts::cpu_serial>(capped).run(scene.img, ts::seed{3}).values());
}

TEST_CASE("preset options: every picnet option changes the output or the report") {
    // The report holds the loss parts and the graph-cut energies, which settings that leave so
    // small a case's labels as they were still move.
    const auto scene = ts::testing::make_shapes(32, 24, 12, 2);
    pm::picnet_config c;
    c.net.channels = 6;
    c.net.classes = 8;
    c.train.max_iterations = 4;
    c.train.min_labels = 2;
    c.superpixels.n_segments = 40;
    ts::label_map quads(32, 24);
    for (ts::index_t y = 0; y < 24; ++y)
        for (ts::index_t x = 0; x < 32; ++x) quads(x, y) = static_cast<ts::label_t>((x / 8) + 4 * (y / 6));
    auto idle = options_without_effect<pm::picnet_preset>(c, scene.img, &quads, true);
    // min-labels one step up is not reached in four iterations (as for kim2020, above); one more
    // SLIC seed can leave the superpixels as they are (as for kanezaki2018); eca-kernel 1 is what
    // the adaptive rule gives for C = 6. All three are checked below at values where they act.
    std::erase(idle, std::string("min-labels"));
    std::erase(idle, std::string("n-segments"));
    std::erase(idle, std::string("eca-kernel"));
    std::erase(idle, std::string("max-seconds"));
    CHECK(joined(idle) == "");
    check_time_budget<pm::picnet_preset>(c, scene.img);
    pm::picnet_config fewer = c, wider_eca = c;
    fewer.superpixels.n_segments = 10;
    wider_eca.net.eca_kernel = 3;
    const auto base_labels = pm::picnet<ts::cpu_serial>(c).run(scene.img, ts::seed{3}).values();
    CHECK(pm::picnet<ts::cpu_serial>(fewer).run(scene.img, ts::seed{3}).values() != base_labels);
    CHECK(pm::picnet<ts::cpu_serial>(wider_eca).run(scene.img, ts::seed{3}).values() != base_labels);
    pm::picnet_config early = c;
    early.train.min_labels = 100;
    pm::picnet<ts::cpu_serial> stops(early);
    stops.run(scene.img, ts::seed{3});
    CHECK(stops.last_report().iterations == 1);
}

TEST_CASE("preset options: every slic and felzenszwalb option changes the output") {
    const auto scene = ts::testing::make_shapes(48, 40, 20, 2);
    CHECK(joined(options_without_effect<pm::slic_preset>({.n_segments = 12, .compactness = 5.0f}, scene.img)) == "");
    CHECK(joined(options_without_effect<pm::felzenszwalb_preset>({.scale = 30, .sigma = 0.5, .min_size = 5},
                                                                 scene.img)) == "");
}

TEST_CASE("preset options: every dsc option changes the output") {
    const auto scene = ts::testing::make_shapes(48, 32, 12, 2);
    pm::dsc_config d;
    d.untrained_superae = true;  // switching it off without a model must be refused
    d.features = 6;
    d.superpixels.target = 12;
    d.train.max_iterations = 3;
    d.optim.lr = 1e-3;  // at the paper's 5e-2 this small case collapses to one label in 3 steps
    // Three small steps rarely move the superpixel vote, so the final loss (in the report) counts
    // as output too. compactness is SLIC's (checked with SLIC below); one more superpixel or one
    // more pixel of min-size can leave Felzenszwalb's map as it is (larger steps below); the model
    // path has a test of its own (tests/unit/methods/test_dsc.cpp).
    auto idle = options_without_effect<pm::dsc_preset>(d, scene.img, nullptr, true, "untrained-superae");
    std::erase(idle, std::string("compactness"));
    std::erase(idle, std::string("superpixel-count"));
    std::erase(idle, std::string("min-size"));
    std::erase(idle, std::string("max-seconds"));
    CHECK(joined(idle) == "");
    check_time_budget<pm::dsc_preset>(d, scene.img);
    auto final_loss = [&](const pm::dsc_config& c) {
        pm::dsc<ts::cpu_serial> m(c);
        m.run(scene.img, ts::seed{3});
        return m.last_report().values.at("final_loss");
    };
    // The untrained SuperAE's reconstruction is smooth: Felzenszwalb's finest map may already
    // have fewer than 12 segments, so M is checked with SLIC.
    pm::dsc_config more = d, coarser = d, fewer = d;
    more.superpixels.algorithm = fewer.superpixels.algorithm = pm::dsc_superpixel_algorithm::slic;
    fewer.superpixels.target = 6;
    CHECK(final_loss(more) != final_loss(fewer));
    coarser.superpixels.felzenszwalb_min_size = 80;
    CHECK(final_loss(coarser) != final_loss(d));
    pm::dsc_config s = d;
    s.superpixels.algorithm = pm::dsc_superpixel_algorithm::slic;
    pm::dsc_config s2 = s;
    s2.superpixels.slic_compactness = 40.0f;
    CHECK(pm::dsc<ts::cpu_serial>(s).run(scene.img, ts::seed{3}).values() !=
          pm::dsc<ts::cpu_serial>(s2).run(scene.img, ts::seed{3}).values());
}
