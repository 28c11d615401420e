// The machinery behind tessel._native.segment, shared by the per-backend translation units
// (segment.cpp for cpu_omp, segment_cpu_serial.cpp): each instantiates every preset of
// methods::all_presets for one backend, which is what makes them the heavy units of the
// extension; splitting them lets a parallel build compile them side by side.
//
// The presets' own option descriptions (methods/preset.hpp) drive everything: a visitor checks
// and applies the Python keywords (max_iter=... for --max-iter), another lists the options, a
// third writes the report's parameters. A new preset in the type list appears here unchanged.
#pragma once
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>
#include <sstream>

#include <tessel/io/image.hpp>
#include <tessel/methods/presets.hpp>
#include <tessel/version.hpp>

#include "common.hpp"

namespace tessel::python::segment_detail {

namespace tm = tessel::methods;

namespace tm = tessel::methods;

/// "max-iter" -> "max_iter": the Python keyword of a command-line option; a Python reserved word
/// gets a trailing underscore ("lambda" -> "lambda_"), as keywords cannot be written otherwise.
inline std::string keyword(std::string_view option) {
    std::string k(option);
    std::replace(k.begin(), k.end(), '-', '_');
    static constexpr std::string_view reserved[] = {"and", "as", "assert", "async", "await", "break", "class",
                                                    "continue", "def", "del", "elif", "else", "except", "finally",
                                                    "for", "from", "global", "if", "import", "in", "is", "lambda",
                                                    "nonlocal", "not", "or", "pass", "raise", "return", "try",
                                                    "while", "with", "yield"};
    if (std::find(std::begin(reserved), std::end(reserved), k) != std::end(reserved)) k += '_';
    return k;
}

inline std::string format_number(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
}

[[noreturn]] inline void raise_value_error(const std::string& msg) { throw py::value_error("tessel.segment: " + msg); }

/// Applies the keywords of `kwargs` that preset `method` reads to its config, checking each value
/// as tessel-segment checks its flags; records the keywords it used.
struct keyword_applier {
    const py::dict& kwargs;
    std::string method;
    std::vector<std::string> used;

    std::optional<py::object> take(std::string_view option) {
        const std::string k = keyword(option);
        if (!kwargs.contains(k)) return std::nullopt;
        used.push_back(k);
        return py::reinterpret_borrow<py::object>(kwargs[py::str(k)]);
    }

    template <class T>
    void operator()(const tm::number_option<T>& o) {
        auto v = take(o.name);
        if (!v) return;
        const std::string k = keyword(o.name);
        if (py::isinstance<py::bool_>(*v)) raise_value_error(k + " must be a number, got a bool");
        if constexpr (std::is_integral_v<T>) {
            if (!py::isinstance<py::int_>(*v) && !py::hasattr(*v, "__index__"))
                raise_value_error(k + " must be an integer, got " + std::string(py::str(*v)));
            const auto x = py::cast<long long>(*v);
            const double hi = o.max >= 9e18 ? std::numeric_limits<double>::max() : o.max;
            if (static_cast<double>(x) < o.min || static_cast<double>(x) > hi)
                raise_value_error(k + "=" + std::to_string(x) + " is out of range for " + method + ": must be " +
                                  (hi == std::numeric_limits<double>::max()
                                       ? ">= " + format_number(o.min)
                                       : "in [" + format_number(o.min) + ", " + format_number(o.max) + "]"));
            o.value = static_cast<T>(x);
        } else {
            double x = 0;
            try {
                x = py::float_(*v).cast<double>();
            } catch (const py::error_already_set&) {
                raise_value_error(k + " must be a number, got " + std::string(py::repr(*v)));
            }
            const bool unbounded = o.max >= std::numeric_limits<double>::max();
            const std::string range = unbounded ? (o.min_exclusive ? "> " : ">= ") + format_number(o.min)
                                                : "in " + std::string(o.min_exclusive ? "(" : "[") + format_number(o.min) +
                                                      ", " + format_number(o.max) + "]";
            if (!std::isfinite(x)) raise_value_error(k + " must be finite, got " + format_number(x));
            if (x < o.min || x > o.max || (o.min_exclusive && x == o.min))
                raise_value_error(k + "=" + format_number(x) + " is out of range for " + method + ": must be " + range);
            o.value = static_cast<T>(x);
        }
    }
    void operator()(const tm::flag_option& o) {
        auto v = take(o.name);
        if (!v) return;
        if (!py::isinstance<py::bool_>(*v) && !py::isinstance(*v, py::module_::import("numpy").attr("bool_")))
            raise_value_error(keyword(o.name) + " is an on/off option: pass True or False, got " + std::string(py::repr(*v)));
        const bool on = py::cast<bool>(*v);
        o.value = o.negated ? !on : on;
    }
    template <class E>
    void operator()(const tm::choice_option<E>& o) {
        auto v = take(o.name);
        if (!v) return;
        std::string names;
        for (const auto& c : o.choices) names += (names.empty() ? "" : ", ") + std::string(c.name);
        if (!py::isinstance<py::str>(*v))
            raise_value_error(keyword(o.name) + " must be one of " + names + ", got " + std::string(py::repr(*v)));
        const auto s = py::cast<std::string>(*v);
        for (const auto& c : o.choices)
            if (c.name == s) {
                o.value = c.value;
                return;
            }
        raise_value_error(keyword(o.name) + "='" + s + "' is not one of " + names);
    }
    void operator()(const tm::label_file_option& o) {
        auto v = take(o.name);
        if (!v || v->is_none()) return;
        const auto np = py::module_::import("numpy");
        if (py::isinstance<py::array>(*v)) {
            py::array a = py::reinterpret_borrow<py::array>(*v);
            if (a.ndim() != 2 || !py::bool_(np.attr("issubdtype")(a.dtype(), np.attr("integer"))))
                raise_value_error(keyword(o.name) + " must be an H x W integer array or a label PNG path");
            o.value = to_label_map(py::array_t<label_t, py::array::c_style | py::array::forcecast>::ensure(a));
            return;
        }
        const std::string path = py::str(py::module_::import("os").attr("fspath")(*v));
        if (!std::filesystem::exists(path)) {
            PyErr_SetString(PyExc_FileNotFoundError, ("tessel.segment: " + keyword(o.name) + ": no such file '" + path + "'").c_str());
            throw py::error_already_set();
        }
        try {
            o.value = io::read_label_png(path);
        } catch (const error& e) {
            raise_os_error(e.what());
        }
    }
    void operator()(const tm::path_option& o) {
        auto v = take(o.name);
        if (!v || v->is_none()) return;
        const std::string path = py::str(py::module_::import("os").attr("fspath")(*v));
        if (!std::filesystem::is_regular_file(path)) {
            PyErr_SetString(PyExc_FileNotFoundError, ("tessel.segment: " + keyword(o.name) + ": no such file '" + path + "'").c_str());
            throw py::error_already_set();
        }
        o.value = path;
    }
};

/// The current values of a config's options, by Python keyword.
struct parameter_reporter {
    py::dict& out;
    template <class T>
    void operator()(const tm::number_option<T>& o) { out[py::str(keyword(o.name))] = o.value; }
    void operator()(const tm::flag_option& o) { out[py::str(keyword(o.name))] = o.negated ? !o.value : o.value; }
    template <class E>
    void operator()(const tm::choice_option<E>& o) { out[py::str(keyword(o.name))] = std::string(o.current()); }
    void operator()(const tm::label_file_option& o) {
        out[py::str(keyword(o.name))] = o.value ? py::object(py::str("<label map>")) : py::object(py::none());
    }
    void operator()(const tm::path_option& o) {
        out[py::str(keyword(o.name))] = o.value.empty() ? py::object(py::none()) : py::object(py::str(o.value));
    }
};

/// One description per option: kind, default, range or choices, help.
struct option_describer {
    py::list& out;
    py::dict base(std::string_view name, std::string_view kind, std::string_view help) {
        py::dict d;
        d["name"] = keyword(name);
        d["kind"] = std::string(kind);
        d["help"] = std::string(help);
        out.append(d);
        return d;
    }
    template <class T>
    void operator()(const tm::number_option<T>& o) {
        auto d = base(o.name, std::is_integral_v<T> ? "int" : "float", o.help);
        d["default"] = o.value;
        d["min"] = o.min;
        d["max"] = o.max;
        d["min_exclusive"] = o.min_exclusive;
    }
    void operator()(const tm::flag_option& o) { base(o.name, "flag", o.help)["default"] = o.negated ? !o.value : o.value; }
    template <class E>
    void operator()(const tm::choice_option<E>& o) {
        auto d = base(o.name, "choice", o.help);
        d["default"] = std::string(o.current());
        py::list names;
        for (const auto& c : o.choices) names.append(std::string(c.name));
        d["choices"] = names;
    }
    void operator()(const tm::label_file_option& o) { base(o.name, "label_map", o.help)["default"] = py::none(); }
    void operator()(const tm::path_option& o) { base(o.name, "path", o.help)["default"] = py::none(); }
};

/// Called by the pipeline between steps, on the thread that runs it: takes the GIL, lets a
/// pending KeyboardInterrupt (or any signal handler's exception) stop the run, then calls the
/// user's callback. A Python exception leaves as error_already_set, which unwinds the run.
/// The callback is held by pointer: the pipeline copies the std::function without the GIL, and
/// copying a py::object would touch its reference count.
inline pipeline::progress_fn python_progress(const py::object* callback) {
    return [callback](std::string_view stage, index_t step, index_t total, std::string_view msg) {
        py::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
        if (!callback->is_none()) (*callback)(std::string(stage), step, total, std::string(msg));
    };
}

inline py::dict report_dict(const pipeline::report& r) {
    py::dict d;
    d["iterations"] = r.iterations;
    d["segments"] = r.num_segments;
    d["seconds"] = r.seconds;
    d["values"] = r.values;
    return d;
}

/// The names of the presets that read keyword `k` (for "it is an option of ..." messages).
inline std::string presets_reading(const std::string& k) {
    std::string who;
    tm::all_presets::for_each([&](auto id) {
        using P = typename decltype(id)::type;
        typename P::config c{};
        py::list l;
        option_describer d{l};
        P::visit_options(c, d);
        for (auto item : l)
            if (item["name"].cast<std::string>() == k) who += (who.empty() ? "" : ", ") + std::string(P::name);
    });
    return who;
}

template <class P, class B>
py::tuple run_preset(const py::array_t<std::uint8_t, py::array::c_style>& pixels, std::uint64_t seed_value, const py::dict& kwargs,
                     int threads, py::object progress) {
    const std::string method(P::name);
    typename P::config cfg{};
    keyword_applier apply{kwargs, method, {}};
    P::visit_options(cfg, apply);
    for (auto item : kwargs) {
        const auto k = item.first.cast<std::string>();
        if (std::find(apply.used.begin(), apply.used.end(), k) != apply.used.end()) continue;
        const std::string who = presets_reading(k);
        py::list own;
        typename P::config c{};
        option_describer d{own};
        P::visit_options(c, d);
        std::string names;
        for (auto o : own) names += (names.empty() ? "" : ", ") + o["name"].cast<std::string>();
        raise_value_error("'" + k + "' is not an option of " + method +
                          (who.empty() ? "" : " (it is one of " + who + ")") + "; its options are: " + names);
    }
    py::dict params;
    parameter_reporter rep{params};
    P::visit_options(cfg, rep);

    label_map labels;
    pipeline::report info;
    const int used_threads = threads > 0 ? threads : omp_get_max_threads();
    {
        const pipeline::progress_fn fn = python_progress(&progress);
        py::gil_scoped_release nogil;
        threads_for_call scope(threads);
        const image<std::uint8_t> img = to_image(pixels);
        const auto t0 = std::chrono::steady_clock::now();
        typename P::template method<B> m(cfg);
        labels = m.run(img, tessel::seed{seed_value}, fn);
        info = m.last_report();
        info.seconds["total"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        info.num_segments = labels.count_labels();
    }
    py::dict report = report_dict(info);
    report["tessel_version"] = TESSEL_VERSION_STRING;
    report["method"] = method;
    report["seed"] = seed_value;
    report["backend"] = std::string(B::name);
    report["threads"] = used_threads;
    report["parameters"] = params;
    report["width"] = labels.width();
    report["height"] = labels.height();
    return py::make_tuple(to_array(std::move(labels)), report);
}

/// Runs preset `method` on backend B: (labels, report); ValueError for an unknown method.
template <class B>
py::tuple run_method(const py::array_t<std::uint8_t, py::array::c_style>& pixels, const std::string& method,
                     std::uint64_t seed_value, const py::dict& options, int threads, py::object progress) {
    std::optional<py::tuple> out;
    const bool found = tm::all_presets::visit(method, [&](auto id) {
        using P = typename decltype(id)::type;
        out = run_preset<P, B>(pixels, seed_value, options, threads, std::move(progress));
    });
    if (!found) {
        std::string names;
        tm::all_presets::for_each([&](auto id) {
            names += (names.empty() ? "" : ", ") + std::string(decltype(id)::type::name);
        });
        raise_value_error("unknown method '" + method + "'; the methods are: " + names);
    }
    return *out;
}

/// One per backend, each defined in its own translation unit.
py::tuple run_on_cpu_omp(const py::array_t<std::uint8_t, py::array::c_style>& pixels, const std::string& method,
                         std::uint64_t seed_value, const py::dict& options, int threads, py::object progress);
py::tuple run_on_cpu_serial(const py::array_t<std::uint8_t, py::array::c_style>& pixels, const std::string& method,
                            std::uint64_t seed_value, const py::dict& options, int threads, py::object progress);

}  // namespace tessel::python::segment_detail
