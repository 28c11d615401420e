// tessel/methods/preset.hpp: what a method preset tells the programs that run it.
//
// A preset is a method with its published defaults (kim2020, grapl, ...). Front ends
// (tessel-segment, the Python module, a user's batch tool) need more than its class: a name, a
// one-line summary, its options with their ranges and help, its parameters for a report, and how
// much memory a run will take. A preset trait gathers these in one struct, so that a front end
// walks a type list of traits (methods/presets.hpp) instead of naming every method. Options are
// described, not parsed: visit_options hands each config field to a visitor as a typed option
// (number, flag, choice, label file, path) and the visitor decides what to do with it (register a
// command-line flag, apply a parsed value, write JSON, check a Python keyword).
#pragma once
#include <concepts>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>

#include "tessel/backend/tags.hpp"
#include "tessel/core/image.hpp"
#include "tessel/core/random.hpp"
#include "tessel/pipeline/state.hpp"

namespace tessel::methods {

/// A numeric setting in [min, max] (min itself excluded when min_exclusive). NaN and infinities
/// are never valid values.
template <class T>
struct number_option {
    std::string_view name;
    T& value;
    std::string_view help;
    double min = std::numeric_limits<double>::lowest();
    double max = std::numeric_limits<double>::max();
    bool min_exclusive = false;
};

/// An on/off setting; a negated flag sets the field to false when given (e.g. --float-energies
/// turns gco_integer_energies off).
struct flag_option {
    std::string_view name;
    bool& value;
    std::string_view help;
    bool negated = false;
};

/// One named value of an enumerated setting.
template <class E>
struct choice {
    std::string_view name;
    E value;
};
/// An enumerated setting; `choices` names every value (the first is not necessarily the default).
template <class E>
struct choice_option {
    std::string_view name;
    E& value;
    std::span<const choice<E>> choices;
    std::string_view help;
    /// The name of the current value (empty when it has none).
    [[nodiscard]] std::string_view current() const {
        for (const auto& c : choices)
            if (c.value == value) return c.name;
        return {};
    }
};

/// A per-pixel label map the user supplies as a file (scribbles, a template segmentation).
struct label_file_option {
    std::string_view name;
    std::optional<label_map>& value;
    std::string_view help;
};

/// A file the method reads itself (a trained model, pretrained weights, precomputed features),
/// given by its path; empty when not given. Front ends check that the file exists; the method
/// reads and validates it.
struct path_option {
    std::string_view name;
    std::string& value;
    std::string_view help;
};

namespace detail {
/// A visitor that accepts every option kind, for checking the Preset concept.
struct any_option_visitor {
    template <class O>
    void operator()(const O&) {}
};
}  // namespace detail

/// Preset<P>: a method preset's trait.
///   requires: P::name (the method's name on the command line, e.g. "grapl") and P::summary (one
///             line: authors, year, what it does); P::config, default-constructed to the paper's
///             settings; P::method<B>, constructible from a config, with
///             run(image, seed, progress) -> label_map and last_report();
///             P::visit_options(config&, visitor&) calls visitor(option) once per user-settable
///             field with a number_option, flag_option, choice_option, label_file_option or
///             path_option naming
///             it (names are command-line style: "max-iter"); P::estimated_bytes(config, W, H),
///             the approximate peak memory of one run on a W x H image.
///   ensures:  option names are unique within a preset; two presets that share an option name
///             give it the same meaning (a front end may register it once).
template <class P>
concept Preset = requires {
    { P::name } -> std::convertible_to<std::string_view>;
    { P::summary } -> std::convertible_to<std::string_view>;
    typename P::config;
    typename P::template method<cpu_serial>;
} && std::default_initializable<typename P::config> &&
                 std::constructible_from<typename P::template method<cpu_serial>, typename P::config> &&
                 requires(typename P::config& c, const typename P::config& cc, detail::any_option_visitor& v,
                          typename P::template method<cpu_serial>& m, const image<std::uint8_t>& img) {
                     P::visit_options(c, v);
                     { P::estimated_bytes(cc, index_t{}, index_t{}) } -> std::convertible_to<double>;
                     { m.run(img, seed{}, pipeline::progress_fn{}) } -> std::same_as<label_map>;
                     { m.last_report() } -> std::convertible_to<const pipeline::report&>;
                 };

/// A compile-time list of presets.
template <Preset... P>
struct preset_list {
    static constexpr std::size_t size = sizeof...(P);
    /// Calls f(std::type_identity<P>{}) for each preset in order.
    template <class F>
    static void for_each(F&& f) {
        (f(std::type_identity<P>{}), ...);
    }
    /// Calls f(std::type_identity<P>{}) for the preset named `name`; false when there is none.
    template <class F>
    static bool visit(std::string_view name, F&& f) {
        bool found = false;
        ((!found && P::name == name ? (f(std::type_identity<P>{}), found = true) : false), ...);
        return found;
    }
};

}  // namespace tessel::methods
