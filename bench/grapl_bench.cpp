// grapl_bench: the whole GraPL preset (methods/grapl.hpp, defaults) on one 481 x 321 BSDS500
// image, cpu_omp with 2 threads. Prints one JSON line with the time per image and the shares of
// CNN training, graph cuts and dense inference. The first id of val/index.txt is used; without
// the data folder a synthetic 481 x 321 scene stands in (and the line says so). Then the PyTorch
// peer (../shared/peers/grapl_torch.py: the same CNN training and dense predictions, about 95% of
// the work timed here) runs with the class count the preset chose for this image, and the line
// adds ratio_to_pytorch = seconds / the peer's seconds_per_image.
#include <omp.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "args.hpp"
#include "peer.hpp"
#include "support/synthetic.hpp"
#include "tessel/io/image.hpp"
#include "tessel/methods/grapl.hpp"

namespace ts = tessel;

int main(int argc, char** argv) {
    omp_set_num_threads(2);
    ts::bench::handle_help(argc, argv, "usage: grapl_bench [repeats (default 2)]: GraPL on the first BSDS500 val image, then its PyTorch peer");
    const int repeats = static_cast<int>(ts::bench::int_arg(argc, argv, 1, 2, 1, 1000, "repeats"));
    const std::string dir = std::string(TESSEL_BENCH_DATA_DIR) + "/bsds500/val";
    std::string source = "synthetic";
    std::string note;
    ts::image<std::uint8_t> img;
    std::ifstream index(dir + "/index.txt");
    std::string id;
    if (index >> id) {
        img = ts::io::read_image(dir + "/" + id + ".jpg");
        source = id + ".jpg";
    } else {
        img = ts::testing::make_shapes(481, 321, 12, 1).img;
        note = ",\"note\":\"BSDS500 not found; synthetic 481x321 shapes scene\"";
    }
    ts::methods::grapl<ts::cpu_omp> method;
    ts::label_map out = method.run(img, ts::seed{0});  // warm-up (allocations, page faults)
    // CPU seconds of this process (all threads) as well: on a shared machine they vary less than
    // the wall time, which is what tuning runs compare (with OMP_WAIT_POLICY=passive, so that
    // they do not count spinning at barriers).
    auto cpu_now = [] {
        rusage ru{};
        getrusage(RUSAGE_SELF, &ru);
        return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    };
    double best = 1e300, best_cpu = 0;
    ts::pipeline::report rep;
    for (int r = 0; r < repeats; ++r) {
        const double c0 = cpu_now();
        const auto t0 = std::chrono::steady_clock::now();
        out = method.run(img, ts::seed{0});
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (s < best) best = s, best_cpu = cpu_now() - c0, rep = method.last_report();
    }
    auto share = [&](const char* k) { return rep.seconds.count(k) ? rep.seconds.at(k) / best : 0.0; };
    const auto classes = static_cast<long long>(rep.values.count("classes") ? rep.values.at("classes") : 17.0);
    const auto peer = ts::bench::run_peer(std::string(TESSEL_BENCH_PEERS_DIR) + "/grapl_torch.py",
                                          "--threads 2 --classes " + std::to_string(classes), "seconds_per_image");
    const std::string peer_fields = ts::bench::peer_fields(best, peer, "peer_seconds_per_image");
    std::printf("{\"bench\":\"grapl_image\",\"seconds\":%.4f,\"seconds_per_image\":%.4f,\"cpu_seconds\":%.3f,"
                "\"cnn_training_share\":%.3f,"
                "\"graph_cut_share\":%.3f,\"inference_share\":%.3f,\"initialisation_share\":%.3f,\"segments\":%lld,"
                "\"training_steps\":%lld,\"classes\":%lld,\"threads\":2,\"image\":\"%s\"%s%s}\n",
                best, best, best_cpu, share("cnn_training"), share("graph_cut"), share("inference"), share("initialisation"),
                static_cast<long long>(out.count_labels()), static_cast<long long>(rep.iterations), classes, source.c_str(),
                note.c_str(), peer_fields.c_str());
    return 0;
}
