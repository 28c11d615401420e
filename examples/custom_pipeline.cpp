// custom_pipeline: a method of your own in a few lines: Kim 2020's self-training loop with an
// Inception backbone, Kanezaki's SLIC superpixel refinement, Adam, and a graph cut over the final
// segments, composed at compile time.
//
//   custom_pipeline [image] [labels.png] [overlay.png]
// With no image it uses a synthetic scene. Structure is in the types; every number is in configs.
#include <cstdio>
#include <string>

#include <tessel/io/image.hpp>
#include <tessel/io/overlay.hpp>
#include <tessel/methods/azad2025.hpp>
#include <tessel/optim/adam.hpp>
#include <tessel/pipeline/stages/segment_graph_cut.hpp>
#include <tessel/pipeline/stages/superpixels.hpp>
#include <tessel/superpixel/slic.hpp>

namespace ts = tessel;

// Stem conv1x1 -> BN -> ReLU, one Inception block -> ReLU -> BN, head conv1x1 -> BN.
using backbone = ts::nn::sequential<ts::methods::azad_stem_paper, ts::methods::azad_block, ts::nn::conv2d,
                                    ts::nn::batch_norm>;

// SLIC superpixels, Kanezaki's majority vote as the pseudo-label rule, the DFC loss, Adam instead
// of SGD, and a Potts graph cut over the final segments (alpha-expansion) to merge weak ones.
template <ts::Backend B>
using inception_kanezaki =
    ts::pipeline::pipeline<B, ts::stages::superpixels<ts::slic>,
                           ts::stages::self_train<backbone, ts::stages::superpixel_majority, ts::stages::dfc_loss,
                                                  ts::optim::adam>,
                           ts::stages::segment_graph_cut<>>;

int main(int argc, char** argv) {
    try {
        const ts::image<std::uint8_t> img =
            argc > 1 ? ts::io::read_image(argv[1]) : [] {
                // Three flat regions with noise, so the example runs without any file.
                ts::image<std::uint8_t> s(96, 64, 3);
                ts::rng g(1);
                for (ts::index_t y = 0; y < 64; ++y)
                    for (ts::index_t x = 0; x < 96; ++x)
                        for (int c = 0; c < 3; ++c) {
                            const int base = x < 40 ? (c == 0 ? 200 : 40) : (y < 32 ? (c == 1 ? 180 : 60) : (c == 2 ? 220 : 30));
                            s(x, y, c) = static_cast<std::uint8_t>(base + static_cast<int>(g.below(21)) - 10);
                        }
                return s;
            }();

        const ts::index_t q = 32;
        const ts::nn::init::scheme init = ts::nn::init::scheme::xavier_uniform;
        backbone::config net{
            {.conv = {.in_channels = 3, .out_channels = 15, .kernel = 1, .init = init}},
            {.block = {.in_channels = 15, .branch1 = 32, .branch2_reduce = 16, .branch2 = 16, .branch3_reduce = 8,
                       .branch3 = 8, .branch4 = 8, .init = init},
             .post_bn = true},
            {.in_channels = 64, .out_channels = q, .kernel = 1, .init = init},
            {.channels = q}};

        inception_kanezaki<ts::cpu_omp> method({.n_segments = 400, .compactness = 20.0f},
                                               {.net = net,
                                                .train = {.max_iterations = 60, .min_labels = 3, .keep_probabilities = true},
                                                .loss = {.continuity_weight = 1.0},
                                                .optim = {.lr = 0.01}},
                                               {.lambda = 1.0});
        const ts::label_map labels = method.run(img, ts::seed{7}, [](std::string_view stage, ts::index_t step,
                                                                     ts::index_t total, std::string_view msg) {
            std::fprintf(stderr, "\r%.*s %lld/%lld %.*s   ", static_cast<int>(stage.size()), stage.data(),
                         static_cast<long long>(step), static_cast<long long>(total), static_cast<int>(msg.size()),
                         msg.data());
        });
        const auto& info = method.last_state().info;
        std::fprintf(stderr, "\n");
        std::printf("%lld segments after %lld iterations (%.0f superpixels; %.0f labels before the graph cut), %.2f s\n",
                    static_cast<long long>(info.num_segments), static_cast<long long>(info.iterations),
                    info.values.at("superpixels"), info.values.at("graph_cut_labels_before"),
                    info.seconds.at("self_train") + info.seconds.at("superpixels") +
                        info.seconds.at("segment_graph_cut"));
        if (argc > 2) ts::io::write_label_png(argv[2], labels);
        if (argc > 3) ts::io::write_png(argv[3], ts::io::boundary_overlay(img, labels));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "custom_pipeline: error: %s\n", e.what());
        return 1;
    }
}
