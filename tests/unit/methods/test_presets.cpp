// Preset traits (methods/preset.hpp, methods/presets.hpp): the options front ends see must be
// well formed, and setting one through the trait must reach the method.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>

#include "support/synthetic.hpp"
#include "tessel/methods/presets.hpp"

namespace ts = tessel;
namespace pm = tessel::methods;

namespace {
/// Records each option's name and kind; checks that defaults lie in their declared ranges.
struct option_census {
    std::map<std::string, std::string> kinds;
    std::vector<std::string> duplicates, out_of_range, unnamed_defaults;
    void add(std::string_view name, const char* kind) {
        if (!kinds.emplace(std::string(name), kind).second) duplicates.emplace_back(name);
    }
    template <class T>
    void operator()(const pm::number_option<T>& o) {
        add(o.name, std::is_integral_v<T> ? "integer" : "real");
        const double v = static_cast<double>(o.value);
        if (v < o.min || v > o.max || (o.min_exclusive && v == o.min)) out_of_range.emplace_back(o.name);
    }
    void operator()(const pm::flag_option& o) { add(o.name, "flag"); }
    template <class E>
    void operator()(const pm::choice_option<E>& o) {
        add(o.name, "choice");
        if (o.current().empty()) unnamed_defaults.emplace_back(o.name);
    }
    void operator()(const pm::label_file_option& o) { add(o.name, "file"); }
    void operator()(const pm::path_option& o) { add(o.name, "path"); }
};

/// Sets one integer option by name.
struct set_integer {
    std::string_view name;
    ts::index_t value;
    bool found = false;
    template <class T>
    void operator()(const pm::number_option<T>& o) {
        if (o.name == name) o.value = static_cast<T>(value), found = true;
    }
    template <class O>
    void operator()(const O&) {}
};
}  // namespace

TEST_CASE("presets: names unique, options well formed, shared names of one kind") {
    std::set<std::string> names;
    std::map<std::string, std::string> kind_of;  // across presets
    pm::all_presets::for_each([&](auto id) {
        using P = typename decltype(id)::type;
        INFO("preset " << P::name);
        CHECK(names.insert(std::string(P::name)).second);
        CHECK(!std::string_view(P::summary).empty());
        typename P::config c{};
        option_census census;
        P::visit_options(c, census);
        CHECK(census.duplicates.empty());
        CHECK(census.out_of_range.empty());
        CHECK(census.unnamed_defaults.empty());
        CHECK(!census.kinds.empty());
        for (const auto& [n, k] : census.kinds) {
            const auto [it, fresh] = kind_of.emplace(n, k);
            INFO("option " << n);
            CHECK(it->second == k);
        }
        CHECK(P::estimated_bytes(c, 481, 321) > 481.0 * 321.0);
    });
    CHECK(names.size() == pm::all_presets::size);
    CHECK(names.count("kim2020") == 1);
    CHECK(names.count("grapl") == 1);
    bool found = false;
    CHECK(pm::all_presets::visit("grapl", [&](auto id) { found = decltype(id)::type::name == "grapl"; }));
    CHECK(found);
    CHECK_FALSE(pm::all_presets::visit("nosuch", [](auto) {}));
}

TEST_CASE("presets: an option set through the trait reaches the method") {
    const auto scene = ts::testing::make_shapes(20, 16, 8, 4);
    pm::kim2020_preset::config c{};
    set_integer channels{"channels", 6}, iterations{"max-iter", 3}, min_labels{"min-labels", 0};
    pm::kim2020_preset::visit_options(c, channels);
    pm::kim2020_preset::visit_options(c, iterations);
    pm::kim2020_preset::visit_options(c, min_labels);
    REQUIRE((channels.found && iterations.found && min_labels.found));
    pm::kim2020_preset::method<ts::cpu_serial> m(c);
    const auto labels = m.run(scene.img, ts::seed{1});
    CHECK(m.last_report().iterations == 3);
    for (auto l : labels.values()) CHECK(l < 6);

    // The classical presets run through the same face; their options reach the algorithm.
    pm::slic_preset::config sc{};
    set_integer segments{"n-segments", 4};
    pm::slic_preset::visit_options(sc, segments);
    pm::slic_preset::method<ts::cpu_serial> slic_method(sc);
    const auto sp = slic_method.run(scene.img);
    CHECK(sp.count_labels() <= 6);
    CHECK(slic_method.last_report().num_segments == sp.count_labels());

    // GraPL's side: BSDS-sized images keep the code's S, large ones are capped, patches stay >= 5 px.
    pm::grapl_config g{};
    CHECK(pm::grapl_side(g, 481, 321) == 512);
    CHECK(pm::grapl_side(g, 4000, 1) == 1024);
    g.max_side = 0;
    CHECK(pm::grapl_side(g, 4000, 1) == 4000);
    g.max_side = 100;  // 100 / 32 = 3 px patches: raised to 5 px
    CHECK(pm::grapl_side(g, 4000, 3000) == 160);
    CHECK(pm::grapl_preset::estimated_bytes(pm::grapl_config{}, 4000, 3000) <
          pm::grapl_preset::estimated_bytes(g = pm::grapl_config{.max_side = 0}, 4000, 3000));
}
