// tessel-segment: segment one image, several images or a folder with any tessel method.
//
//   tessel-segment photo.jpg --method kim2020 --out labels.png --overlay overlay.png --json run.json
//   tessel-segment photos/ --method kanezaki2018 --out results/ --seed 3
//   tessel-segment            (no input: segments a built-in demo image generated in code)
// Labels are written as 8- or 16-bit single-channel PNG, overlays as RGB PNG, reports as JSON
// (seed, every parameter, iterations, segment count, timings per stage). Errors print one line
// on stderr and exit non-zero; existing files are never overwritten without --force.
#include <omp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <tessel/io/image.hpp>
#include <tessel/io/overlay.hpp>
#include <tessel/methods/presets.hpp>

namespace ts = tessel;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

/// A number in [lo, hi] (lo excluded when lo_open). Unlike CLI::PositiveNumber and friends it
/// rejects "nan" and "inf" (NaN passes every comparison, and the options use -1 for "not given",
/// so a NaN would silently become the default) and names the range briefly.
CLI::Validator real_in(double lo, double hi, bool lo_open, const std::string& what) {
    return CLI::Validator(
        [=](std::string& s) -> std::string {
            char* end = nullptr;
            const double v = std::strtod(s.c_str(), &end);
            if (s.empty() || end != s.c_str() + s.size()) return "'" + s + "' is not a number";
            if (!std::isfinite(v)) return "'" + s + "' is not a finite number";
            if (v < lo || v > hi || (lo_open && v == lo)) return s + " is out of range: must be " + what;
            return {};
        },
        what);
}
/// An integer in [lo, hi].
CLI::Validator integer_in(long long lo, long long hi) {
    const std::string what = hi == std::numeric_limits<long long>::max() ? ">= " + std::to_string(lo)
                                                                          : "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    return CLI::Validator(
        [=](std::string& s) -> std::string {
            char* end = nullptr;
            errno = 0;
            const long long v = std::strtoll(s.c_str(), &end, 10);
            if (s.empty() || end != s.c_str() + s.size()) return "'" + s + "' is not an integer";
            if (errno == ERANGE || v < lo || v > hi) return s + " is out of range: must be " + what;
            return {};
        },
        what);
}

constexpr const char* program = "tessel-segment";

/// The options of the tool itself; each method's options live in the registry below.
struct options {
    std::vector<std::string> inputs;
    std::string method = std::string(ts::methods::kim2020_preset::name);
    std::uint64_t seed = 0;
    std::string out, overlay, json_path, overlay_style = "boundary";
    bool force = false, quiet = false;
    int threads = 0;
    std::string backend = "cpu_omp";
    std::string reference_dir;  // reference-image mode of the presets that have one (kim2020)
    bool keep_going = false;
    bool allow_truncated = false;  // accept JPEGs libjpeg decodes only with a warning
    std::vector<std::string> command_line;
};

/// Where labels go when --out is not given: a folder of tessel's own in the working directory.
constexpr const char* default_out_folder = "tessel-out";

std::string format_number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

/// Every option of every preset, registered once per name with CLI11. A preset trait describes
/// its options (methods/preset.hpp); the registry turns them into flags, applies the given values
/// to the chosen preset's config, and reports them in the JSON.
class option_registry {
public:
    struct entry {
        std::string name, help;
        bool is_flag = false;
        std::string raw;                      // the value given (options with a value)
        bool flag_given = false;              // flags
        CLI::Option* cli = nullptr;
        std::vector<std::string> users;       // presets (or "<preset> reference mode") that read it
        std::vector<std::string> defaults;    // "<preset> <default>" for the help text
        CLI::Validator check;
        std::string type;                     // INT, FLOAT, NAME, FILE
        [[nodiscard]] bool given() const { return cli != nullptr && cli->count() > 0; }
    };

    /// Collects the options of every preset (and of their reference modes).
    option_registry() {
        ts::methods::all_presets::for_each([this](auto id) {
            using P = typename decltype(id)::type;
            typename P::config c{};
            collector col{*this, std::string(P::name)};
            P::visit_options(c, col);
            if constexpr (requires { typename P::reference_config; }) {
                typename P::reference_config r{};
                collector rc{*this, std::string(P::name) + " reference mode"};
                P::visit_reference_options(r, rc);
            }
        });
    }

    /// Adds every option to `app`, in one group per set of presets that share it.
    void add_to(CLI::App& app) {
        std::map<std::string, CLI::Option_group*> groups;
        for (auto& e : m_entries) {
            std::string group_name;
            for (const auto& u : e.users) group_name += (group_name.empty() ? "" : " / ") + u;
            auto*& g = groups[group_name];
            if (g == nullptr) g = app.add_option_group(group_name, "Options of " + group_name);
            std::string help = e.help;
            if (!e.is_flag) {
                std::string d;
                for (const auto& x : e.defaults) d += (d.empty() ? "" : ", ") + x;
                help += " (default: " + d + ")";
                e.cli = g->add_option("--" + e.name, e.raw, help)->check(e.check)->type_name(e.type);
            } else {
                e.cli = g->add_flag("--" + e.name, e.flag_given, help);
            }
        }
    }

    /// Sets the fields of `cfg` (preset P) whose options were given; refuses options P does not read.
    template <class P>
    void apply(typename P::config& cfg) {
        applier a{*this};
        P::visit_options(cfg, a);
    }
    template <class P, class R>
    void apply_reference(R& ref) {
        applier a{*this};
        P::visit_reference_options(ref, a);
    }
    /// Throws naming the first given option that none of `readers` reads.
    void check_all_used(const std::string& method, const std::vector<std::string>& readers) const {
        for (const auto& e : m_entries) {
            if (!e.given()) continue;
            const bool used = std::any_of(e.users.begin(), e.users.end(), [&](const std::string& u) {
                return std::find(readers.begin(), readers.end(), u) != readers.end();
            });
            std::string who;
            for (const auto& u : e.users) who += (who.empty() ? "" : ", ") + u;
            ts::expects(used, program, "--", e.name, " is not an option of ", method, " (it is one of ", who, ")");
        }
    }
    /// The values of P's options in `cfg`, for the report.
    template <class P>
    json parameters(typename P::config& cfg) const {
        json j = json::object();
        reporter r{*this, j};
        P::visit_options(cfg, r);
        return j;
    }
    template <class P, class R>
    json reference_parameters(R& ref) const {
        json j = json::object();
        reporter r{*this, j};
        P::visit_reference_options(ref, r);
        return j;
    }

private:
    entry& find_or_add(std::string_view name, std::string_view help, const std::string& user) {
        for (auto& e : m_entries)
            if (e.name == name) {
                if (std::find(e.users.begin(), e.users.end(), user) == e.users.end()) e.users.push_back(user);
                return e;
            }
        entry& e = m_entries.emplace_back();
        e.name = std::string(name);
        e.help = std::string(help);
        e.users.push_back(user);
        return e;
    }
    [[nodiscard]] const entry& at(std::string_view name) const {
        for (const auto& e : m_entries)
            if (e.name == name) return e;
        throw ts::error(program, "internal: option --" + std::string(name) + " was not registered");
    }

    struct collector {
        option_registry& r;
        std::string user;
        template <class T>
        void operator()(const ts::methods::number_option<T>& o) {
            entry& e = r.find_or_add(o.name, o.help, user);
            e.defaults.push_back(user + " " + format_number(static_cast<double>(o.value)));
            if (e.defaults.size() > 1) return;  // registered by an earlier preset
            e.type = std::is_integral_v<T> ? "INT" : "FLOAT";
            if constexpr (std::is_integral_v<T>) {
                const auto hi = o.max >= 9e18 ? std::numeric_limits<long long>::max() : static_cast<long long>(o.max);
                e.check = integer_in(static_cast<long long>(o.min), hi);
            } else {
                const bool unbounded = o.max >= std::numeric_limits<double>::max();
                const std::string what = unbounded ? (o.min_exclusive ? "> " : ">= ") + format_number(o.min)
                                                   : "in " + std::string(o.min_exclusive ? "(" : "[") +
                                                         format_number(o.min) + ", " + format_number(o.max) + "]";
                e.check = real_in(o.min, o.max, o.min_exclusive, what);
            }
        }
        void operator()(const ts::methods::flag_option& o) { r.find_or_add(o.name, o.help, user).is_flag = true; }
        template <class E>
        void operator()(const ts::methods::choice_option<E>& o) {
            entry& e = r.find_or_add(o.name, o.help, user);
            e.defaults.push_back(user + " " + std::string(o.current()));
            e.type = "NAME";
            if (e.defaults.size() > 1) return;  // registered by an earlier preset
            std::vector<std::string> names;
            for (const auto& c : o.choices) names.emplace_back(c.name);
            e.check = CLI::IsMember(names);
        }
        void operator()(const ts::methods::label_file_option& o) {
            entry& e = r.find_or_add(o.name, o.help, user);
            e.defaults.push_back(user + " none");
            e.type = "PNG";
            e.check = CLI::ExistingFile;
        }
        void operator()(const ts::methods::path_option& o) {
            entry& e = r.find_or_add(o.name, o.help, user);
            e.defaults.push_back(user + " none");
            e.type = "FILE";
            e.check = CLI::ExistingFile;
        }
    };

    struct applier {
        const option_registry& r;
        template <class T>
        void operator()(const ts::methods::number_option<T>& o) {
            const entry& e = r.at(o.name);
            if (!e.given()) return;
            if constexpr (std::is_integral_v<T>)
                o.value = static_cast<T>(std::strtoll(e.raw.c_str(), nullptr, 10));
            else
                o.value = static_cast<T>(std::strtod(e.raw.c_str(), nullptr));
        }
        void operator()(const ts::methods::flag_option& o) {
            if (r.at(o.name).given()) o.value = !o.negated;
        }
        template <class E>
        void operator()(const ts::methods::choice_option<E>& o) {
            const entry& e = r.at(o.name);
            if (!e.given()) return;
            for (const auto& c : o.choices)
                if (c.name == e.raw) o.value = c.value;
        }
        void operator()(const ts::methods::label_file_option& o) {
            const entry& e = r.at(o.name);
            if (e.given()) o.value = read_label_file(e.raw, o.name);
        }
        void operator()(const ts::methods::path_option& o) {
            const entry& e = r.at(o.name);
            if (e.given()) o.value = e.raw;
        }
    };

    struct reporter {
        const option_registry& r;
        json& j;
        template <class T>
        void operator()(const ts::methods::number_option<T>& o) {
            j[std::string(o.name)] = o.value;
        }
        void operator()(const ts::methods::flag_option& o) { j[std::string(o.name)] = o.negated ? !o.value : o.value; }
        template <class E>
        void operator()(const ts::methods::choice_option<E>& o) {
            j[std::string(o.name)] = std::string(o.current());
        }
        void operator()(const ts::methods::label_file_option& o) {
            const entry& e = r.at(o.name);
            j[std::string(o.name)] = e.given() ? json(e.raw) : json(nullptr);
        }
        void operator()(const ts::methods::path_option& o) {
            j[std::string(o.name)] = o.value.empty() ? json(nullptr) : json(o.value);
        }
    };

    static ts::label_map read_label_file(const std::string& path, std::string_view what) {
        // 16-bit PNGs too: a superpixel map (picnet --superpixels) can hold more than 256 regions.
        const auto size = ts::io::read_image_size(path);
        ts::expects(size.channels == 1, program, std::string(what), " file '", path,
                    "' must be a single-channel 8- or 16-bit PNG, got ", size.channels, " channels");
        return ts::io::read_label_png(path);
    }

    std::vector<entry> m_entries;
};


/// A 192x128 scene generated in code: sky gradient, ground, a sun, a house with a roof and a
/// window, and mild noise, so the demo needs no file.
ts::image<std::uint8_t> demo_image() {
    const ts::index_t W = 192, H = 128;
    ts::image<std::uint8_t> img(W, H, 3);
    ts::rng noise(7);
    for (ts::index_t y = 0; y < H; ++y)
        for (ts::index_t x = 0; x < W; ++x) {
            double r = 90 + 60.0 * y / H, g = 150 + 50.0 * y / H, b = 235;  // sky
            if (y > 88) r = 70, g = 140 - (y - 88), b = 60;                 // grass
            const double dx = x - 155.0, dy = y - 28.0;
            if (dx * dx + dy * dy < 14 * 14) r = 250, g = 215, b = 60;      // sun
            if (x >= 40 && x < 100 && y >= 60 && y <= 100) r = 190, g = 120, b = 90;  // house
            if (y >= 30 && y < 60 && x >= 40 + (60 - y) && x < 100 - (60 - y)) r = 140, g = 40, b = 40;  // roof
            if (x >= 55 && x < 70 && y >= 70 && y < 84) r = 250, g = 240, b = 170;                       // window
            const double n = static_cast<double>(noise.below(13)) - 6.0;
            img(x, y, 0) = static_cast<std::uint8_t>(std::clamp(r + n, 0.0, 255.0));
            img(x, y, 1) = static_cast<std::uint8_t>(std::clamp(g + n, 0.0, 255.0));
            img(x, y, 2) = static_cast<std::uint8_t>(std::clamp(b + n, 0.0, 255.0));
        }
    return img;
}

bool is_image_file(const fs::path& p) {
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".tga" || ext == ".ppm" ||
           ext == ".pgm";
}

/// Files named on the command line, or the images inside named folders (sorted by name).
std::vector<fs::path> collect_inputs(const std::vector<std::string>& args, bool& any_folder) {
    std::vector<fs::path> files;
    any_folder = false;
    for (const auto& a : args) {
        const fs::path p(a);
        if (fs::is_directory(p)) {
            any_folder = true;
            std::vector<fs::path> found;
            for (const auto& e : fs::directory_iterator(p))
                if (e.is_regular_file() && is_image_file(e.path())) found.push_back(e.path());
            std::sort(found.begin(), found.end());
            ts::expects(!found.empty(), program, "folder '", a, "' contains no image files");
            files.insert(files.end(), found.begin(), found.end());
        } else {
            ts::expects(fs::exists(p), program, "input '", a, "' does not exist");
            files.push_back(p);
        }
    }
    return files;
}

/// The files one input's results go to (empty: not written).
struct planned_output {
    fs::path labels, overlay;
};

/// Decides every output path before any work and refuses what would surprise: writing to '-',
/// a file name used as the folder of several inputs, an output that is an input, two inputs
/// writing one file, an existing file without --force, a folder that cannot be written.
/// Creates the folders it needs.
std::vector<planned_output> plan_outputs(const options& o, const std::vector<fs::path>& inputs,
                                         const std::vector<std::string>& stems, bool many) {
    const std::string labels_target = o.out.empty() ? std::string(default_out_folder) : o.out;
    const bool labels_in_folder = many || o.out.empty() || fs::is_directory(o.out);
    const bool overlay_in_folder = many || (!o.overlay.empty() && fs::is_directory(o.overlay));
    for (const std::string* t : {&o.out, &o.overlay, &o.json_path})
        ts::expects(*t != "-", program, "'-': writing to standard output is not supported; name a file");
    auto check_folder = [&](const std::string& target, const char* what) {
        ts::expects(!fs::exists(target) || fs::is_directory(target), program, "with several inputs, ", what, " '",
                    target, "' must be a folder");
        ts::expects(fs::exists(target) || !is_image_file(target), program, "with several inputs, ", what,
                    " must be a folder, but '", target, "' is named like an image file");
    };
    if (labels_in_folder && many) check_folder(labels_target, "--out");
    if (!o.overlay.empty() && overlay_in_folder && many) check_folder(o.overlay, "--overlay");

    std::vector<planned_output> plan(stems.size());
    for (std::size_t i = 0; i < stems.size(); ++i) {
        plan[i].labels = labels_in_folder ? fs::path(labels_target) / (stems[i] + ".png") : fs::path(labels_target);
        if (!o.overlay.empty())
            plan[i].overlay = overlay_in_folder ? fs::path(o.overlay) / (stems[i] + "_overlay.png") : fs::path(o.overlay);
    }
    // Every file that will be written, with the input it belongs to (the report: none).
    std::vector<std::pair<fs::path, std::string>> writes;
    for (std::size_t i = 0; i < plan.size(); ++i) {
        const std::string who = i < inputs.size() ? inputs[i].string() : std::string("the demo image");
        writes.emplace_back(plan[i].labels, who);
        if (!plan[i].overlay.empty()) writes.emplace_back(plan[i].overlay, who);
    }
    if (!o.json_path.empty()) writes.emplace_back(fs::path(o.json_path), "the report");
    auto same_file = [](const fs::path& a, const fs::path& b) {
        std::error_code e1, e2;
        return fs::weakly_canonical(a, e1) == fs::weakly_canonical(b, e2);
    };
    for (std::size_t k = 0; k < writes.size(); ++k) {
        const fs::path& w = writes[k].first;
        for (const auto& in : inputs)
            ts::expects(!same_file(w, in), program, "'", w.string(), "' is an input; refusing to overwrite it (even with --force)");
        for (std::size_t j = 0; j < k; ++j)
            ts::expects(!same_file(w, writes[j].first), program, writes[j].second, " and ", writes[k].second,
                        " would both write '", w.string(), "'; rename one or use separate folders");
        ts::expects(o.force || !fs::exists(w), program, "'", w.string(), "' exists; pass --force to overwrite it");
    }
    // Folders: created now, and checked for writing, so that no run ends in "cannot write".
    for (const auto& [w, who] : writes) {
        fs::path dir = w.parent_path();
        if (dir.empty()) dir = ".";
        std::error_code ec;
        fs::create_directories(dir, ec);
        ts::expects(!ec, program, "cannot create the folder '", dir.string(), "' for '", w.string(), "': ", ec.message());
        ts::expects(access(dir.c_str(), W_OK) == 0, program, "cannot write into '", dir.string(), "': ",
                    std::strerror(errno));
    }
    return plan;
}

/// Runs preset P on backend B with the options of the registry.
template <class P, class B>
class runner {
public:
    runner(const options& o, option_registry& reg) : m_o(o) {
        std::vector<std::string> readers{std::string(P::name)};
        reg.template apply<P>(m_cfg);
        m_params = reg.template parameters<P>(m_cfg);
        if constexpr (requires { typename P::reference_config; }) {
            if (!o.reference_dir.empty()) {
                readers.push_back(std::string(P::name) + " reference mode");
                reg.template apply_reference<P>(m_ref);
                m_params["reference"] = reg.template reference_parameters<P>(m_ref);
            }
        } else {
            ts::expects(o.reference_dir.empty(), program, "--reference-dir: ", P::name, " has no reference-image mode");
        }
        reg.check_all_used(o.method, readers);
        m_method.emplace(m_cfg);
    }

    struct result {
        ts::label_map labels;
        ts::pipeline::report info;
    };

    result run(const ts::image<std::uint8_t>& img, ts::pipeline::progress_fn progress) {
        result r;
        const auto t0 = std::chrono::steady_clock::now();
        if (reference_mode()) {
            if constexpr (requires { typename P::reference_config; }) r.labels = m_method->apply(img);
        } else {
            r.labels = m_method->run(img, ts::seed{m_o.seed}, std::move(progress));
            r.info = m_method->last_report();
        }
        r.info.seconds["total"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        r.info.num_segments = r.labels.count_labels();
        return r;
    }

    /// Reference mode: trains on every image of the folder before any input is segmented.
    void fit_reference(ts::pipeline::progress_fn progress) {
        if constexpr (requires { typename P::reference_config; }) {
            bool folder = false;
            std::vector<ts::image<std::uint8_t>> images;
            for (const auto& p : collect_inputs({m_o.reference_dir}, folder)) images.push_back(ts::io::read_image(p));
            m_params["reference"]["folder"] = m_o.reference_dir;
            m_params["reference"]["images"] = images.size();
            m_method->fit_reference(images, m_ref, ts::seed{m_o.seed}, std::move(progress));
        }
    }
    [[nodiscard]] bool reference_mode() const { return !m_o.reference_dir.empty(); }
    [[nodiscard]] const json& parameters() const { return m_params; }
    [[nodiscard]] double estimated_bytes(ts::index_t w, ts::index_t h) const { return P::estimated_bytes(m_cfg, w, h); }

private:
    struct no_reference {};
    using reference_type = decltype([] {
        if constexpr (requires { typename P::reference_config; })
            return typename P::reference_config{};
        else
            return no_reference{};
    }());

    const options& m_o;
    typename P::config m_cfg{};
    reference_type m_ref{};
    json m_params;
    std::optional<typename P::template method<B>> m_method;
};

/// Progress on stderr: an updating line on a terminal, a line every 100 steps otherwise.
class progress_printer {
public:
    progress_printer(bool quiet) : m_quiet(quiet), m_tty(isatty(fileno(stderr)) != 0) {}
    /// One error line, shown even with --quiet (the tool's own prefix, as main's).
    void error(std::string_view what) {
        if (m_open) std::fputs("\r\033[K", stderr);
        m_open = false;
        const std::string own = std::string(program) + ": ";
        if (what.substr(0, own.size()) == own) what.remove_prefix(own.size());
        std::fprintf(stderr, "%s: error: %.*s\n", program, static_cast<int>(what.size()), what.data());
    }
    void set_prefix(std::string p) { m_prefix = std::move(p); }
    ts::pipeline::progress_fn callback() {
        if (m_quiet) return {};
        return [this](std::string_view stage, ts::index_t step, ts::index_t total, std::string_view msg) {
            // A terminal line is redrawn at most 10 times a second; a log gets a line every 2 s.
            const auto now = std::chrono::steady_clock::now();
            const double since = std::chrono::duration<double>(now - m_last).count();
            if (step != total && since < (m_tty ? 0.1 : 2.0)) return;
            m_last = now;
            std::fprintf(stderr, "%s%s %s %lld/%lld %.*s%s", m_tty ? "\r\033[K" : "", m_prefix.c_str(),
                         std::string(stage).c_str(), static_cast<long long>(step), static_cast<long long>(total),
                         static_cast<int>(msg.size()), msg.data(), m_tty ? "" : "\n");
            std::fflush(stderr);
            m_open = m_tty;
        };
    }
    void line(const std::string& s) {
        if (m_quiet) return;
        if (m_open) std::fputs("\r\033[K", stderr);
        m_open = false;
        std::fprintf(stderr, "%s\n", s.c_str());
    }

private:
    bool m_quiet, m_tty, m_open = false;
    std::string m_prefix;
    std::chrono::steady_clock::time_point m_last{};
};

/// Refuses an image whose run would not fit in this machine's memory (it would otherwise be
/// killed by the kernel part-way, with no message). The estimate is the preset's own.
template <class Runner>
void check_fits_in_memory(const options& o, const Runner& run, const fs::path& file) {
    const auto size = ts::io::read_image_size(file);
    const double need = run.estimated_bytes(size.width, size.height);
    const double have = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
    ts::expects(have <= 0 || need <= have, program, "'", file.string(), "' (", size.width, "x", size.height,
                ") needs about ", std::llround(need / 1e9), " GB for ", o.method, "; this machine has ",
                std::llround(have / 1e9), " GB. Downscale the image first");
}

template <class P, class B>
int segment_all(const options& o, option_registry& registry) {
    // The method's options first: a bad setting is reported before any file is looked at.
    runner<P, B> run(o, registry);
    bool any_folder = false;
    std::vector<fs::path> files;
    if (!o.inputs.empty()) files = collect_inputs(o.inputs, any_folder);
    const bool demo = files.empty();
    const bool many = any_folder || files.size() > 1;
    ts::expects(!demo || o.reference_dir.empty(), program, "--reference-dir needs input images to apply the network to");

    std::vector<std::string> stems;
    for (const auto& f : files) stems.push_back(f.stem().string());
    if (demo) stems.push_back("demo");
    const std::vector<planned_output> plan = plan_outputs(o, files, stems, many);

    progress_printer printer(o.quiet);
    if (o.out.empty()) printer.line(std::string("no --out given: writing label maps to ") + default_out_folder + "/");
    json report = {{"tessel_version", TESSEL_VERSION_STRING}, {"command_line", o.command_line}, {"method", o.method},
                   {"seed", o.seed}, {"backend", B::name}, {"threads", ts::num_threads(B{})},
                   {"parameters", run.parameters()}, {"allow_truncated", o.allow_truncated},
                   {"images", json::array()}};
    auto write_report = [&] {
        if (o.json_path.empty()) return;
        std::ofstream f(o.json_path);
        ts::expects(static_cast<bool>(f), program, "cannot open '", o.json_path, "' for writing");
        f << report.dump(2) << "\n";
    };
    if (run.reference_mode()) {
        printer.line("training on the reference images in " + o.reference_dir);
        run.fit_reference(printer.callback());
    }
    const std::size_t n = demo ? 1 : files.size();
    std::size_t failed = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const std::string name = demo ? "built-in demo image" : files[i].string();
        try {
            if (!demo) check_fits_in_memory(o, run, files[i]);
            std::vector<std::string> decoder_warnings;
            const ts::image<std::uint8_t> img =
                demo ? demo_image()
                     : ts::io::read_image(files[i], 3, {.allow_truncated = o.allow_truncated, .warnings = &decoder_warnings});
            for (const auto& w : decoder_warnings) printer.line("warning: " + w);
            printer.set_prefix("[" + std::to_string(i + 1) + "/" + std::to_string(n) + "] " + name + ":");
            auto r = run.run(img, printer.callback());
            ts::io::write_label_png(plan[i].labels, r.labels);
            if (!plan[i].overlay.empty()) {
                const auto pic = o.overlay_style == "blend" ? ts::io::blend_overlay(img, r.labels)
                                 : o.overlay_style == "colour" ? ts::io::colorize(r.labels)
                                                               : ts::io::boundary_overlay(img, r.labels);
                ts::io::write_png(plan[i].overlay, pic);
            }
            json outputs = {{"labels", plan[i].labels.string()}};
            if (!plan[i].overlay.empty()) outputs["overlay"] = plan[i].overlay.string();
            json entry = {{"input", name}, {"status", "ok"}, {"outputs", outputs}, {"width", img.width()},
                          {"height", img.height()}, {"segments", r.info.num_segments}, {"iterations", r.info.iterations},
                          {"seconds", r.info.seconds}, {"values", r.info.values}};
            if (!decoder_warnings.empty()) entry["decoder_warnings"] = decoder_warnings;
            report["images"].push_back(entry);
            char buf[256];
            std::snprintf(buf, sizeof buf, "[%zu/%zu] %s: %lld segments, %lld iterations, %.2f s", i + 1, n,
                          name.c_str(), static_cast<long long>(r.info.num_segments),
                          static_cast<long long>(r.info.iterations), r.info.seconds["total"]);
            printer.line(buf);
        } catch (const std::exception& e) {
            // The report keeps what was done, and says what failed, in either mode.
            report["images"].push_back({{"input", name}, {"status", "error"}, {"error", e.what()}});
            if (!o.keep_going) {
                write_report();
                throw;
            }
            ++failed;
            printer.error(e.what());
        }
    }
    report["failed"] = failed;
    write_report();
    return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    CLI::App app{"tessel-segment: unsupervised image segmentation of photos with the methods of tessel.\n"
                 "With no INPUT, segments a built-in demo image generated in code."};
    app.add_option("inputs", o.inputs, "Image files (PNG, JPEG, BMP...) or folders of images");
    std::vector<std::string> method_names;
    std::string method_help = "Method:";
    ts::methods::all_presets::for_each([&](auto id) {
        using P = typename decltype(id)::type;
        method_names.emplace_back(P::name);
        method_help += "\n  " + std::string(P::name) + ": " + std::string(P::summary);
    });
    app.add_option("-m,--method", o.method, method_help)->check(CLI::IsMember(method_names))->capture_default_str();
    app.add_option("--seed", o.seed, "Seed of every random choice (weights, sampling)")->capture_default_str();
    app.add_option("-o,--out", o.out, std::string("Label map PNG (a folder when there are several inputs; default: ") +
                                          default_out_folder + "/<stem>.png)");
    app.add_option("--overlay", o.overlay, "Picture of the segmentation PNG (a folder when there are several inputs)");
    app.add_option("--overlay-style", o.overlay_style, "boundary: boundaries on the photo; blend: colours blended; "
                                                       "colour: one colour per segment")
        ->check(CLI::IsMember({"boundary", "blend", "colour"}))
        ->capture_default_str();
    app.add_option("--json", o.json_path, "Report: parameters, seed, segment counts, iterations, timings");
    app.add_flag("-f,--force", o.force, "Overwrite existing output files");
    app.add_flag("-q,--quiet", o.quiet, "No progress on stderr");
    app.add_flag("--allow-truncated", o.allow_truncated,
                 "Accept a damaged JPEG (truncated, corrupt data) that libjpeg decodes with a warning; the report "
                 "lists the warning per image");
    app.add_flag("--keep-going", o.keep_going, "Go on past an image that fails; the report records it and the "
                                              "exit status is 1 at the end");
    app.add_option("--threads", o.threads, "CPU threads for cpu_omp (default: OpenMP's)")->check(integer_in(1, 1024));
    app.add_option("--backend", o.backend, "Backend")->check(CLI::IsMember({"cpu_omp", "cpu_serial"}))->capture_default_str();

    app.add_option("--reference-dir", o.reference_dir, "Reference-image mode (kim2020): train once on the images of "
                                                        "this folder, then apply the network to the inputs")
        ->check(CLI::ExistingDirectory);
    option_registry registry;
    registry.add_to(app);

    o.command_line.assign(argv, argv + argc);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help
        std::fprintf(stderr, "%s: error: %s (see --help)\n", program, e.what());
        return e.get_exit_code();
    }
    try {
        if (o.threads > 0) omp_set_num_threads(o.threads);
        int status = 1;
        ts::methods::all_presets::visit(o.method, [&](auto id) {
            using P = typename decltype(id)::type;
            status = o.backend == "cpu_serial" ? segment_all<P, ts::cpu_serial>(o, registry)
                                               : segment_all<P, ts::cpu_omp>(o, registry);
        });
        return status;
    } catch (const std::exception& e) {
        // The tool's own checks name it as their origin already; library errors name their function.
        std::string_view what = e.what();
        const std::string own = std::string(program) + ": ";
        if (what.substr(0, own.size()) == own) what.remove_prefix(own.size());
        std::fprintf(stderr, "%s: error: %.*s\n", program, static_cast<int>(what.size()), what.data());
        return 1;
    }
}
