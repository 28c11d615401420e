// unseggnet_bench: one 224 x 224 image through UnSegGNet on cpu_omp with a seeded *random*
// DINO ViT-S/8 (no pretrained weights exist on this machine; the time does not depend on the
// weights' values). One JSON line:
//   {"bench":"unseggnet_224","seconds":...,"vit_forward_seconds":...,"graph_seconds":...,
//    "gcn_train_seconds":...,"epochs":100,"tokens":3025,"peak_rss_mb":...,"weights":"random"}
// seconds is the whole run (features, graph, training, mask). No peer runs: PyTorch Geometric's
// dense path is not installed here (its CPU peer would need torch_sparse / torch_scatter).
// Usage: unseggnet_bench [image (default: first ecssd sample, else a synthetic picture)] [epochs]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include <tessel/io/image.hpp>
#include <tessel/methods/unseggnet.hpp>

#include "args.hpp"
#include "support/synthetic.hpp"

namespace ts = tessel;

int main(int argc, char** argv) {
    ts::bench::handle_help(argc, argv, "usage: unseggnet_bench [image (\"\" = first ECSSD sample, else a synthetic picture)] [epochs (default 100)]");
    std::string name = "synthetic 300x200";
    ts::image<std::uint8_t> img = ts::testing::make_shapes(300, 200, 6, 1).img;
    if (argc > 1 && *argv[1]) {
        name = argv[1];
        img = ts::io::read_image(argv[1], 3);
    } else {
        const std::filesystem::path dir = std::filesystem::path(TESSEL_BENCH_DATA_DIR) / "ecssd";
        if (std::filesystem::exists(dir))
            for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
                if (e.path().extension() == ".jpg") {
                    name = e.path().string();
                    img = ts::io::read_image(e.path().string(), 3);
                    break;
                }
    }
    const ts::index_t epochs = ts::bench::int_arg(argc, argv, 2, 100, 1, 1000000, "epochs");

    ts::rng gen(0);
    const auto w = ts::nn::random_vit({}, gen);
    const std::string path = (std::filesystem::temp_directory_path() / "tessel_unseggnet_bench_vit.safetensors").string();
    {
        const auto m = ts::nn::vit_to_weight_map(w);
        ts::io::write_safetensors(path, m.tensors());
    }
    ts::methods::unseggnet_config c;
    c.features.weights = path;
    c.epochs = epochs;
    ts::methods::unseggnet<ts::cpu_omp> method(c);
    const auto t0 = std::chrono::steady_clock::now();
    const auto mask = method.run(img, ts::seed{0});
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto& r = method.last_report();
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    std::printf("{\"bench\":\"unseggnet_224\",\"seconds\":%.3f,\"vit_forward_seconds\":%.3f,\"graph_seconds\":%.3f,"
                "\"gcn_train_seconds\":%.3f,\"epochs\":%lld,\"tokens\":%lld,\"graph_density\":%.4f,\"peak_rss_mb\":%.1f,"
                "\"foreground_fraction\":%.3f,\"weights\":\"random (seeded truncated normal, std 0.02)\",\"image\":\"%s\"}\n",
                total, r.seconds.at("features"), r.seconds.at("graph"), r.seconds.at("self_train"),
                static_cast<long long>(epochs), static_cast<long long>(r.values.at("grid") * r.values.at("grid")),
                r.values.at("graph_density"), static_cast<double>(ru.ru_maxrss) / 1024.0,
                static_cast<double>(std::count(mask.values().begin(), mask.values().end(), 1)) /
                    static_cast<double>(mask.size()),
                name.c_str());
    std::filesystem::remove(path);
    return 0;
}
