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
#include <tessel/methods/azad2025.hpp>
#include <tessel/methods/kanezaki2018.hpp>
#include <tessel/methods/grapl.hpp>
#include <tessel/methods/kim2020.hpp>
#include <tessel/superpixel/felzenszwalb.hpp>
#include <tessel/superpixel/slic.hpp>

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
        "FLOAT " + what);
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
        "INT " + what);
}
const CLI::Validator positive_real = real_in(0, std::numeric_limits<double>::max(), true, "> 0");
const CLI::Validator non_negative_real = real_in(0, std::numeric_limits<double>::max(), false, ">= 0");
const CLI::Validator non_negative_integer = integer_in(0, std::numeric_limits<long long>::max());

constexpr const char* program = "tessel-segment";

/// Every option of every method; each method reads the ones it documents.
struct options {
    std::vector<std::string> inputs;
    std::string method = "kim2020";
    std::uint64_t seed = 0;
    std::string out, overlay, json_path, overlay_style = "boundary";
    bool force = false, quiet = false;
    int threads = 0;
    std::string backend = "cpu_omp";
    // DFC family
    ts::index_t max_iter = -1, min_labels = -1, channels = -1, conv_blocks = -1;
    double lr = -1, momentum = -1, continuity = -1, similarity = -1, scribble_weight = -1;
    std::string scribble;
    bool last_iteration_labels = false, bgr_input = false;
    // reference mode (kim2020)
    std::string reference_dir;
    ts::index_t ref_size = 224, ref_updates = 1000, ref_batch = 1;
    bool eval_bn = false;
    // kanezaki2018 / slic
    ts::index_t n_segments = -1;
    double compactness = -1, sigma = -1;
    bool slic_on_bgr = false, slic_zero = false;
    // azad2025
    bool stem_relu_before_bn = false;
    std::string init;
    // felzenszwalb
    double scale = 1.0;
    ts::index_t min_size = 20;
    // grapl (negative / empty: the preset's default)
    ts::index_t grapl_rounds = -1, grapl_k0 = -1, grapl_grid = -1;
    double grapl_lambda = -1, grapl_mu = -1;
    std::string grapl_solver, grapl_initialiser, grapl_affinity, grapl_schedule;
    bool grapl_hard_labels = false, grapl_total_loss_stop = false, grapl_cold_start = false, grapl_float_energies = false;
};

struct result {
    ts::label_map labels;
    ts::pipeline::report info;
    json parameters;
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

/// Where the output of kind `suffix` for input `stem` goes: `target` itself for a single input
/// without folders, else `target/<stem><suffix>.png`.
fs::path output_path(const std::string& target, bool many, const std::string& stem, const std::string& suffix) {
    if (!many) return fs::path(target);
    return fs::path(target) / (stem + suffix + ".png");
}

void check_writable(const fs::path& p, bool force) {
    ts::expects(force || !fs::exists(p), program, "'", p.string(), "' exists; pass --force to overwrite it");
}

ts::label_map read_scribbles(const std::string& path) {
    ts::image<std::uint8_t> s = ts::io::read_image(path, 0);
    ts::expects(s.channels() == 1, program, "scribble file '", path, "' must be a single-channel 8-bit PNG, got ",
                s.channels(), " channels");
    std::vector<ts::label_t> v(s.values().begin(), s.values().end());
    return ts::label_map(s.width(), s.height(), std::move(v));
}

ts::stages::self_train_options train_options(const options& o, ts::stages::self_train_options t) {
    if (o.max_iter >= 0) t.max_iterations = o.max_iter;
    if (o.min_labels >= 0) t.min_labels = o.min_labels;
    if (o.lr >= 0) t.lr = o.lr;
    if (o.momentum >= 0) t.momentum = o.momentum;
    if (o.continuity >= 0) t.continuity_weight = o.continuity;
    if (o.similarity >= 0) t.similarity_weight = o.similarity;
    if (o.scribble_weight >= 0) t.scribble_weight = o.scribble_weight;
    t.label_from_last_iteration = o.last_iteration_labels;
    return t;
}

json train_json(const ts::stages::self_train_options& t) {
    return {{"max_iterations", t.max_iterations}, {"min_labels", t.min_labels}, {"lr", t.lr},
            {"momentum", t.momentum}, {"similarity_weight", t.similarity_weight},
            {"continuity_weight", t.continuity_weight}, {"scribble_weight", t.scribble_weight},
            {"label_from_last_iteration", t.label_from_last_iteration}};
}

/// Runs the chosen method on backend B.
template <class B>
class runner {
public:
    explicit runner(const options& o) : m_o(o) { configure(); }

    result run(const ts::image<std::uint8_t>& img, ts::pipeline::progress_fn progress) {
        result r;
        r.parameters = m_params;
        const ts::seed s{m_o.seed};
        const auto t0 = std::chrono::steady_clock::now();
        if (m_o.method == "kim2020") {
            if (m_reference) {
                r.labels = m_kim->apply(img);
            } else {
                r.labels = m_kim->run(img, s, std::move(progress));
                r.info = m_kim->last_report();
            }
        } else if (m_o.method == "kanezaki2018") {
            r.labels = m_kanezaki->run(img, s, std::move(progress));
            r.info = m_kanezaki->last_report();
        } else if (m_o.method == "azad2025") {
            r.labels = m_azad->run(img, s, std::move(progress));
            r.info = m_azad->last_report();
        } else if (m_o.method == "grapl") {
            r.labels = m_grapl->run(img, s, std::move(progress));
            r.info = m_grapl->last_report();
        } else if (m_o.method == "slic") {
            r.labels = ts::slic{m_slic}(B{}, img);
        } else if (m_o.method == "felzenszwalb") {
            r.labels = ts::felzenszwalb{m_fz}(B{}, img);
        }
        r.info.seconds["total"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        r.info.num_segments = r.labels.count_labels();
        return r;
    }

    /// Reference mode: trains on every image of the folder before any input is segmented.
    void fit_reference(ts::pipeline::progress_fn progress) {
        bool folder = false;
        std::vector<ts::image<std::uint8_t>> images;
        for (const auto& p : collect_inputs({m_o.reference_dir}, folder)) images.push_back(ts::io::read_image(p));
        ts::methods::kim2020_reference_config ref{.size = m_o.ref_size, .batch_size = m_o.ref_batch,
                                                  .updates_per_batch = m_o.ref_updates, .eval_mode_bn = m_o.eval_bn};
        if (m_o.continuity >= 0) ref.continuity_weight = m_o.continuity;
        m_params["reference"] = {{"folder", m_o.reference_dir}, {"images", images.size()}, {"size", ref.size},
                                 {"batch_size", ref.batch_size}, {"updates_per_batch", ref.updates_per_batch},
                                 {"continuity_weight", ref.continuity_weight}, {"eval_mode_bn", ref.eval_mode_bn}};
        m_kim->fit_reference(images, ref, ts::seed{m_o.seed}, std::move(progress));
    }
    [[nodiscard]] bool reference_mode() const { return m_reference; }

private:
    void configure() {
        const auto& o = m_o;
        if (o.method == "kim2020") {
            ts::methods::kim2020_config c;
            if (o.channels > 0) c.channels = o.channels;
            if (o.conv_blocks > 0) c.conv_blocks = o.conv_blocks;
            c.train = train_options(o, c.train);
            c.bgr_input = o.bgr_input;
            if (!o.scribble.empty()) c.scribbles = read_scribbles(o.scribble);
            m_params = {{"channels", c.channels}, {"conv_blocks", c.conv_blocks}, {"train", train_json(c.train)},
                        {"bgr_input", c.bgr_input}, {"scribbles", o.scribble}};
            m_reference = !o.reference_dir.empty();
            m_kim.emplace(std::move(c));
        } else if (o.method == "kanezaki2018") {
            ts::methods::kanezaki2018_config c;
            if (o.channels > 0) c.channels = o.channels;
            if (o.conv_blocks > 0) c.conv_blocks = o.conv_blocks;
            c.train = train_options(o, c.train);
            if (o.n_segments > 0) c.superpixels.n_segments = o.n_segments;
            if (o.compactness > 0) c.superpixels.compactness = static_cast<float>(o.compactness);
            c.slic_on_bgr = o.slic_on_bgr;
            m_params = {{"channels", c.channels}, {"conv_blocks", c.conv_blocks}, {"train", train_json(c.train)},
                        {"slic_segments", c.superpixels.n_segments}, {"slic_compactness", c.superpixels.compactness},
                        {"slic_on_bgr", c.slic_on_bgr}};
            m_kanezaki.emplace(std::move(c));
        } else if (o.method == "azad2025") {
            ts::methods::azad2025_config c;
            if (o.channels > 0) c.channels = o.channels;
            if (o.conv_blocks > 0) c.inception_blocks = o.conv_blocks;
            c.train = train_options(o, c.train);
            c.stem_relu_before_bn = o.stem_relu_before_bn;
            if (o.init == "pytorch") c.init = ts::nn::init::scheme::pytorch_default;
            m_params = {{"channels", c.channels}, {"inception_blocks", c.inception_blocks},
                        {"train", train_json(c.train)}, {"stem_relu_before_bn", c.stem_relu_before_bn},
                        {"init", c.init == ts::nn::init::scheme::xavier_uniform ? "xavier" : "pytorch"}};
            m_azad.emplace(std::move(c));
        } else if (o.method == "grapl") {
            configure_grapl();
        } else if (o.method == "slic") {
            if (o.n_segments > 0) m_slic.n_segments = o.n_segments;
            if (o.compactness > 0) m_slic.compactness = static_cast<float>(o.compactness);
            if (o.sigma >= 0) m_slic.sigma = o.sigma;
            m_slic.slic_zero = o.slic_zero;
            ts::slic::validate(m_slic);
            m_params = {{"n_segments", m_slic.n_segments}, {"compactness", m_slic.compactness},
                        {"sigma", m_slic.sigma}, {"slic_zero", m_slic.slic_zero}};
        } else if (o.method == "felzenszwalb") {
            m_fz.scale = o.scale;
            if (o.sigma >= 0) m_fz.sigma = o.sigma;
            m_fz.min_size = o.min_size;
            m_params = {{"scale", m_fz.scale}, {"sigma", m_fz.sigma}, {"min_size", m_fz.min_size}};
        }
    }

    void configure_grapl() {
        namespace m = ts::methods;
        const auto& o = m_o;
        m::grapl_config c;
        if (o.grapl_rounds > 0) c.rounds = o.grapl_rounds;
        if (o.grapl_k0 > 0) c.k0 = o.grapl_k0;
        if (o.grapl_grid > 0) c.grid = o.grapl_grid;
        if (o.grapl_lambda >= 0) c.lambda = o.grapl_lambda;
        if (o.grapl_mu >= 0) c.mu = o.grapl_mu;
        if (o.grapl_solver == "expansion") c.solver = m::grapl_solver::alpha_expansion;
        if (o.grapl_initialiser == "random") c.initialiser = m::grapl_initialiser::random;
        if (o.grapl_initialiser == "knn") c.initialiser = m::grapl_initialiser::knn;
        if (o.grapl_initialiser == "kmeans") c.initialiser = m::grapl_initialiser::kmeans;
        if (o.grapl_affinity == "raw_colour") c.affinity = m::grapl_affinity::raw_mean_colour;
        if (o.grapl_affinity == "position") c.affinity = m::grapl_affinity::position;
        if (o.grapl_affinity == "uniform4") c.affinity = m::grapl_affinity::uniform4;
        if (o.grapl_schedule == "code") c.schedule = m::grapl_epoch_schedule::code;
        c.hard_initial_labels = o.grapl_hard_labels;
        c.early_stop_on_total_loss = o.grapl_total_loss_stop;
        c.cold_start = o.grapl_cold_start;
        c.gco_integer_energies = !o.grapl_float_energies;
        m_params = {{"rounds", c.rounds}, {"k0", c.k0}, {"grid", c.grid}, {"lambda", c.lambda}, {"mu", c.mu},
                    {"solver", c.solver == m::grapl_solver::alpha_expansion ? "expansion" : "swap"},
                    {"initialiser", o.grapl_initialiser.empty() ? "slic" : o.grapl_initialiser},
                    {"affinity", o.grapl_affinity.empty() ? "colour" : o.grapl_affinity},
                    {"epoch_schedule", o.grapl_schedule.empty() ? "paper" : o.grapl_schedule},
                    {"hard_initial_labels", c.hard_initial_labels}, {"early_stop_on_total_loss", c.early_stop_on_total_loss},
                    {"cold_start", c.cold_start}, {"gco_integer_energies", c.gco_integer_energies},
                    {"subset", c.subset}, {"lr", c.lr}};
        m_grapl.emplace(std::move(c));
    }

    const options& m_o;
    json m_params;
    bool m_reference = false;
    std::optional<ts::methods::kim2020<B>> m_kim;
    std::optional<ts::methods::kanezaki2018<B>> m_kanezaki;
    std::optional<ts::methods::azad2025<B>> m_azad;
    std::optional<ts::methods::grapl<B>> m_grapl;
    ts::slic::config m_slic{};
    ts::felzenszwalb::config m_fz{};
};

/// Progress on stderr: an updating line on a terminal, a line every 100 steps otherwise.
class progress_printer {
public:
    progress_printer(bool quiet) : m_quiet(quiet), m_tty(isatty(fileno(stderr)) != 0) {}
    void set_prefix(std::string p) { m_prefix = std::move(p); }
    ts::pipeline::progress_fn callback() {
        if (m_quiet) return {};
        return [this](std::string_view stage, ts::index_t step, ts::index_t total, std::string_view msg) {
            if (!m_tty && step % 100 != 0 && step != total) return;
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
};

/// Rough peak memory of one run, in bytes, from measurements at 481x321 (docs/methods.md,
/// "Memory"): the DFC family keeps about 41 bytes per pixel and response channel, azad2025 about
/// 6 KB per pixel, GraPL about 840 bytes per pixel of its square working image.
double estimated_bytes(const options& o, ts::index_t width, ts::index_t height) {
    const double px = static_cast<double>(width) * static_cast<double>(height);
    const double q = o.channels > 0 ? static_cast<double>(o.channels) : 100.0;
    if (o.method == "kim2020" || o.method == "kanezaki2018") return px * (250.0 + 41.0 * q);
    if (o.method == "azad2025") return px * (4800.0 + 12.0 * q);
    if (o.method == "grapl") {
        const double grid = o.grapl_grid > 0 ? static_cast<double>(o.grapl_grid) : 32.0;
        const double side = std::ceil(static_cast<double>(std::max(width, height)) / grid) * grid;
        return side * side * 840.0 + px * 16.0;
    }
    return px * 150.0;  // slic, felzenszwalb
}

/// Refuses an image whose run would not fit in this machine's memory (it would otherwise be
/// killed by the kernel part-way, with no message).
void check_fits_in_memory(const options& o, const fs::path& file) {
    const auto size = ts::io::read_image_size(file);
    const double need = estimated_bytes(o, size.width, size.height);
    const double have = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
    ts::expects(have <= 0 || need <= have, program, "'", file.string(), "' (", size.width, "x", size.height,
                ") needs about ", std::llround(need / 1e9), " GB for ", o.method, "; this machine has ",
                std::llround(have / 1e9), " GB. Downscale the image first");
}

template <class B>
int segment_all(const options& o) {
    bool any_folder = false;
    std::vector<fs::path> files;
    if (!o.inputs.empty()) files = collect_inputs(o.inputs, any_folder);
    const bool demo = files.empty();
    const bool many = any_folder || files.size() > 1;
    ts::expects(!demo || o.reference_dir.empty(), program, "--reference-dir needs input images to apply the network to");

    // Refuse to overwrite before doing any work.
    std::vector<std::string> stems;
    for (const auto& f : files) stems.push_back(f.stem().string());
    if (demo) stems.push_back("demo");
    for (const auto& [target, suffix] : {std::pair{o.out, std::string()}, std::pair{o.overlay, std::string("_overlay")}}) {
        if (target.empty()) continue;
        if (many) {
            ts::expects(!fs::exists(target) || fs::is_directory(target), program, "with several inputs, '", target,
                        "' must be a folder");
            fs::create_directories(target);
        }
        for (const auto& st : stems) check_writable(output_path(target, many, st, suffix), o.force);
    }
    if (!o.json_path.empty()) check_writable(o.json_path, o.force);

    progress_printer printer(o.quiet);
    runner<B> run(o);
    json report = {{"tessel_version", TESSEL_VERSION_STRING}, {"method", o.method}, {"seed", o.seed},
                   {"backend", B::name}, {"threads", ts::num_threads(B{})}, {"images", json::array()}};
    if (run.reference_mode()) {
        printer.line("training on the reference images in " + o.reference_dir);
        run.fit_reference(printer.callback());
    }
    const std::size_t n = demo ? 1 : files.size();
    for (std::size_t i = 0; i < n; ++i) {
        const std::string name = demo ? "built-in demo image" : files[i].string();
        if (!demo) check_fits_in_memory(o, files[i]);
        const ts::image<std::uint8_t> img = demo ? demo_image() : ts::io::read_image(files[i]);
        printer.set_prefix("[" + std::to_string(i + 1) + "/" + std::to_string(n) + "] " + name + ":");
        result r = run.run(img, printer.callback());
        if (!o.out.empty()) ts::io::write_label_png(output_path(o.out, many, stems[i], ""), r.labels);
        if (!o.overlay.empty()) {
            const auto pic = o.overlay_style == "blend" ? ts::io::blend_overlay(img, r.labels)
                             : o.overlay_style == "colour" ? ts::io::colorize(r.labels)
                                                           : ts::io::boundary_overlay(img, r.labels);
            ts::io::write_png(output_path(o.overlay, many, stems[i], "_overlay"), pic);
        }
        json entry = {{"input", name}, {"width", img.width()}, {"height", img.height()},
                      {"segments", r.info.num_segments}, {"iterations", r.info.iterations},
                      {"seconds", r.info.seconds}, {"values", r.info.values}, {"parameters", r.parameters}};
        report["images"].push_back(entry);
        char buf[256];
        std::snprintf(buf, sizeof buf, "[%zu/%zu] %s: %lld segments, %lld iterations, %.2f s", i + 1, n, name.c_str(),
                      static_cast<long long>(r.info.num_segments), static_cast<long long>(r.info.iterations),
                      r.info.seconds["total"]);
        printer.line(buf);
    }
    if (!o.json_path.empty()) {
        std::ofstream f(o.json_path);
        ts::expects(static_cast<bool>(f), program, "cannot open '", o.json_path, "' for writing");
        f << report.dump(2) << "\n";
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    CLI::App app{"tessel-segment: unsupervised image segmentation of photos with the methods of tessel.\n"
                 "With no INPUT, segments a built-in demo image generated in code."};
    app.add_option("inputs", o.inputs, "Image files (PNG, JPEG, BMP...) or folders of images");
    app.add_option("-m,--method", o.method, "Method")
        ->check(CLI::IsMember({"kim2020", "kanezaki2018", "azad2025", "grapl", "slic", "felzenszwalb"}))
        ->capture_default_str();
    app.add_option("--seed", o.seed, "Seed of every random choice (weights, sampling)")->capture_default_str();
    app.add_option("-o,--out", o.out, "Label map PNG (a folder when there are several inputs)");
    app.add_option("--overlay", o.overlay, "Picture of the segmentation PNG (a folder when there are several inputs)");
    app.add_option("--overlay-style", o.overlay_style, "boundary: boundaries on the photo; blend: colours blended; "
                                                       "colour: one colour per segment")
        ->check(CLI::IsMember({"boundary", "blend", "colour"}))
        ->capture_default_str();
    app.add_option("--json", o.json_path, "Report: parameters, seed, segment counts, iterations, timings");
    app.add_flag("-f,--force", o.force, "Overwrite existing output files");
    app.add_flag("-q,--quiet", o.quiet, "No progress on stderr");
    app.add_option("--threads", o.threads, "CPU threads for cpu_omp (default: OpenMP's)")->check(integer_in(1, 1024));
    app.add_option("--backend", o.backend, "Backend")->check(CLI::IsMember({"cpu_omp", "cpu_serial"}))->capture_default_str();

    auto* dfc = app.add_option_group("kim2020 / kanezaki2018 / azad2025",
                                     "Self-training options (defaults are each method's own; see docs/methods.md)");
    dfc->add_option("--max-iter", o.max_iter, "Maximum training iterations (kim2020, kanezaki2018: 1000; azad2025: 150)")
        ->check(non_negative_integer);
    dfc->add_option("--min-labels", o.min_labels, "Stop once this many labels or fewer remain (default 3)")
        ->check(non_negative_integer);
    dfc->add_option("--channels", o.channels, "Response channels q, an upper bound on the segment count (default 100)")
        ->check(integer_in(2, 4096));
    dfc->add_option("--conv-blocks", o.conv_blocks, "Conv blocks M (kim2020, kanezaki2018; default 2) or Inception 3b "
                                                    "blocks (azad2025; default 2)")
        ->check(integer_in(1, 64));
    dfc->add_option("--lr", o.lr, "SGD learning rate (default 0.1)")->check(positive_real);
    dfc->add_option("--momentum", o.momentum, "SGD momentum (default 0.9)")->check(real_in(0, 1, false, "in [0, 1]"));
    dfc->add_option("--continuity-weight", o.continuity, "Weight mu of the spatial continuity loss (kim2020: 1, "
                                                         "reference mode: 5; azad2025: 1; kanezaki2018: 0)")
        ->check(non_negative_real);
    dfc->add_option("--similarity-weight", o.similarity, "Weight of the cross-entropy on pseudo-labels (default 1)")
        ->check(non_negative_real);
    dfc->add_option("--scribble", o.scribble, "kim2020 scribble mode: 8-bit PNG of class ids, 255 = unlabelled")
        ->check(CLI::ExistingFile);
    dfc->add_option("--scribble-weight", o.scribble_weight, "Weight of the scribble cross-entropy (default 0.5)")
        ->check(non_negative_real);
    dfc->add_flag("--label-from-last-iteration", o.last_iteration_labels,
                  "Output the last training labelling instead of a fresh forward pass");
    dfc->add_flag("--bgr-input", o.bgr_input, "kim2020: feed B,G,R as the authors' OpenCV reader does");
    dfc->add_option("--reference-dir", o.reference_dir, "kim2020 reference mode: train once on the images of this "
                                                        "folder, then apply the network to the inputs")
        ->check(CLI::ExistingDirectory);
    dfc->add_option("--ref-size", o.ref_size, "Reference mode training size (default 224)")->check(integer_in(8, 4096));
    dfc->add_option("--ref-updates", o.ref_updates, "Reference mode updates per batch (default 1000)")
        ->check(integer_in(1, 1000000));
    dfc->add_option("--ref-batch", o.ref_batch, "Reference mode batch size (default 1)")->check(integer_in(1, 1024));
    dfc->add_flag("--eval-bn", o.eval_bn, "Reference mode: use running BN statistics on new images");
    dfc->add_flag("--stem-relu-before-bn", o.stem_relu_before_bn, "azad2025: the code's stem order (conv-ReLU-BN)");
    dfc->add_option("--init", o.init, "azad2025 weight initialisation (default xavier)")
        ->check(CLI::IsMember({"xavier", "pytorch"}));
    dfc->add_flag("--slic-on-bgr", o.slic_on_bgr, "kanezaki2018: SLIC on swapped channels, as the authors' code");

    auto* gr = app.add_option_group("grapl", "GraPL options (defaults: METHODS.md 5, docs/grapl.md)");
    gr->add_option("--rounds", o.grapl_rounds, "Training rounds (default 4)")->check(integer_in(1, 1000));
    gr->add_option("--k0", o.grapl_k0, "Initial segments K0 (default 14)")->check(integer_in(2, 100000));
    gr->add_option("--grid", o.grapl_grid, "Patch grid d (default 32)")->check(integer_in(1, 4096));
    gr->add_option("--lambda", o.grapl_lambda, "Potts weight (default 64)")->check(non_negative_real);
    gr->add_option("--mu", o.grapl_mu, "Continuity weight (default 3)")->check(non_negative_real);
    gr->add_option("--solver", o.grapl_solver, "Graph-cut moves (default swap)")->check(CLI::IsMember({"swap", "expansion"}));
    gr->add_option("--initialiser", o.grapl_initialiser, "Initial labels (default slic)")
        ->check(CLI::IsMember({"slic", "random", "knn", "kmeans"}));
    gr->add_option("--affinity", o.grapl_affinity, "Graph affinities (default colour)")
        ->check(CLI::IsMember({"colour", "raw_colour", "position", "uniform4"}));
    gr->add_option("--epoch-schedule", o.grapl_schedule, "Steps per round: paper 40,32,22,12 or code 40,32,22,19")
        ->check(CLI::IsMember({"paper", "code"}));
    gr->add_flag("--hard-initial-labels", o.grapl_hard_labels, "Majority patch labels (code) instead of soft ones");
    gr->add_flag("--early-stop-on-total-loss", o.grapl_total_loss_stop, "Round-0 stop on CE + mu C (code) instead of CE");
    gr->add_flag("--cold-start", o.grapl_cold_start, "Re-initialise the network after every graph step");
    gr->add_flag("--float-energies", o.grapl_float_energies, "Skip pyGCO's integer conversion of the energies");

    auto* sp = app.add_option_group("slic / felzenszwalb / kanezaki2018 superpixels");
    sp->add_option("--n-segments", o.n_segments, "SLIC segments (slic: 100; kanezaki2018: 10000)")
        ->check(integer_in(1, 100000000));
    sp->add_option("--compactness", o.compactness, "SLIC compactness (slic: 10; kanezaki2018: 100)")
        ->check(positive_real);
    sp->add_option("--sigma", o.sigma, "Gaussian pre-smoothing sigma (slic: 0; felzenszwalb: 0.8)")
        ->check(non_negative_real);
    sp->add_flag("--slic-zero", o.slic_zero, "SLIC-zero (adaptive compactness)");
    sp->add_option("--scale", o.scale, "Felzenszwalb scale (default 1)")->check(positive_real);
    sp->add_option("--min-size", o.min_size, "Felzenszwalb minimum segment size (default 20)")
        ->check(non_negative_integer);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help
        std::fprintf(stderr, "%s: error: %s (see --help)\n", program, e.what());
        return e.get_exit_code();
    }
    try {
        if (o.threads > 0) omp_set_num_threads(o.threads);
        return o.backend == "cpu_serial" ? segment_all<ts::cpu_serial>(o) : segment_all<ts::cpu_omp>(o);
    } catch (const std::exception& e) {
        // The tool's own checks name it as their origin already; library errors name their function.
        std::string_view what = e.what();
        const std::string own = std::string(program) + ": ";
        if (what.substr(0, own.size()) == own) what.remove_prefix(own.size());
        std::fprintf(stderr, "%s: error: %.*s\n", program, static_cast<int>(what.size()), what.data());
        return 1;
    }
}
