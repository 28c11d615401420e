// Deep Superpixel Cut (methods/dsc.hpp) end to end on small images: the pipeline runs, its output
// follows the superpixels, the SuperAE model is used when given and refused when absent, and
// Felzenszwalb's scale search reaches the target count.
#include <doctest/doctest.h>

#include <filesystem>
#include <set>

#include "support/synthetic.hpp"
#include "tessel/methods/dsc.hpp"
#include "tessel/superpixel/target_count.hpp"

namespace ts = tessel;
namespace pm = tessel::methods;

namespace {
pm::dsc_config tiny() {
    pm::dsc_config c;
    c.untrained_superae = true;
    c.superpixels.target = 10;
    c.train.max_iterations = 4;
    c.optim.lr = 1e-3;  // at the paper's 5e-2 these small cases collapse to one label in 3 steps
    return c;
}
/// Every superpixel of sp carries one label of labels.
bool constant_on_superpixels(const ts::label_map& labels, const ts::label_map& sp) {
    std::map<ts::label_t, ts::label_t> seen;
    for (ts::index_t i = 0; i < sp.size(); ++i) {
        auto [it, fresh] = seen.emplace(sp.data()[i], labels.data()[i]);
        if (!fresh && it->second != labels.data()[i]) return false;
    }
    return true;
}
}  // namespace

TEST_CASE("dsc: a few SGD steps on a 48x32 image with an untrained SuperAE") {
    const auto scene = ts::testing::make_shapes(48, 32, 12, 2);
    pm::dsc<ts::cpu_serial> m(tiny());
    const ts::label_map out = m.run(scene.img, ts::seed{1});
    CHECK(out.width() == 48);
    CHECK(out.height() == 32);
    const auto& rep = m.last_report();
    CHECK(rep.iterations == 4);
    CHECK(rep.values.at("superae_trained") == 0.0);
    CHECK(rep.values.at("superpixels") >= 5);
    CHECK(rep.values.at("superpixels") <= 15);
    CHECK(std::isfinite(rep.values.at("final_loss")));
    // Labels are compacted 0..k-1, k <= K = 32.
    const ts::index_t k = out.count_labels();
    CHECK(k >= 1);
    CHECK(k <= 32);
    for (ts::label_t l : out.values()) CHECK((l >= 0 && l < k));
    // The same seed gives the same map; the cpu_omp backend agrees on the segment count range.
    CHECK(pm::dsc<ts::cpu_serial>(tiny()).run(scene.img, ts::seed{1}).values() == out.values());
    const ts::label_map omp = pm::dsc<ts::cpu_omp>(tiny()).run(scene.img, ts::seed{1});
    CHECK(omp.width() == 48);
}

TEST_CASE("dsc: the output is constant on superpixels unless pixelwise_argmax") {
    const auto scene = ts::testing::make_shapes(40, 28, 30, 4);
    auto c = tiny();
    c.superpixels.algorithm = pm::dsc_superpixel_algorithm::slic;
    c.superpixels.target = 20;
    c.train.max_iterations = 2;
    using P = pm::dsc<ts::cpu_serial>::pipeline_type;
    using train = pm::dsc<ts::cpu_serial>::train_stage;
    auto make = [&](bool pixelwise) {
        return P(pm::superae_source{nullptr, true}, c.superpixels,
                 train::config{.net = pm::dsc_embedding_config(8), .init = {nullptr, true},
                               .train = c.train, .loss = c.loss, .optim = c.optim},
                 pm::superpixel_vote::config{.pixelwise = pixelwise});
    };
    P voted = make(false), pixelwise = make(true);
    const ts::label_map a = voted.run(scene.img, ts::seed{2});
    CHECK(constant_on_superpixels(a, voted.last_state().superpixels));
    const ts::label_map b = pixelwise.run(scene.img, ts::seed{2});
    CHECK_FALSE(constant_on_superpixels(b, pixelwise.last_state().superpixels));
}

TEST_CASE("dsc: without a model it refuses unless told to run untrained; a model file is used") {
    auto c = tiny();
    c.untrained_superae = false;
    CHECK_THROWS_WITH_AS(pm::dsc<ts::cpu_serial>{c}, doctest::Contains("needs a trained SuperAE model (--model FILE"),
                         ts::error);
    c.model = "/nonexistent/model.tsl";
    CHECK_THROWS_WITH_AS(pm::dsc<ts::cpu_serial>{c}, doctest::Contains("no such file: '/nonexistent/model.tsl'"),
                         ts::error);
    // A SuperAE with other weights (seed 7, running statistics moved by a train-mode forward).
    ts::rng init(7);
    pm::superae_network::bind<ts::cpu_serial> net(pm::superae_config(), init);
    ts::nn::context<ts::cpu_serial> ctx;
    const auto scene = ts::testing::make_shapes(48, 32, 12, 2);
    (void)net.forward(ctx, ts::to_nchw<ts::cpu_serial>(scene.img));
    ts::io::model_file f;
    pm::save_superae<ts::cpu_serial>(f, net);
    const auto path = std::filesystem::temp_directory_path() / "tessel_test_dsc_superae.tsl";
    f.save(path);
    c.model = path.string();
    pm::dsc<ts::cpu_serial> trained(c);
    const auto with_model = trained.run(scene.img, ts::seed{1});
    CHECK(trained.last_report().values.at("superae_trained") == 1.0);
    CHECK(with_model.values() != pm::dsc<ts::cpu_serial>(tiny()).run(scene.img, ts::seed{1}).values());
    // A file that is not a SuperAE is refused when loaded.
    ts::io::model_file other;
    other.metadata["network"] = "dfc";
    other.save(path);
    c.model = path.string();
    CHECK_THROWS_WITH_AS(pm::dsc<ts::cpu_serial>(c).run(scene.img), doctest::Contains("does not hold a SuperAE"),
                         ts::error);
}

TEST_CASE("felzenszwalb_with_count: the scale search gets close to the target count") {
    const auto scene = ts::testing::make_shapes(64, 48, 40, 3);
    for (ts::index_t target : {10, 20, 50}) {
        double scale = 0;
        const ts::label_map m = ts::felzenszwalb_with_count(ts::cpu_serial{}, scene.img, target, {}, {}, &scale);
        INFO("target " << target << ", scale " << scale << ", got " << m.count_labels());
        CHECK(std::abs(m.count_labels() - target) <= std::max<ts::index_t>(2, target / 10));
        ts::felzenszwalb f{{.scale = scale}};
        CHECK(f(ts::cpu_serial{}, scene.img).values() == m.values());  // the reported scale made it
    }
    // A target above the finest map: the finest map.
    const ts::label_map fine = ts::felzenszwalb_with_count(ts::cpu_serial{}, scene.img, 1000000);
    CHECK(fine.values() == ts::felzenszwalb{{.scale = 1.0}}(ts::cpu_serial{}, scene.img).values());
    CHECK_THROWS_AS((void)ts::felzenszwalb_with_count(ts::cpu_serial{}, scene.img, 0), ts::error);
}
