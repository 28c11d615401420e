// PiCNet (methods/picnet.hpp, methods/picnet_network.hpp): the whole network's gradient (R, G1
// and G2 at once) against finite differences at perturbed parameters, its shapes on odd sizes,
// the loss's parts, a tiny end-to-end run with every loss and the post-processing active, user
// superpixels, and errors.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "support/synthetic.hpp"
#include "tessel/autograd/check_gradients.hpp"
#include "tessel/methods/picnet.hpp"

namespace ts = tessel;
namespace pm = tessel::methods;
using ts::index_t;

namespace {
std::string message_of(auto&& f) {
    try {
        f();
    } catch (const ts::error& e) {
        return e.what();
    }
    return "";
}
pm::picnet_config small_picnet_config() {
    pm::picnet_config c;
    c.net.channels = 6;
    c.net.classes = 8;
    c.train.max_iterations = 4;
    c.train.min_labels = 2;
    c.superpixels.n_segments = 40;
    return c;
}
}  // namespace

TEST_CASE("picnet_network: gradient of R, G1 and G2 together against finite differences") {
    using net_t = pm::picnet_network::bind<ts::cpu_serial, double>;
    for (const bool learnable : {false, true}) {
        const pm::picnet_network::config cfg{.channels = 3, .classes = 4, .activation = {.learnable = learnable}};
        ts::rng init(4);
        net_t net(cfg, init);
        ts::autograd::detail::perturb_state<double, ts::cpu_serial>(net, 9);
        ts::nn::context<ts::cpu_serial> ctx;
        ts::tensor<double> x(ts::shape{1, 3, 9, 8});
        for (index_t i = 0; i < x.numel(); ++i) x[i] = init.uniform(0, 1);
        const auto& r0 = net.forward(ctx, x);
        CHECK(r0.shape() == ts::shape{1, 4, 9, 8});
        CHECK(net.features().shape() == ts::shape{1, 3, 9, 8});
        CHECK(net.half_features().shape() == ts::shape{1, 3, 4, 4});
        CHECK(net.reconstruction(0).shape() == ts::shape{1, 3, 9, 8});
        CHECK(net.reconstruction(1).shape() == ts::shape{1, 3, 4, 4});
        CHECK(net.half_input().shape() == ts::shape{1, 3, 4, 4});
        auto random_like = [&](const ts::shape& s) {
            ts::tensor<double> t(s);
            for (index_t i = 0; i < t.numel(); ++i) t[i] = init.uniform(-1, 1);
            return t;
        };
        const auto a = random_like(r0.shape());
        const auto b = random_like(net.reconstruction(0).shape());
        const auto c = random_like(net.reconstruction(1).shape());
        auto dot = [](const ts::tensor<double>& u, const ts::tensor<double>& v) {
            double s = 0;
            for (index_t i = 0; i < u.numel(); ++i) s += u[i] * v[i];
            return s;
        };
        auto loss = [&] {
            const auto& r = net.forward(ctx, x);
            return dot(r, a) + dot(net.reconstruction(0), b) + dot(net.reconstruction(1), c);
        };
        loss();
        net.reconstruction_grad(0) = b;
        net.reconstruction_grad(1) = c;
        const ts::tensor<double> dx = net.backward(ctx, a);
        auto params = net.parameters();
        std::vector<ts::tensor<double>> grads;
        for (auto& p : params) grads.push_back(*p.grad);
        auto in = ts::autograd::check_scalar_gradient(loss, x, dx, {.max_coords = 64});
        INFO("input: " << in.report);
        CHECK(in.passed);
        for (std::size_t k = 0; k < params.size(); ++k) {
            auto pr = ts::autograd::check_scalar_gradient(loss, *params[k].value, grads[k], {.max_coords = 24});
            INFO("parameter " << k << " (" << params[k].name << "): " << pr.report);
            CHECK(pr.passed);
        }
        // Without reconstruction gradients the heads G1, G2 get zero gradients... through
        // backward they are simply not used: R's gradient alone reaches F4 and below.
        net.forward(ctx, x);
        const ts::tensor<double> dx_r = net.backward(ctx, a);
        net.forward(ctx, x);
        net.reconstruction_grad(0) = ts::tensor<double>(b.shape());  // zeros
        net.reconstruction_grad(1) = ts::tensor<double>(c.shape());
        const ts::tensor<double> dx_zero = net.backward(ctx, a);
        for (index_t i = 0; i < dx_r.numel(); ++i) CHECK(dx_r[i] == doctest::Approx(dx_zero[i]).epsilon(1e-12));
    }
}

TEST_CASE("picnet_network: bad input and a wrongly shaped reconstruction gradient") {
    ts::rng init(1);
    pm::picnet_network::bind<ts::cpu_serial> net({.channels = 4, .classes = 5}, init);
    ts::nn::context<ts::cpu_serial> ctx;
    ts::tensor<float> grey(ts::shape{1, 1, 8, 8}), thin(ts::shape{1, 3, 1, 8}), x(ts::shape{1, 3, 8, 7});
    CHECK(message_of([&] { net.forward(ctx, grey); }).find("RGB") != std::string::npos);
    CHECK(message_of([&] { net.forward(ctx, thin); }).find("at least 2 x 2") != std::string::npos);
    CHECK(message_of([&] { (void)net.features(); }).find("no forward") != std::string::npos);
    const auto& r = net.forward(ctx, x);
    net.reconstruction_grad(1) = ts::tensor<float>(ts::shape{1, 3, 8, 7});
    CHECK(message_of([&] { net.backward(ctx, r); }).find("gradient of reconstruction 1") != std::string::npos);
    CHECK(message_of([&] { pm::picnet_network::bind<ts::cpu_serial> bad({.classes = 1}, init); })
              .find("classes >= 2") != std::string::npos);
}

TEST_CASE("picnet: a tiny end-to-end run with every loss and the graph cut active") {
    const auto scene = ts::testing::make_shapes(32, 24, 12, 2);
    pm::picnet<ts::cpu_omp> method(small_picnet_config());
    const auto out = method.run(scene.img, ts::seed{1});
    CHECK(out.width() == 32);
    CHECK(out.height() == 24);
    const auto& info = method.last_report();
    CHECK(info.iterations >= 1);
    CHECK(info.iterations <= 4);
    CHECK(info.values.at("loss_local") > 0);
    CHECK(info.values.at("loss_global") > 0);
    CHECK(info.values.at("loss_rec") > 0);
    CHECK(info.values.at("superpixels") > 10);
    // Post-processing: labels compacted to 0..K-1 and the energy never above the start's.
    CHECK(info.values.at("graph_cut_energy") <= info.values.at("graph_cut_energy_before") + 1e-9);
    const index_t k = out.count_labels();
    for (auto l : out.values()) CHECK(l < k);
    // Deterministic for a seed on cpu_serial.
    pm::picnet<ts::cpu_serial> serial(small_picnet_config());
    CHECK(serial.run(scene.img, ts::seed{2}).values() == serial.run(scene.img, ts::seed{2}).values());
}

TEST_CASE("picnet: loss weights switch the parts off; the graph cut can be skipped") {
    const auto scene = ts::testing::make_shapes(32, 24, 12, 2);
    auto c = small_picnet_config();
    c.loss.global_weight = 0;
    c.loss.rec_weight = 0;
    c.graph_cut = false;
    pm::picnet<ts::cpu_serial> method(c);
    const auto out = method.run(scene.img, ts::seed{1});
    const auto& info = method.last_report();
    CHECK(info.values.at("loss_global") == 0.0);
    CHECK(info.values.at("loss_rec") == 0.0);
    CHECK(info.values.count("graph_cut_energy") == 0);
    for (auto l : out.values()) CHECK(l < 8);  // raw response channels
    // Only L_rec: the parts are the two heads' (1 - MS-SSIM) + MSE, each at most 1 + 1.
    auto r = small_picnet_config();
    r.loss.local_weight = 0;
    r.loss.global_weight = 0;
    pm::picnet<ts::cpu_serial> rec_only(r);
    rec_only.run(scene.img, ts::seed{1});
    CHECK(rec_only.last_report().values.at("loss_local") == 0.0);
    CHECK(rec_only.last_report().values.at("loss_rec") > 0.0);
    CHECK(rec_only.last_report().values.at("loss_rec") < 4.0);
}

TEST_CASE("picnet: user superpixels replace SLIC; errors name the problem") {
    const auto scene = ts::testing::make_shapes(32, 24, 12, 2);
    auto c = small_picnet_config();
    ts::label_map quads(32, 24);
    for (index_t y = 0; y < 24; ++y)
        for (index_t x = 0; x < 32; ++x) quads(x, y) = static_cast<ts::label_t>((x / 8) + 4 * (y / 6));
    c.user_superpixels = quads;
    pm::picnet<ts::cpu_serial> method(c);
    method.run(scene.img, ts::seed{1});
    CHECK(method.last_report().values.count("superpixels") == 0);  // no SLIC stage ran
    CHECK(method.last_report().values.at("loss_global") > 0);

    c.user_superpixels = ts::label_map(30, 24);
    CHECK(message_of([&] { pm::picnet<ts::cpu_serial>(c).run(scene.img, ts::seed{1}); }).find("30x24") !=
          std::string::npos);
    const auto tiny = ts::testing::make_shapes(21, 30, 12, 2);
    CHECK(message_of([&] { pm::picnet<ts::cpu_serial>(small_picnet_config()).run(tiny.img, ts::seed{1}); })
              .find("at least 22 x 22") != std::string::npos);
    auto bad = small_picnet_config();
    bad.loss.global_weight = -1;
    CHECK(message_of([&] { pm::picnet<ts::cpu_serial>(bad).run(scene.img, ts::seed{1}); }).find("loss weights") !=
          std::string::npos);
    bad = small_picnet_config();
    bad.loss.ms_ssim.levels = 9;
    CHECK(message_of([&] { pm::picnet<ts::cpu_serial>(bad).run(scene.img, ts::seed{1}); }).find("levels") !=
          std::string::npos);
}

TEST_CASE("picnet: separates the shapes of a noisy synthetic image") {
    const auto scene = ts::testing::make_shapes(48, 48, 12, 5);
    pm::picnet_config c;
    c.net.channels = 12;
    c.net.classes = 16;
    c.train.max_iterations = 40;
    c.superpixels.n_segments = 100;
    pm::picnet<ts::cpu_omp> method(c);
    const auto out = method.run(scene.img, ts::seed{1});
    INFO("segments " << out.count_labels() << ", iterations " << method.last_report().iterations);
    CHECK(out.count_labels() >= 2);
    CHECK(out.count_labels() <= 16);
}
