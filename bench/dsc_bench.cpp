// dsc_bench: Deep Superpixel Cut (methods/dsc.hpp) on cpu_omp. Two JSON lines:
//   {"bench":"dsc_stage2_image","seconds":...,"seconds_per_image":...,"peak_rss_mb":...,
//    "share_superae_reconstruction":...,"share_superpixels":...,"share_self_train":...,...}
//     one stage-2 run (M = 100, T iterations, default 128) on a 481x321 image, in a forked child
//     so that the peak resident memory is its own;
//   {"bench":"superae_training","seconds":...,"images_per_second":...,"hours_for_100_epochs_bsds_trainval":...}
//     the median of a few Adam steps of the SuperAE on batches of 10 random 300x300 crops (the
//     first step is a warm-up), and what 100 epochs over 300 (train + val) and over 500 images
//     (the paper's whole BSDS500) would take at that rate.
// No PyTorch peer: the method has no public implementation to compare with.
// Usage: dsc_bench [T (default 128)] [image (\"\" = first BSDS500 val image)] [model file (\"\" = untrained)]
//                  [training steps timed (default 3)]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <tessel/io/image.hpp>
#include <tessel/loss/superpixel_reconstruction.hpp>
#include <tessel/methods/dsc.hpp>
#include <tessel/optim/adam.hpp>

#include "args.hpp"
#include "support/synthetic.hpp"

namespace ts = tessel;
using B = ts::cpu_omp;

namespace {

ts::image<std::uint8_t> bench_image(const std::string& arg, std::string& name) {
    if (!arg.empty()) {
        name = arg;
        return ts::io::read_image(arg);
    }
    const std::filesystem::path val = std::filesystem::path(TESSEL_BENCH_DATA_DIR) / "bsds500" / "val";
    std::ifstream index(val / "index.txt");
    std::string id;
    if (index >> id) {
        name = "bsds500/val/" + id + ".jpg";
        return ts::io::read_image(val / (id + ".jpg"));
    }
    name = "synthetic 481x321 (BSDS500 not found)";
    return ts::testing::make_shapes(481, 321, 12, 1).img;
}

struct child_result {
    double seconds = 0, reconstruction = 0, superpixels = 0, self_train = 0, segments = 0, superpixel_count = 0;
};

template <class F>
bool in_child(F fn, child_result& r, double& peak_mb) {
    int fds[2];
    if (pipe(fds) != 0) return false;
    const pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        const child_result s = fn();
        if (write(fds[1], &s, sizeof s) != static_cast<ssize_t>(sizeof s)) _exit(2);
        _exit(0);
    }
    close(fds[1]);
    int status = 0;
    rusage ru{};
    wait4(pid, &status, 0, &ru);
    const bool ok = read(fds[0], &r, sizeof r) == static_cast<ssize_t>(sizeof r);
    close(fds[0]);
    peak_mb = static_cast<double>(ru.ru_maxrss) / 1024.0;
    return ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

int main(int argc, char** argv) {
    ts::bench::handle_help(argc, argv, "usage: dsc_bench [T (default 128)] [image (\"\" = first BSDS500 val image)] [model file (\"\" = untrained)] [training steps timed (default 3)]");
    const int T = static_cast<int>(ts::bench::int_arg(argc, argv, 1, 128, 0, 100000, "T"));
    std::string name;
    const auto img = bench_image(argc > 2 ? argv[2] : "", name);
    const std::string model = argc > 3 ? argv[3] : "";
    const int train_steps = static_cast<int>(ts::bench::int_arg(argc, argv, 4, 3, 1, 100000, "training steps"));
    const int threads = ts::num_threads(B{});

    child_result r;
    double mb = 0;
    const bool ok = in_child(
        [&] {
            ts::methods::dsc_config c;
            c.model = model;
            c.untrained_superae = model.empty();
            c.train.max_iterations = T;
            ts::methods::dsc<B> m(c);
            const auto t0 = std::chrono::steady_clock::now();
            const auto out = m.run(img, ts::seed{0});
            child_result res;
            res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const auto& s = m.last_report().seconds;
            res.reconstruction = s.count("superae_reconstruction") ? s.at("superae_reconstruction") : 0;
            res.superpixels = s.count("superpixels") ? s.at("superpixels") : 0;
            res.self_train = s.count("self_train") ? s.at("self_train") : 0;
            res.segments = static_cast<double>(out.count_labels());
            res.superpixel_count = m.last_report().values.at("superpixels");
            return res;
        },
        r, mb);
    if (ok)
        std::printf("{\"bench\":\"dsc_stage2_image\",\"seconds\":%.3f,\"seconds_per_image\":%.3f,\"peak_rss_mb\":%.1f,"
                    "\"share_superae_reconstruction\":%.4f,\"share_superpixels\":%.4f,\"share_self_train\":%.4f,"
                    "\"seconds_per_iteration\":%.4f,\"iterations\":%d,\"superpixels\":%.0f,\"segments\":%.0f,"
                    "\"width\":%lld,\"height\":%lld,\"threads\":%d,\"image\":\"%s\",\"model\":\"%s\"}\n",
                    r.seconds, r.seconds, mb, r.reconstruction / r.seconds, r.superpixels / r.seconds,
                    r.self_train / r.seconds, T > 0 ? r.self_train / T : 0.0, T, r.superpixel_count, r.segments,
                    static_cast<long long>(img.width()), static_cast<long long>(img.height()), threads, name.c_str(),
                    model.empty() ? "untrained" : model.c_str());
    else
        std::printf("{\"bench\":\"dsc_stage2_image\",\"error\":\"child failed\"}\n");
    std::fflush(stdout);

    // SuperAE training throughput: batches of 10 crops of 300 x 300 from the bench image.
    const ts::index_t N = 10, C = 300;
    ts::rng init(0), gen(1);
    ts::methods::superae_network::bind<B> net(ts::methods::superae_config(), init);
    ts::optim::adam::bind<B> adam(net.parameters(), {});
    const ts::label_map tmpl = ts::slic{{.n_segments = 500, .compactness = 10.0f}}(B{}, img);
    const ts::loss::superpixel_reconstruction loss{};
    ts::nn::context<B> ctx;
    std::vector<double> times;
    ts::tensor<float, B> dr;
    for (int step = 0; step <= train_steps; ++step) {
        std::vector<float> xb(static_cast<std::size_t>(N * 3 * C * C));
        std::vector<ts::label_t> tb(static_cast<std::size_t>(N * C * C));
        for (ts::index_t b = 0; b < N; ++b) {
            const auto x0 = static_cast<ts::index_t>(gen.below(static_cast<std::uint64_t>(img.width() - C + 1)));
            const auto y0 = static_cast<ts::index_t>(gen.below(static_cast<std::uint64_t>(img.height() - C + 1)));
            for (ts::index_t y = 0; y < C; ++y)
                for (ts::index_t x = 0; x < C; ++x) {
                    for (ts::index_t c = 0; c < 3; ++c)
                        xb[static_cast<std::size_t>(((b * 3 + c) * C + y) * C + x)] =
                            static_cast<float>(img(x0 + x, y0 + y, c)) / 255.0f;
                    tb[static_cast<std::size_t>((b * C + y) * C + x)] = tmpl(x0 + x, y0 + y);
                }
        }
        ts::tensor<float, B> xt;
        ts::tensor<ts::label_t, B> tt;
        xt.assign(ts::shape{N, 3, C, C}, xb.begin(), xb.end());
        tt.assign(ts::shape{N, C, C}, tb.begin(), tb.end());
        const auto t0 = std::chrono::steady_clock::now();
        const auto& rec = net.forward(ctx, xt);
        (void)loss.value_and_grad(rec, xt, tt, dr);
        (void)net.backward(ctx, dr);
        adam.step();
        if (step > 0) times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(times.begin(), times.end());
    const double s = times[times.size() / 2], ips = static_cast<double>(N) / s;
    std::printf("{\"bench\":\"superae_training\",\"seconds\":%.3f,\"seconds_per_step\":%.3f,\"images_per_second\":%.3f,"
                "\"batch\":%lld,\"crop\":%lld,\"steps_timed\":%d,\"threads\":%d,"
                "\"hours_for_100_epochs_bsds_trainval\":%.2f,\"hours_for_100_epochs_bsds_all\":%.2f}\n",
                s, s, ips, static_cast<long long>(N), static_cast<long long>(C), train_steps, threads,
                300.0 * 100.0 / ips / 3600.0, 500.0 * 100.0 / ips / 3600.0);
    return ok ? 0 : 1;
}
