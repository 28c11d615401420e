// methods_bench: time per training iteration and peak memory of the DFC-family presets and PiCNet
// at 481x321 on cpu_omp. One JSON line per preset:
//   {"bench":"kim2020_iteration","seconds":...,"seconds_per_iteration":...,"peak_rss_mb":...,...}
// Each preset runs in a forked child so that its peak resident memory is its own. After kim2020,
// its PyTorch peer (../shared/peers/kim2020_torch.py, the same iteration at the same image size
// and thread count) runs as a child process and the line adds ratio_to_pytorch. PiCNet has no
// authors' code; its line adds ratio_to_kim2020, against the kim2020 line of the same run.
// Usage: methods_bench [iterations (default 6)] [image (default: first BSDS500 val image; "" for it)]
//                      [only: run just the presets whose bench name contains this, e.g. azad2025]
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
#include <tessel/methods/azad2025.hpp>
#include <tessel/methods/kim2020.hpp>
#include <tessel/methods/picnet.hpp>

#include "args.hpp"
#include "peer.hpp"
#include "support/synthetic.hpp"

namespace ts = tessel;

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

/// Seconds per iteration of the median of `iterations` timed steps after 2 warm-up steps.
template <class Net>
double time_iterations(const typename Net::config& net_cfg, const ts::image<std::uint8_t>& img, int iterations) {
    ts::rng init(0);
    ts::stages::self_train_options opt;
    opt.min_labels = 0;
    ts::stages::dfc_trainer<Net, ts::cpu_omp> trainer(net_cfg, init, opt);
    const auto x = ts::to_nchw<ts::cpu_omp>(img);
    ts::pipeline::state<ts::cpu_omp> st;
    ts::stages::no_refinement none;
    for (int i = 0; i < 2; ++i) trainer.step(x, st, none);
    std::vector<double> t;
    for (int i = 0; i < iterations; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        trainer.step(x, st, none);
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

/// The same for PiCNet's full step (network, superpixel-majority labels, all three losses), with
/// SLIC superpixels computed once outside the timing, as the preset does.
double time_picnet_iterations(const ts::image<std::uint8_t>& img, int iterations) {
    const ts::methods::picnet_config cfg;
    ts::rng init(0);
    ts::stages::self_train_options opt;
    opt.min_labels = 0;
    ts::stages::self_trainer<ts::methods::picnet_network, ts::cpu_omp, ts::methods::picnet_loss> trainer(
        cfg.net, init, opt, cfg.loss, cfg.optim);
    ts::pipeline::state<ts::cpu_omp> st;
    st.input = &img;
    st.input_tensor = ts::to_nchw<ts::cpu_omp>(img);
    st.superpixels = ts::slic{cfg.superpixels}(ts::cpu_omp{}, img);
    ts::stages::superpixel_majority rule;
    for (int i = 0; i < 2; ++i) trainer.step(st.input_tensor, st, rule);
    std::vector<double> t;
    for (int i = 0; i < iterations; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        trainer.step(st.input_tensor, st, rule);
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

/// Runs fn in a child process; returns its result and the child's peak RSS in MB.
template <class F>
bool in_child(F fn, double& seconds, double& peak_mb) {
    int fds[2];
    if (pipe(fds) != 0) return false;
    const pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        const double s = fn();
        if (write(fds[1], &s, sizeof s) != static_cast<ssize_t>(sizeof s)) _exit(2);
        _exit(0);
    }
    close(fds[1]);
    int status = 0;
    rusage ru{};
    wait4(pid, &status, 0, &ru);
    const bool ok = read(fds[0], &seconds, sizeof seconds) == static_cast<ssize_t>(sizeof seconds);
    close(fds[0]);
    peak_mb = static_cast<double>(ru.ru_maxrss) / 1024.0;
    return ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

int main(int argc, char** argv) {
    ts::bench::handle_help(argc, argv, "usage: methods_bench [iterations (default 6)] [image (\"\" = first BSDS500 val image)] [only: presets whose bench name contains this, e.g. azad2025]");
    const int iterations = static_cast<int>(ts::bench::int_arg(argc, argv, 1, 6, 1, 100000, "iterations"));
    std::string name;
    const auto img = bench_image(argc > 2 ? argv[2] : "", name);
    const std::string only = argc > 3 ? argv[3] : "";
    const int threads = ts::num_threads(ts::cpu_omp{});

    // One line per preset; the authors' PyTorch time per iteration is METHODS.md §11's.
    // peer_script: a script in ../shared/peers timing the same iteration, or nullptr.
    double kim2020_seconds = 0;  // for PiCNet's ratio_to_kim2020
    auto report = [&](const char* bench, double authors_seconds, const char* peer_script, auto time_fn) {
        if (std::string(bench).find(only) == std::string::npos) return;
        double s = 0, mb = 0;
        if (in_child(time_fn, s, mb)) {
            if (std::string(bench) == "kim2020_iteration") kim2020_seconds = s;
            if (authors_seconds <= 0) {  // no authors' code: compare with kim2020 of this run
                std::printf("{\"bench\":\"%s\",\"seconds\":%.4f,\"seconds_per_iteration\":%.4f,\"peak_rss_mb\":%.1f,"
                            "\"width\":%lld,\"height\":%lld,\"threads\":%d,\"iterations_timed\":%d,\"image\":\"%s\"",
                            bench, s, s, mb, static_cast<long long>(img.width()), static_cast<long long>(img.height()),
                            threads, iterations, name.c_str());
                if (kim2020_seconds > 0)
                    std::printf(",\"kim2020_seconds_per_iteration\":%.4f,\"ratio_to_kim2020\":%.3f", kim2020_seconds,
                                s / kim2020_seconds);
                std::printf("}\n");
                std::fflush(stdout);
                return;
            }
            std::string peer_fields;
            if (peer_script) {
                const auto peer = ts::bench::run_peer(
                    std::string(TESSEL_BENCH_PEERS_DIR) + "/" + peer_script,
                    "--width " + std::to_string(img.width()) + " --height " + std::to_string(img.height()) +
                        " --threads " + std::to_string(threads),
                    "seconds_per_iteration");
                peer_fields = ts::bench::peer_fields(s, peer, "peer_seconds_per_iteration");
            }
            std::printf("{\"bench\":\"%s\",\"seconds\":%.4f,\"seconds_per_iteration\":%.4f,\"peak_rss_mb\":%.1f,"
                        "\"width\":%lld,\"height\":%lld,\"threads\":%d,\"iterations_timed\":%d,\"image\":\"%s\","
                        "\"reference_authors_pytorch_seconds\":%.2f,\"ratio_to_authors_pytorch\":%.3f%s}\n",
                        bench, s, s, mb, static_cast<long long>(img.width()), static_cast<long long>(img.height()),
                        threads, iterations, name.c_str(), authors_seconds, s / authors_seconds, peer_fields.c_str());
        } else
            std::printf("{\"bench\":\"%s\",\"error\":\"child failed\"}\n", bench);
        std::fflush(stdout);
    };
    report("kim2020_iteration", 2.22, "kim2020_torch.py", [&] {
        return time_iterations<ts::methods::dfc_network>(ts::methods::dfc_network_config(), img, iterations);
    });
    using azad_stem = ts::methods::azad_stem_paper;
    report("azad2025_iteration", 8.0, nullptr, [&] {
        return time_iterations<ts::methods::azad_network<azad_stem>>(ts::methods::azad_network_config<azad_stem>({}),
                                                                      img, iterations);
    });
    report("picnet_iteration", 0.0, nullptr, [&] { return time_picnet_iterations(img, iterations); });
    return 0;
}
