// tessel-train: trains the networks that tessel's methods load from model files.
//
//   tessel-train superae --images ../shared/data/bsds500/train --images ../shared/data/bsds500/val
//                        --out superae.tsl [--epochs 100] [--max-seconds 3600] [--resume]
//
// superae: stage 1 of Deep Superpixel Cut (methods/dsc.hpp, METHODS.md §7): the SuperAE trained
// with Adam (lr 1e-3), batches of 10 random 300x300 crops with a horizontal flip (p = 0.5), one
// crop per image per epoch, on the template reconstruction loss (Eq. 1-2, lambda = 1) against
// SLIC templates (n = 500, compactness 10, computed once per image on the whole image) or user
// label maps (--templates DIR, <id>.png). Every --checkpoint-every steps, at the time budget and
// at the end, a checkpoint (model, Adam moments, position) and the loss curve (JSON) are written;
// --resume continues from the checkpoint exactly (crops are drawn from a stream seeded by
// (seed, epoch, batch), so a resumed run repeats the uninterrupted one). Images are read from
// the given folders (*.jpg, *.png, sorted); a folder named "test" is refused (train only on
// train/val data). Existing outputs are not overwritten without --force.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tessel/io/image.hpp"
#include "tessel/io/model_file.hpp"
#include "tessel/loss/superpixel_reconstruction.hpp"
#include "tessel/methods/dsc.hpp"
#include "tessel/optim/adam.hpp"
#include "tessel/superpixel/slic.hpp"

namespace ts = tessel;
namespace fs = std::filesystem;
using json = nlohmann::json;
using B = ts::cpu_omp;

namespace {

constexpr const char* program = "tessel-train";

struct superae_options {
    std::vector<std::string> image_dirs;
    std::string out, checkpoint, loss_json, template_dir;
    ts::index_t epochs = 100, batch = 10, crop = 300, slic_segments = 500, checkpoint_every = 10, max_images = 0;
    double lr = 1e-3, lambda = 1.0, max_seconds = 0;
    bool template_mean_of_reconstruction = false, resume = false, force = false, quiet = false;
    std::uint64_t seed = 0;
};

struct sample {
    std::string id;
    ts::image<std::uint8_t> img;
    ts::label_map tmpl;
};

std::vector<fs::path> list_images(const std::vector<std::string>& dirs) {
    std::vector<fs::path> out;
    for (const auto& d : dirs) {
        const fs::path p(d);
        ts::expects(fs::is_directory(p), program, "--images '", d, "' is not a folder");
        const fs::path canon = fs::weakly_canonical(p);
        for (const auto& part : canon)
            ts::expects(part != "test", program, "--images '", d,
                        "' is a test split; the SuperAE is trained on train/val images only");
        std::vector<fs::path> here;
        for (const auto& e : fs::directory_iterator(p)) {
            const auto ext = e.path().extension().string();
            if (e.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png") &&
                e.path().stem().string().find("_gt") == std::string::npos)
                here.push_back(e.path());
        }
        std::sort(here.begin(), here.end());
        ts::expects(!here.empty(), program, "--images '", d, "' holds no .jpg or .png images");
        out.insert(out.end(), here.begin(), here.end());
    }
    return out;
}

/// The stream of crops of (epoch, batch): a resumed run draws the same crops.
ts::rng batch_rng(std::uint64_t seed, ts::index_t epoch, ts::index_t batch) {
    return ts::rng(seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(epoch) * 1000003ull +
                   static_cast<std::uint64_t>(batch) + 1);
}

void refuse_existing(const std::string& path, bool force, const char* what) {
    ts::expects(force || !fs::exists(path), program, "'", path, "' exists (", what, "); pass --force to overwrite it");
}

void write_text(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".partial";
    {
        std::ofstream f(tmp, std::ios::trunc);
        ts::expects(static_cast<bool>(f), program, "cannot write '", tmp, "'");
        f << text;
    }
    fs::rename(tmp, path);
}

int train_superae(const superae_options& o) {
    ts::expects(o.epochs >= 1 && o.batch >= 1 && o.crop >= 4 && o.crop % 4 == 0, program,
                "--epochs and --batch must be >= 1 and --crop a positive multiple of 4");
    const std::string ckpt = o.checkpoint.empty() ? o.out + ".ckpt" : o.checkpoint;
    const std::string curve = o.loss_json.empty() ? o.out + ".loss.json" : o.loss_json;
    if (!o.resume) {
        refuse_existing(o.out, o.force, "the model");
        refuse_existing(ckpt, o.force, "the checkpoint; pass --resume to continue from it");
        refuse_existing(curve, o.force, "the loss curve");
    } else {
        ts::expects(fs::exists(ckpt), program, "--resume: no checkpoint '", ckpt, "'");
        refuse_existing(o.out, o.force, "the model");
    }

    // Images and their templates.
    std::vector<fs::path> files = list_images(o.image_dirs);
    if (o.max_images > 0 && static_cast<ts::index_t>(files.size()) > o.max_images)
        files.resize(static_cast<std::size_t>(o.max_images));
    ts::expects(static_cast<ts::index_t>(files.size()) >= o.batch, program, "need at least --batch ", o.batch,
                " images, found ", files.size());
    std::vector<sample> data;
    const auto t_load = std::chrono::steady_clock::now();
    for (const auto& f : files) {
        sample s{f.stem().string(), ts::io::read_image(f), {}};
        ts::expects(s.img.width() >= o.crop && s.img.height() >= o.crop, program, "image '", f.string(), "' is ",
                    s.img.width(), "x", s.img.height(), ", smaller than the ", o.crop, "x", o.crop, " crop");
        if (!o.template_dir.empty()) {
            s.tmpl = ts::io::read_label_png(fs::path(o.template_dir) / (s.id + ".png"));
            ts::expects(s.tmpl.width() == s.img.width() && s.tmpl.height() == s.img.height(), program, "template of '",
                        s.id, "' is ", s.tmpl.width(), "x", s.tmpl.height(), ", the image ", s.img.width(), "x",
                        s.img.height());
        } else {
            s.tmpl = ts::slic{{.n_segments = o.slic_segments, .compactness = 10.0f}}(B{}, s.img);
        }
        data.push_back(std::move(s));
    }
    if (!o.quiet)
        std::fprintf(stderr, "%s: %zu images, templates ready in %.1f s\n", program, data.size(),
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count());

    // Network, optimiser, loss.
    ts::rng init(o.seed);
    ts::methods::superae_network::bind<B> net(ts::methods::superae_config(), init);
    ts::optim::adam::bind<B> adam(net.parameters(), {.lr = o.lr});
    const ts::loss::superpixel_reconstruction loss{.lambda = o.lambda,
                                                   .template_mean_of_reconstruction = o.template_mean_of_reconstruction};
    ts::nn::context<B> ctx;
    ctx.training = true;

    const ts::index_t per_epoch = static_cast<ts::index_t>(data.size()) / o.batch;
    ts::index_t epoch = 0, batch = 0, steps = 0;
    double trained_seconds = 0;
    json history = json::array();
    if (o.resume) {
        const auto c = ts::io::model_file::read(ckpt);
        ts::expects(c.meta("kind") == "superae-checkpoint", program, "'", ckpt, "' is not a SuperAE checkpoint");
        ts::methods::load_superae<B>(c, net);
        auto& m1 = adam.first_moments();
        auto& m2 = adam.second_moments();
        for (std::size_t k = 0; k < m1.size(); ++k) {
            c.load("adam/m/" + std::to_string(k), m1[k]);
            c.load("adam/v/" + std::to_string(k), m2[k]);
        }
        epoch = std::stoll(c.meta("epoch"));
        batch = std::stoll(c.meta("batch"));
        steps = std::stoll(c.meta("steps"));
        trained_seconds = std::stod(c.meta("seconds"));
        adam.set_steps(steps);
        ts::expects(std::stoull(c.meta("seed")) == o.seed && std::stoll(c.meta("batch_size")) == o.batch, program,
                    "--resume: the checkpoint was made with seed ", c.meta("seed"), " and batch ", c.meta("batch_size"),
                    "; give the same settings");
        if (fs::exists(curve)) {
            std::ifstream f(curve);
            history = json::parse(f).at("steps");
        }
        if (!o.quiet) std::fprintf(stderr, "%s: resumed at epoch %lld, batch %lld (%lld steps)\n", program,
                                   static_cast<long long>(epoch), static_cast<long long>(batch),
                                   static_cast<long long>(steps));
    }

    auto settings = [&](ts::io::model_file& m) {
        m.metadata["kind"] = "superae";
        m.metadata["epoch"] = std::to_string(epoch);
        m.metadata["batch"] = std::to_string(batch);
        m.metadata["steps"] = std::to_string(steps);
        m.metadata["seconds"] = std::to_string(trained_seconds);
        m.metadata["seed"] = std::to_string(o.seed);
        m.metadata["batch_size"] = std::to_string(o.batch);
        m.metadata["epochs"] = std::to_string(o.epochs);
        m.metadata["crop"] = std::to_string(o.crop);
        m.metadata["lr"] = std::to_string(o.lr);
        m.metadata["lambda"] = std::to_string(o.lambda);
        m.metadata["template"] = o.template_dir.empty() ? "slic n=" + std::to_string(o.slic_segments) : o.template_dir;
        m.metadata["template_mean_of_reconstruction"] = o.template_mean_of_reconstruction ? "true" : "false";
        m.metadata["images"] = std::to_string(data.size());
    };
    auto save_all = [&](bool final) {
        ts::io::model_file c;
        ts::methods::save_superae<B>(c, net);
        settings(c);
        c.metadata["kind"] = "superae-checkpoint";
        for (std::size_t k = 0; k < adam.first_moments().size(); ++k) {
            c.add("adam/m/" + std::to_string(k), adam.first_moments()[k]);
            c.add("adam/v/" + std::to_string(k), adam.second_moments()[k]);
        }
        c.save(ckpt);
        const double ips = trained_seconds > 0 ? static_cast<double>(steps * o.batch) / trained_seconds : 0;
        write_text(curve, json{{"steps", history}, {"images_per_second", ips}, {"epochs_done", epoch},
                               {"batches_per_epoch", per_epoch}, {"seconds", trained_seconds}}
                              .dump(1));
        if (final) {
            ts::io::model_file m;
            ts::methods::save_superae<B>(m, net);
            settings(m);
            m.metadata["complete"] = epoch >= o.epochs ? "true" : "false";
            m.save(o.out);
        }
    };

    const ts::index_t C = o.crop, plane = C * C;
    std::vector<float> xb(static_cast<std::size_t>(o.batch * 3 * plane));
    std::vector<ts::label_t> tb(static_cast<std::size_t>(o.batch * plane));
    ts::tensor<float, B> x, dr;
    ts::tensor<ts::label_t, B> t;
    const auto t0 = std::chrono::steady_clock::now();
    const double seconds_before = trained_seconds;
    bool out_of_time = false;
    for (; epoch < o.epochs && !out_of_time; ++epoch, batch = 0) {
        // The epoch's order: a permutation drawn from (seed, epoch).
        std::vector<std::size_t> order(data.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
        ts::rng perm = batch_rng(o.seed, epoch, -1);
        for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[perm.below(i)]);
        for (; batch < per_epoch; ++batch) {
            ts::rng gen = batch_rng(o.seed, epoch, batch);
            for (ts::index_t b = 0; b < o.batch; ++b) {
                const sample& s = data[order[static_cast<std::size_t>(batch * o.batch + b)]];
                const ts::index_t W = s.img.width(), H = s.img.height();
                const auto x0 = static_cast<ts::index_t>(gen.below(static_cast<std::uint64_t>(W - C + 1)));
                const auto y0 = static_cast<ts::index_t>(gen.below(static_cast<std::uint64_t>(H - C + 1)));
                const bool flip = gen.below(2) == 1;
                for (ts::index_t yy = 0; yy < C; ++yy)
                    for (ts::index_t xx = 0; xx < C; ++xx) {
                        const ts::index_t sx = x0 + (flip ? C - 1 - xx : xx), sy = y0 + yy;
                        for (ts::index_t c = 0; c < 3; ++c)
                            xb[static_cast<std::size_t>((b * 3 + c) * plane + yy * C + xx)] =
                                static_cast<float>(s.img(sx, sy, c)) / 255.0f;
                        tb[static_cast<std::size_t>(b * plane + yy * C + xx)] = s.tmpl(sx, sy);
                    }
            }
            x.assign(ts::shape{o.batch, 3, C, C}, xb.begin(), xb.end());
            t.assign(ts::shape{o.batch, C, C}, tb.begin(), tb.end());
            const auto ts0 = std::chrono::steady_clock::now();
            const ts::tensor<float, B>& r = net.forward(ctx, x);
            const double value = loss.value_and_grad(r, x, t, dr);
            ts::expects(std::isfinite(value), program, "the loss is ", value, " at epoch ", epoch, ", batch ", batch);
            (void)net.backward(ctx, dr);
            adam.step();
            ++steps;
            trained_seconds = seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const double step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - ts0).count();
            history.push_back({{"step", steps}, {"epoch", epoch}, {"loss", value}, {"seconds", trained_seconds}});
            if (!o.quiet)
                std::fprintf(stderr, "%s: epoch %lld/%lld batch %lld/%lld loss %.6f (%.2f images/s)\n", program,
                             static_cast<long long>(epoch + 1), static_cast<long long>(o.epochs),
                             static_cast<long long>(batch + 1), static_cast<long long>(per_epoch), value,
                             static_cast<double>(o.batch) / step_s);
            const bool budget = o.max_seconds > 0 &&
                                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() >= o.max_seconds;
            if (budget) {
                ++batch;
                if (batch == per_epoch) ++epoch, batch = 0;
                out_of_time = true;
                break;
            }
            if (o.checkpoint_every > 0 && steps % o.checkpoint_every == 0) {
                ++batch;  // the position after this step
                save_all(false);
                --batch;
            }
        }
        if (out_of_time) break;
    }
    save_all(true);
    const double ips = trained_seconds > 0 ? static_cast<double>(steps * o.batch) / trained_seconds : 0;
    std::printf("%s\n", json{{"program", program},
                             {"model", o.out},
                             {"steps", steps},
                             {"epochs_done", epoch},
                             {"stopped_by_time_budget", out_of_time},
                             {"seconds", trained_seconds},
                             {"images_per_second", ips},
                             {"final_loss", history.empty() ? 0.0 : history.back().at("loss").get<double>()}}
                            .dump()
                            .c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"tessel-train: train the networks of tessel's methods (model files for --model)"};
    app.require_subcommand(1);
    superae_options o;
    CLI::App* sae = app.add_subcommand("superae", "Deep Superpixel Cut stage 1: the SuperAE (METHODS.md §7)");
    sae->add_option("--images", o.image_dirs, "Folder of training images (repeatable): BSDS500 train and val")->required();
    sae->add_option("--out", o.out, "Model file to write")->required();
    sae->add_option("--epochs", o.epochs, "Epochs (paper: 100)")->check(CLI::PositiveNumber);
    sae->add_option("--batch", o.batch, "Batch size (paper: 10)")->check(CLI::PositiveNumber);
    sae->add_option("--crop", o.crop, "Random crop side (paper: 300; a multiple of 4)")->check(CLI::PositiveNumber);
    sae->add_option("--lr", o.lr, "Adam learning rate (paper: 1e-3)")->check(CLI::PositiveNumber);
    sae->add_option("--lambda", o.lambda, "Weight of the template term (paper: 1)")->check(CLI::NonNegativeNumber);
    sae->add_flag("--template-mean-of-reconstruction", o.template_mean_of_reconstruction,
                  "Template means of the reconstruction (with gradient) instead of the input");
    sae->add_option("--templates", o.template_dir, "Folder of template label maps <id>.png (default: SLIC)")
        ->check(CLI::ExistingDirectory);
    sae->add_option("--slic-segments", o.slic_segments, "SLIC template segments (default 500)")->check(CLI::PositiveNumber);
    sae->add_option("--seed", o.seed, "Seed of the initial weights, the order and the crops");
    sae->add_option("--checkpoint", o.checkpoint, "Checkpoint file (default: <out>.ckpt)");
    sae->add_option("--checkpoint-every", o.checkpoint_every, "Steps between checkpoints (0: only at the end)")
        ->check(CLI::NonNegativeNumber);
    sae->add_option("--loss-json", o.loss_json, "Loss curve file (default: <out>.loss.json)");
    sae->add_option("--max-seconds", o.max_seconds, "Stop after this much training time (0: no budget)")
        ->check(CLI::NonNegativeNumber);
    sae->add_option("--max-images", o.max_images, "Use only the first N images (0: all)")->check(CLI::NonNegativeNumber);
    sae->add_flag("--resume", o.resume, "Continue from the checkpoint");
    sae->add_flag("-f,--force", o.force, "Overwrite existing outputs");
    sae->add_flag("-q,--quiet", o.quiet, "No progress lines");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        if (*sae) return train_superae(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: error: %s\n", program, e.what());
        return 1;
    }
    return 0;
}
