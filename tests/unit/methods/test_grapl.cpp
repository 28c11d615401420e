// GraPL (methods/grapl.hpp) on small synthetic scenes: it separates the shapes, is deterministic
// for a seed, its graph step never raises the Potts energy, its dense FCN reproduces the patch
// classifier at patch-aligned positions, its batched network's gradients match finite
// differences, and bad parameters are rejected.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "support/scoring.hpp"
#include "support/synthetic.hpp"
#include "tessel/methods/grapl.hpp"

namespace ts = tessel;
namespace m = tessel::methods;

namespace {

/// A small configuration: 120 x 120 image, 20 x 20 grid of 6 px patches.
m::grapl_config small_grapl_config() {
    m::grapl_config c;
    c.grid = 20;
    c.k0 = 9;
    c.rounds = 3;
    c.max_epochs = 30;
    c.min_epochs = 10;
    return c;
}
}  // namespace

TEST_CASE("grapl: separates the shapes of a noisy synthetic image") {
    const auto scene = ts::testing::make_shapes(120, 120, 12, 3);
    m::grapl<ts::cpu_omp> method(small_grapl_config());
    const auto out = method.run(scene.img, ts::seed{0});
    const auto& rep = method.last_report();
    CHECK(out.width() == 120);
    CHECK(out.height() == 120);
    CHECK(method.classes() == 10);  // SLIC labels 1..9 and the reserved label 0
    CHECK(rep.seconds.count("cnn_training") == 1);
    CHECK(rep.seconds.count("graph_cut") == 1);
    CHECK(rep.seconds.count("inference") == 1);
    CHECK(rep.iterations >= 1);
    // Schedule for 3 rounds with max 30, min 10 (paper rule): 30, round(5*3/1 + 10) = 25, 10.
    CHECK(m::grapl_round_steps(small_grapl_config(), 0) == 30);
    CHECK(m::grapl_round_steps(small_grapl_config(), 1) == 25);
    CHECK(m::grapl_round_steps(small_grapl_config(), 2) == 10);
    CHECK(rep.iterations <= 30 + 25 + 10);
    const double iou = ts::testing::best_iou_per_region(scene.truth, out);
    INFO("best IoU per region " << iou << ", segments " << out.count_labels());
    CHECK(iou > 0.8);
}

#if TESSEL_HAS_OPENMP
TEST_CASE("grapl: the same result on cpu_serial and on cpu_omp with 1 or 2 threads") {
    // The patch network splits each step into jobs fixed by the batch size and reduces them in
    // job order, so the thread count must not change a single bit of the output.
    const auto scene = ts::testing::make_shapes(96, 80, 12, 9);
    auto c = small_grapl_config();
    c.grid = 12;
    c.k0 = 5;
    c.max_epochs = 8;
    c.min_epochs = 4;
    m::grapl<ts::cpu_serial> serial(c);
    const auto ls = serial.run(scene.img, ts::seed{3});
    const int before = omp_get_max_threads();
    for (const int threads : {1, 2}) {
        CAPTURE(threads);
        omp_set_num_threads(threads);
        m::grapl<ts::cpu_omp> omp(c);
        const auto lo = omp.run(scene.img, ts::seed{3});
        CHECK(lo.values() == ls.values());
        CHECK(omp.dense_logits().to_vector() == serial.dense_logits().to_vector());
    }
    omp_set_num_threads(before);
}
#endif

TEST_CASE("grapl: deterministic for a seed on cpu_serial; options run") {
    const auto scene = ts::testing::make_shapes(60, 48, 12, 4);
    auto c = small_grapl_config();
    c.grid = 10;
    c.k0 = 4;
    c.max_epochs = 6;
    c.min_epochs = 3;
    m::grapl<ts::cpu_serial> a(c), b(c);
    const auto la = a.run(scene.img, ts::seed{7});
    const auto lb = b.run(scene.img, ts::seed{7});
    CHECK(la.values() == lb.values());
    const auto da = a.dense_logits().to_vector();
    b.run(scene.img, ts::seed{8});
    CHECK(b.dense_logits().to_vector() != da);  // another seed, other weights

    for (auto init : {m::grapl_initialiser::random, m::grapl_initialiser::knn, m::grapl_initialiser::kmeans}) {
        auto ci = c;
        ci.initialiser = init;
        ci.solver = m::grapl_solver::alpha_expansion;
        ci.hard_initial_labels = true;
        ci.rounds = 2;
        ci.max_epochs = 2;
        m::grapl<ts::cpu_serial> g(ci);
        const auto l = g.run(scene.img, ts::seed{1});
        CHECK(g.classes() == ci.k0 + 1);
        // Non-SLIC initialisers give one label per patch: the targets are one-hot.
        const auto& t = g.initial_targets();
        for (ts::index_t i = 0; i < g.grid().count(); ++i) {
            double sum = 0, mx = 0;
            for (ts::index_t k = 0; k < g.classes(); ++k) {
                sum += t[static_cast<std::size_t>(i * g.classes() + k)];
                mx = std::max(mx, static_cast<double>(t[static_cast<std::size_t>(i * g.classes() + k)]));
            }
            CHECK(sum == doctest::Approx(1.0));
            CHECK(mx == 1.0);
        }
        CHECK(l.count_labels() >= 1);
    }
    for (auto aff : {m::grapl_affinity::raw_mean_colour, m::grapl_affinity::position, m::grapl_affinity::uniform4}) {
        auto ca = c;
        ca.affinity = aff;
        ca.schedule = m::grapl_epoch_schedule::code;
        ca.cold_start = true;
        ca.early_stop_on_total_loss = true;
        ca.rounds = 2;
        ca.max_epochs = 2;
        m::grapl<ts::cpu_serial> g(ca);
        CHECK(g.run(scene.img, ts::seed{2}).count_labels() >= 1);
    }
}

TEST_CASE("grapl: soft initial targets are SLIC label fractions per patch") {
    const auto scene = ts::testing::make_shapes(60, 60, 5, 2);
    auto c = small_grapl_config();
    c.grid = 10;
    c.k0 = 4;
    c.rounds = 1;
    c.max_epochs = 1;
    m::grapl<ts::cpu_serial> g(c);
    g.run(scene.img, ts::seed{0});
    const auto& t = g.initial_targets();
    const double unit = 1.0 / 36.0;  // 6 x 6 px patches
    for (ts::index_t i = 0; i < g.grid().count(); ++i) {
        double sum = 0;
        for (ts::index_t k = 0; k < g.classes(); ++k) {
            const double v = t[static_cast<std::size_t>(i * g.classes() + k)];
            sum += v;
            CHECK(std::abs(v / unit - std::round(v / unit)) < 1e-3);  // whole pixel counts
        }
        CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
        CHECK(t[static_cast<std::size_t>(i * g.classes())] == 0.0f);  // label 0 is reserved
    }
}

TEST_CASE("grapl: the Potts graph step never increases the energy") {
    ts::rng gen(3);
    const ts::index_t d = 8, n = d * d, K = 5;
    auto graph = ts::grid_graph(d, d, 8, [&](ts::index_t, ts::index_t) { return gen.uniform(0.0, 1.0); });
    for (int trial = 0; trial < 6; ++trial) {
        std::vector<float> p(static_cast<std::size_t>(n * K));
        for (ts::index_t i = 0; i < n; ++i) {
            double s = 0;
            for (ts::index_t k = 0; k < K; ++k) s += (p[static_cast<std::size_t>(i * K + k)] = static_cast<float>(gen.uniform(0.01, 1.0)));
            for (ts::index_t k = 0; k < K; ++k) p[static_cast<std::size_t>(i * K + k)] /= static_cast<float>(s);
        }
        std::vector<ts::label_t> start(static_cast<std::size_t>(n));
        for (auto& l : start) l = static_cast<ts::label_t>(gen.below(K));
        ts::stages::potts_refine_options o{.lambda = 2.0, .integer_energies = (trial % 2 == 0)};
        auto labels = start;
        const auto r = trial < 3 ? ts::stages::potts_refine<ts::alpha_beta_swap<ts::potts>>{o}(p, n, K, graph, labels)
                                 : ts::stages::potts_refine<ts::alpha_expansion<ts::potts>>{o}(p, n, K, graph, labels);
        // Recompute both energies independently from the same (scaled) problem.
        const auto prob = ts::stages::make_potts_problem(p, n, K, graph, o);
        auto energy = [&](const std::vector<ts::label_t>& l) {
            double e = 0;
            for (ts::index_t i = 0; i < n; ++i) e += prob.data[static_cast<std::size_t>(i * K + l[static_cast<std::size_t>(i)])];
            for (const auto& edge : prob.graph.upper_edges())
                if (l[static_cast<std::size_t>(edge.source)] != l[static_cast<std::size_t>(edge.target)]) e += prob.lambda * edge.weight;
            return e;
        };
        CHECK(energy(labels) <= energy(start) + 1e-9);
        CHECK(r.final_energy == doctest::Approx(energy(labels)));
        CHECK(r.initial_energy == doctest::Approx(energy(start)));
    }
}

TEST_CASE("grapl: the dense FCN equals the patch classifier at patch-aligned positions") {
    const auto scene = ts::testing::make_shapes(60, 60, 10, 6);
    auto c = small_grapl_config();
    c.grid = 10;
    c.k0 = 4;
    c.rounds = 2;
    c.max_epochs = 5;
    c.min_epochs = 3;
    m::grapl<ts::cpu_omp> g(c);
    g.run(scene.img, ts::seed{1});
    const ts::index_t n = g.grid().count(), K = g.classes(), p = g.grid().patch, d = g.grid().grid;
    std::vector<ts::index_t> all(static_cast<std::size_t>(n));
    for (ts::index_t i = 0; i < n; ++i) all[static_cast<std::size_t>(i)] = i;
    const auto patch = g.patch_logits(all);
    const auto dense = g.dense_logits();
    const ts::index_t o = dense.dim(2);
    CHECK(o == g.grid().side() - p + 1);
    double worst = 0;
    for (ts::index_t i = 0; i < n; ++i)
        for (ts::index_t k = 0; k < K; ++k) {
            const float a = patch[static_cast<std::size_t>(i * K + k)];
            const float b = dense.data()[(k * o + (i / d) * p) * o + (i % d) * p];
            worst = std::max(worst, static_cast<double>(std::abs(a - b)) / (1.0 + std::abs(a)));
        }
    CHECK(worst < 1e-4);
}

TEST_CASE("grapl_patch_cnn: gradients match finite differences (train-mode BN, no dropout)") {
    ts::rng init(5);
    m::grapl_patch_cnn<ts::cpu_serial> net({.patch = 6, .classes = 3, .filters = 4, .bottleneck = 2, .dropout = 0.0,
                                            .input_dropout = 0.0}, init);
    const ts::index_t N = 5, K = 3;
    std::vector<float> x(static_cast<std::size_t>(N * 3 * 36)), coef(static_cast<std::size_t>(K * N));
    ts::rng gen(9);
    for (auto& v : x) v = static_cast<float>(gen.uniform(-1, 1));
    for (auto& v : coef) v = static_cast<float>(gen.uniform(-1, 1));
    auto loss = [&]() {
        const auto& y = net.forward_patches(x.data(), N, true, 0);
        double l = 0;
        for (std::size_t i = 0; i < coef.size(); ++i) l += coef[i] * y[i];
        return l;
    };
    loss();
    net.backward(coef);
    auto params = net.parameters();
    std::vector<std::vector<float>> grads;
    for (auto& pr : params) grads.push_back(pr.grad->to_vector());
    for (std::size_t q = 0; q < params.size(); ++q) {
        auto& w = *params[q].value;
        for (ts::index_t j = 0; j < std::min<ts::index_t>(w.numel(), 4); ++j) {
            const float keep = w.data()[j];
            const float h = 1e-2f;
            w.data()[j] = keep + h;
            const double up = loss();
            w.data()[j] = keep - h;
            const double down = loss();
            w.data()[j] = keep;
            const double fd = (up - down) / (2.0 * h);
            INFO(params[q].name << "[" << j << "]: analytic " << grads[q][static_cast<std::size_t>(j)] << ", numeric " << fd);
            CHECK(std::abs(fd - grads[q][static_cast<std::size_t>(j)]) <= 2e-2 * (1.0 + std::abs(fd)));
        }
    }
}

TEST_CASE("grapl_patch_cnn: same logits and gradients as the nn:: composition grapl_network") {
    // The direct-convolution network against the im2col + GEMM blocks of nn::, with copied weights,
    // train-mode BN (no dropout) and then eval mode on the running statistics; patch sizes 16
    // (rows exactly one vector) and 7 (rows mostly throw-away lanes). The reference runs its 3x3
    // convs on im2col + GEMM, and again on nn::conv2d's direct engine.
    for (const auto engine : {ts::nn::conv_engine::im2col, ts::nn::conv_engine::direct})
    for (const ts::index_t p : {ts::index_t{16}, ts::index_t{7}}) {
        CAPTURE(p);
        CAPTURE(engine == ts::nn::conv_engine::direct);
        const ts::index_t N = 9, K = 5, F = 6, Bt = 3;
        ts::rng a(5), b(6), gen(11);
        m::grapl_patch_cnn<ts::cpu_omp> fast({.patch = p, .classes = K, .filters = F, .bottleneck = Bt, .dropout = 0.0,
                                              .input_dropout = 0.0}, a);
        m::grapl_network::bind<ts::cpu_serial> ref(
            m::grapl_network_config(p, K, F, Bt, 0.0, 0.0, engine), b);
        auto pf = fast.parameters();
        auto pr = ref.parameters();
        REQUIRE(pf.size() == pr.size());
        for (std::size_t q = 0; q < pf.size(); ++q) {
            REQUIRE(pf[q].value->numel() == pr[q].value->numel());
            // Non-trivial BN affine parameters, so gamma and beta gradients are exercised too.
            for (ts::index_t i = 0; i < pf[q].value->numel(); ++i)
                pr[q].value->data()[i] = pf[q].value->data()[i] += static_cast<float>(gen.uniform(-0.1, 0.1));
        }
        std::vector<float> x(static_cast<std::size_t>(N * 3 * p * p)), dy(static_cast<std::size_t>(N * K));
        for (auto& v : x) v = static_cast<float>(gen.uniform(-1, 1));
        for (auto& v : dy) v = static_cast<float>(gen.uniform(-1, 1));
        ts::nn::context<ts::cpu_serial> ctx;
        const ts::tensor<float, ts::cpu_serial> xt(ts::shape{N, 3, p, p}, std::span<const float>(x));
        const auto yr = ref.forward(ctx, xt).to_vector();  // [N][K][1][1]
        const auto yf = fast.forward_patches(x.data(), N, true, 0);  // [K][N]
        REQUIRE(yr.size() == yf.size());
        for (ts::index_t n = 0; n < N; ++n)
            for (ts::index_t k = 0; k < K; ++k)
                CHECK(yf[static_cast<std::size_t>(k * N + n)] ==
                      doctest::Approx(yr[static_cast<std::size_t>(n * K + k)]).epsilon(1e-4).scale(1.0));
        std::vector<float> dyf(dy.size());
        for (ts::index_t n = 0; n < N; ++n)
            for (ts::index_t k = 0; k < K; ++k) dyf[static_cast<std::size_t>(k * N + n)] = dy[static_cast<std::size_t>(n * K + k)];
        ref.backward(ctx, ts::tensor<float, ts::cpu_serial>(ts::shape{N, K, 1, 1}, std::span<const float>(dy)));
        fast.backward(dyf);
        for (std::size_t q = 0; q < pf.size(); ++q) {
            const auto gf = pf[q].grad->to_vector(), gr = pr[q].grad->to_vector();
            double worst = 0, scale = 0;
            for (std::size_t i = 0; i < gf.size(); ++i) {
                worst = std::max(worst, static_cast<double>(std::abs(gf[i] - gr[i])));
                scale = std::max(scale, static_cast<double>(std::abs(gr[i])));
            }
            INFO(pf[q].name << ": worst difference " << worst << " at gradient scale " << scale);
            CHECK(worst <= 1e-4 * (1.0 + scale));
        }
        ctx.training = false;
        const auto er = ref.forward(ctx, xt).to_vector();
        const auto ef = fast.forward_patches(x.data(), N, false, 0);
        for (ts::index_t n = 0; n < N; ++n)
            for (ts::index_t k = 0; k < K; ++k)
                CHECK(ef[static_cast<std::size_t>(k * N + n)] ==
                      doctest::Approx(er[static_cast<std::size_t>(n * K + k)]).epsilon(1e-4).scale(1.0));
    }
}

TEST_CASE("grapl: epoch schedules of the paper and the code") {
    m::grapl_config c;  // 4 rounds, max 40, min 12
    CHECK(m::grapl_round_steps(c, 0) == 40);
    CHECK(m::grapl_round_steps(c, 1) == 32);
    CHECK(m::grapl_round_steps(c, 2) == 22);
    CHECK(m::grapl_round_steps(c, 3) == 12);
    c.schedule = m::grapl_epoch_schedule::code;
    CHECK(m::grapl_round_steps(c, 3) == 19);
}

TEST_CASE("grapl: rejects bad parameters and input") {
    auto bad = [](auto edit) {
        m::grapl_config c;
        edit(c);
        CHECK_THROWS_AS(m::grapl<ts::cpu_serial>{c}, ts::error);
    };
    bad([](m::grapl_config& c) { c.side = 100; });  // 32 does not divide 100
    bad([](m::grapl_config& c) { c.k0 = 1; });
    bad([](m::grapl_config& c) { c.lambda = -1; });
    bad([](m::grapl_config& c) { c.lambda = std::nan(""); });
    bad([](m::grapl_config& c) { c.rounds = 0; });
    bad([](m::grapl_config& c) { c.progress_every = -1; });
    {
        m::grapl_config c;
        c.progress_every = -3;
        CHECK_THROWS_WITH_AS(m::grapl<ts::cpu_serial>{c}, doctest::Contains("progress_every must be >= 0"), ts::error);
        c.progress_every = 0;  // no progress: accepted
        CHECK_NOTHROW(m::grapl<ts::cpu_serial>{c});
    }
    bad([](m::grapl_config& c) { c.subset = 0; });
    bad([](m::grapl_config& c) { c.affinity = m::grapl_affinity::features; });  // no features given
    m::grapl<ts::cpu_serial> g;
    CHECK_THROWS_AS(g.run(ts::image<std::uint8_t>{}), ts::error);
    CHECK_THROWS_AS(g.run(ts::image<std::uint8_t>(40, 40, 1)), ts::error);
    m::grapl_config tiny;
    tiny.grid = 16;  // 40 px -> side 48, 3 px patches: too small for the network
    CHECK_THROWS_AS(m::grapl<ts::cpu_serial>{tiny}.run(ts::testing::make_shapes(40, 40).img), ts::error);
}
