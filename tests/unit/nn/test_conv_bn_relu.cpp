// Memory-saving blocks: conv_bn_relu (and pool_proj_bn_relu), pool_projection, inception_fused,
// the release/restore of outputs in sequential and repeat, and the scratch pool they rely on.
// Each is checked against finite differences and against the plain composition it replaces
// (same weights from the same draws): same outputs, input gradients, parameter gradients and
// running statistics, up to rounding.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "nn_test_util.hpp"
#include "tessel/nn/conv_bn_relu.hpp"
#include "tessel/nn/inception.hpp"
#include "tessel/nn/inception_fused.hpp"
#include "tessel/nn/pool_projection.hpp"
#include "tessel/methods/azad2025.hpp"
#include "tessel/nn/repeat.hpp"

namespace ts = tessel;
namespace nn = tessel::nn;
using nn_test::gradient_check;
using nn_test::max_rel_diff;
using nn_test::random_tensor;

namespace {

using cpu = ts::cpu_serial;

nn::conv2d::config conv_cfg(ts::index_t in, ts::index_t out, ts::index_t k) {
    return {.in_channels = in, .out_channels = out, .kernel = k, .padding = k / 2};
}

/// All parameter gradients of a layer, concatenated in parameter order.
template <class L>
std::vector<double> all_grads(L& l) {
    std::vector<double> g;
    for (auto& p : l.parameters())
        for (auto v : p.grad->to_vector()) g.push_back(static_cast<double>(v));
    return g;
}

/// Runs forward + backward of a (reference) and b (new) on the same input and upstream gradient;
/// requires equal outputs and input gradients to tol. Returns nothing; parameters are compared
/// by the caller, whose parameter order may differ.
template <class LA, class LB>
void same_forward_backward(LA& a, LB& b, const ts::shape& in, double tol, bool input_grad = true) {
    nn::context<cpu> ca, cb;
    const auto x = random_tensor<double>(in, 11);
    const auto ya = a.forward(ca, x).to_vector();
    const auto yb = b.forward(cb, x).to_vector();
    REQUIRE(ya.size() == yb.size());
    CHECK(max_rel_diff(yb, ya) <= tol);
    const auto dy = random_tensor<double>(a.forward(ca, x).shape(), 12);
    b.forward(cb, x);  // both layers have now run forward twice: the same running statistics
    const auto dxa = a.backward(ca, dy).to_vector();
    const auto dxb = b.backward(cb, dy).to_vector();
    if (input_grad) CHECK(max_rel_diff(dxb, dxa) <= tol);
}

using reference_unit = nn::sequential<nn::conv2d, nn::batch_norm, nn::relu, nn::batch_norm>;

}  // namespace

TEST_CASE("conv_bn_relu: gradient checks (double, cpu_serial)") {
    ts::autograd::gradient_check_options opt;
    opt.max_coords = 48;
    SUBCASE("conv -> BN -> ReLU") {
        gradient_check<nn::conv_bn_relu>({.conv = conv_cfg(3, 4, 3)}, ts::shape{2, 3, 5, 4}, opt);
    }
    SUBCASE("conv -> BN (no ReLU, a head)") {
        gradient_check<nn::conv_bn_relu>({.conv = conv_cfg(3, 4, 1), .relu = false}, ts::shape{2, 3, 4, 4}, opt);
    }
    SUBCASE("conv -> BN -> ReLU -> BN") {
        gradient_check<nn::conv_bn_relu>({.conv = conv_cfg(2, 3, 3), .post_bn = true}, ts::shape{2, 2, 5, 3}, opt);
    }
    SUBCASE("recomputed front") {
        gradient_check<nn::conv_bn_relu>({.conv = conv_cfg(3, 3, 1), .post_bn = true, .recompute_front = true},
                                         ts::shape{1, 3, 6, 5}, opt);
    }
    SUBCASE("eval mode") {
        opt.training = false;
        gradient_check<nn::conv_bn_relu>({.conv = conv_cfg(3, 3, 3), .post_bn = true}, ts::shape{1, 3, 4, 4}, opt);
    }
    SUBCASE("pool projection front") {
        gradient_check<nn::pool_proj_bn_relu>({.conv = {.in_channels = 3, .out_channels = 2, .chunk_channels = 2}},
                                              ts::shape{2, 3, 4, 5}, opt);
    }
}

TEST_CASE("conv_bn_relu: same as conv2d -> batch_norm -> relu [-> batch_norm]") {
    for (bool post : {false, true})
        for (bool recompute : {false, true})
            for (bool relu : {false, true}) {
                CAPTURE(post);
                CAPTURE(recompute);
                CAPTURE(relu);
                ts::rng ra(3), rb(3);
                const auto c = conv_cfg(3, 4, 3);
                nn::conv_bn_relu::bind<cpu, double> unit(
                    {.conv = c, .relu = relu, .post_bn = post, .recompute_front = recompute}, rb);
                // The composition; a missing ReLU or second norm is checked through a shorter chain.
                if (post && relu) {
                    reference_unit::bind<cpu, double> ref({c, {.channels = 4}, {}, {.channels = 4}}, ra);
                    same_forward_backward(ref, unit, ts::shape{2, 3, 5, 6}, 1e-10);
                    CHECK(max_rel_diff(all_grads(unit), all_grads(ref)) <= 1e-10);
                    CHECK(max_rel_diff(unit.post_running_var().to_vector(),
                                       ref.layer<3>().running_var().to_vector()) <= 1e-12);
                } else if (relu && !post) {
                    nn::sequential<nn::conv2d, nn::batch_norm, nn::relu>::bind<cpu, double> ref(
                        {c, {.channels = 4}, {}}, ra);
                    same_forward_backward(ref, unit, ts::shape{2, 3, 5, 6}, 1e-10);
                    CHECK(max_rel_diff(all_grads(unit), all_grads(ref)) <= 1e-10);
                    CHECK(max_rel_diff(unit.running_mean().to_vector(), ref.layer<1>().running_mean().to_vector()) <=
                          1e-12);
                } else if (!relu && !post) {
                    nn::sequential<nn::conv2d, nn::batch_norm>::bind<cpu, double> ref({c, {.channels = 4}}, ra);
                    same_forward_backward(ref, unit, ts::shape{2, 3, 5, 6}, 1e-10);
                    CHECK(max_rel_diff(all_grads(unit), all_grads(ref)) <= 1e-10);
                } else {
                    nn::sequential<nn::conv2d, nn::batch_norm, nn::batch_norm>::bind<cpu, double> ref(
                        {c, {.channels = 4}, {.channels = 4}}, ra);
                    same_forward_backward(ref, unit, ts::shape{2, 3, 5, 6}, 1e-10);
                    CHECK(max_rel_diff(all_grads(unit), all_grads(ref)) <= 1e-10);
                }
            }
}

TEST_CASE("conv_bn_relu: saved state lives in the scratch pool until backward") {
    ts::rng r(1);
    nn::conv_bn_relu::bind<cpu, float> unit({.conv = conv_cfg(2, 3, 3)}, r);
    nn::context<cpu> ctx;
    const auto x = random_tensor<float>(ts::shape{1, 2, 6, 6}, 2);
    const auto y = unit.forward(ctx, x);
    // One slot (z) is held between forward and backward: a lease now gets another slot.
    {
        nn::scratch_lease<float, cpu> other(ctx, 3 * 36);
        CHECK(ctx.scratch.size<float>() == 2);
    }
    ts::tensor<float> again;
    unit.recompute_output_into(ctx, again);
    CHECK(again.to_vector() == y.to_vector());
    const auto dy = random_tensor<float>(y.shape(), 3);
    unit.backward(ctx, dy);
    CHECK_THROWS_AS(unit.backward(ctx, dy), ts::error);  // backward consumed the saved z
    // Forward without backward (prediction) does not leak slots.
    for (int i = 0; i < 3; ++i) unit.forward(ctx, x);
    CHECK(ctx.scratch.size<float>() == 2);
    // Wrong upstream shape.
    unit.forward(ctx, x);
    CHECK_THROWS_AS(unit.backward(ctx, ts::tensor<float>(ts::shape{1, 2, 6, 6})), ts::error);
    CHECK_THROWS_AS(nn::conv_bn_relu::bind<cpu>({.conv = conv_cfg(2, 3, 3), .eps = 0}, r), ts::error);
}

TEST_CASE("pool_projection: same as max_pool2d -> conv2d 1x1; gradient check") {
    for (ts::index_t chunk : {1, 2, 16}) {
        CAPTURE(chunk);
        ts::rng ra(9), rb(9);
        nn::sequential<nn::max_pool2d, nn::conv2d>::bind<cpu, double> ref(
            {{.kernel = 3, .stride = 1, .padding = 1}, conv_cfg(5, 3, 1)}, ra);
        nn::pool_projection::bind<cpu, double> pp({.in_channels = 5, .out_channels = 3, .chunk_channels = chunk}, rb);
        same_forward_backward(ref, pp, ts::shape{2, 5, 4, 6}, 1e-12);
        CHECK(max_rel_diff(all_grads(pp), all_grads(ref)) <= 1e-12);
    }
    ts::autograd::gradient_check_options opt;
    opt.max_coords = 48;
    gradient_check<nn::pool_projection>({.in_channels = 3, .out_channels = 2, .chunk_channels = 2},
                                        ts::shape{2, 3, 5, 4}, opt);
    gradient_check<nn::pool_projection>(
        {.in_channels = 2, .out_channels = 2, .kernel = 2, .stride = 2, .padding = 0, .bias = false},
        ts::shape{1, 2, 6, 4}, opt);
    ts::rng r(1);
    CHECK_THROWS_AS(nn::pool_projection::bind<cpu>({.in_channels = 2, .out_channels = 0}, r), ts::error);
    CHECK_THROWS_AS(nn::pool_projection::bind<cpu>({.in_channels = 2, .out_channels = 1, .padding = 2}, r), ts::error);
}

namespace {

const nn::inception::config small{.in_channels = 3, .branch1 = 2, .branch2_reduce = 3, .branch2 = 2,
                                  .branch3_reduce = 2, .branch3 = 3, .branch4 = 2};
using reference_block = nn::sequential<nn::inception, nn::relu, nn::batch_norm>;

/// The reference block's parameter gradients in inception_fused's order: each branch's
/// [conv, BN] (and, with post, its slice of the trailing BN's gamma and beta).
template <class Ref>
std::vector<double> reference_grads_in_fused_order(Ref& ref, const nn::inception::config& c, bool post) {
    auto p = ref.parameters();  // a(4) b(8) c(8) d(4) [bn gamma, bn beta]
    auto grads = [&](std::size_t k) { return p[k].grad->to_vector(); };
    std::vector<double> out;
    auto put = [&](std::size_t k) {
        for (auto v : grads(k)) out.push_back(v);
    };
    const ts::index_t widths[4] = {c.branch1, c.branch2, c.branch3, c.branch4};
    ts::index_t c0 = 0;
    auto put_post = [&](int branch) {
        if (!post) return;
        for (std::size_t k : {std::size_t(24), std::size_t(25)}) {
            const auto g = grads(k);
            for (ts::index_t i = 0; i < widths[branch]; ++i) out.push_back(g[static_cast<std::size_t>(c0 + i)]);
        }
        c0 += widths[branch];
    };
    for (std::size_t k = 0; k < 4; ++k) put(k);
    put_post(0);
    for (std::size_t k = 4; k < 12; ++k) put(k);
    put_post(1);
    for (std::size_t k = 12; k < 20; ++k) put(k);
    put_post(2);
    for (std::size_t k = 20; k < 24; ++k) put(k);
    put_post(3);
    return out;
}

}  // namespace

TEST_CASE("inception_fused: same as inception -> relu -> batch_norm, and as inception") {
    for (bool recompute : {false, true}) {
        CAPTURE(recompute);
        {
            ts::rng ra(4), rb(4);
            reference_block::bind<cpu, double> ref({small, {}, {.channels = small.out_channels()}}, ra);
            nn::inception_fused::bind<cpu, double> fused(
                {.block = small, .post_bn = true, .recompute_input_convs = recompute}, rb);
            same_forward_backward(ref, fused, ts::shape{2, 3, 6, 5}, 1e-10);
            CHECK(max_rel_diff(all_grads(fused), reference_grads_in_fused_order(ref, small, true)) <= 1e-10);
        }
        {
            ts::rng ra(4), rb(4);
            nn::inception::bind<cpu, double> ref(small, ra);
            nn::inception_fused::bind<cpu, double> fused({.block = small, .recompute_input_convs = recompute}, rb);
            same_forward_backward(ref, fused, ts::shape{1, 3, 7, 4}, 1e-10);
            auto p = ref.parameters();
            std::vector<double> g;
            for (auto& q : p)
                for (auto v : q.grad->to_vector()) g.push_back(v);
            CHECK(max_rel_diff(all_grads(fused), g) <= 1e-10);
        }
    }
}

TEST_CASE("inception_fused: gradient check (double, cpu_serial); serial and omp agree; errors") {
    ts::autograd::gradient_check_options opt;
    opt.max_coords = 40;
    gradient_check<nn::inception_fused>({.block = small, .post_bn = true, .recompute_input_convs = true},
                                        ts::shape{2, 3, 5, 4}, opt);
    gradient_check<nn::inception_fused>({.block = small}, ts::shape{1, 3, 5, 5}, opt);
    nn_test::serial_omp_agree<nn::inception_fused>({.block = small, .post_bn = true}, ts::shape{2, 3, 9, 8}, 1e-4);
    ts::rng r(1);
    auto bad = small;
    bad.branch3 = 0;
    CHECK_THROWS_AS(nn::inception_fused::bind<cpu>({.block = bad}, r), ts::error);
    nn::inception_fused::bind<cpu> block({.block = small}, r);
    nn::context<cpu> ctx;
    CHECK_THROWS_AS(block.forward(ctx, ts::tensor<float>(ts::shape{1, 4, 5, 5})), ts::error);
}

TEST_CASE("release/restore: a chain of fused blocks drops and rebuilds outputs, with the same results") {
    const nn::inception::config second{.in_channels = 9, .branch1 = 2, .branch2_reduce = 2, .branch2 = 2,
                                       .branch3_reduce = 2, .branch3 = 1, .branch4 = 1};
    using fused_net = nn::sequential<nn::inception_fused, nn::inception_fused, nn::repeat<nn::inception_fused>,
                                     nn::conv_bn_relu>;
    using ref_net = nn::sequential<reference_block, reference_block, nn::repeat<reference_block>,
                                   nn::sequential<nn::conv2d, nn::batch_norm>>;
    auto later = second;
    later.in_channels = second.out_channels();
    const ts::index_t c1 = small.out_channels(), c2 = second.out_channels();
    ts::rng ra(6), rb(6);
    ref_net::bind<cpu, double> ref({{small, {}, {.channels = c1}},
                                    {second, {}, {.channels = c2}},
                                    {.count = 2, .block = {later, {}, {.channels = c2}}},
                                    {conv_cfg(c2, 4, 1), {.channels = 4}}},
                                   ra);
    fused_net::bind<cpu, double> fused({{.block = small, .post_bn = true, .recompute_input_convs = true},
                                        {.block = second, .post_bn = true},
                                        {.count = 2, .block = {.block = later, .post_bn = true}},
                                        {.conv = conv_cfg(c2, 4, 1), .relu = false}},
                                       rb);
    same_forward_backward(ref, fused, ts::shape{2, 3, 5, 6}, 1e-10);
    // Every parameter gradient agrees: compare the sums of |g| block by block (orders differ).
    double gr = 0, gf = 0;
    for (auto v : all_grads(ref)) gr += std::abs(v);
    for (auto v : all_grads(fused)) gf += std::abs(v);
    CHECK(std::abs(gr - gf) <= 1e-10 * gr);

    // After forward the first block's output has been released (its memory is in the pool) and
    // restore_output rebuilds the same values.
    nn::context<cpu> ctx;
    const auto x = random_tensor<double>(ts::shape{1, 3, 4, 4}, 2);
    auto& first = fused.layer<0>();
    const auto direct = first.forward(ctx, x).to_vector();
    fused.forward(ctx, x);
    CHECK(first.forward(ctx, x).numel() == static_cast<ts::index_t>(direct.size()));  // a lone forward keeps it
    fused.forward(ctx, x);
    auto& out = const_cast<ts::tensor<double>&>(first.forward(ctx, x));
    first.release_output(ctx);
    CHECK(out.storage().empty());
    first.restore_output(ctx);
    CHECK(max_rel_diff(out.to_vector(), direct) <= 1e-12);
}

TEST_CASE("scratch_pool: sized acquire, donate and take") {
    nn::scratch_pool<cpu> pool;
    auto& a = pool.acquire<float>(100);
    a.resize(ts::shape{100});
    auto& b = pool.acquire<float>(10);
    b.resize(ts::shape{10});
    pool.release(a);
    pool.release(b);
    CHECK(&pool.acquire<float>(8) == &b);    // smallest slot that holds the request
    CHECK(&pool.acquire<float>(50) == &a);
    pool.release(a);
    pool.release(b);
    // A long-lived request does not pin a slot more than twice its size: the slot is emptied;
    // a short one borrows it as it is.
    nn::scratch_pool<cpu> big;
    auto& s = big.acquire<float>(100000);
    s.resize(ts::shape{100000});
    big.release(s);
    CHECK(&big.acquire<float>(1000) == &s);
    CHECK(s.storage().capacity() >= 100000);
    big.release(s);
    CHECK(&big.acquire<float>(1000, true) == &s);
    CHECK(s.storage().capacity() == 0);
    big.release(s);
    // donate parks memory in the pool, take gets it back.
    ts::tensor<float> t(ts::shape{300});
    pool.donate(t);
    CHECK(t.storage().empty());
    CHECK(pool.capacity<float>() >= 300);
    pool.take(t, 300);
    CHECK(t.storage().capacity() >= 300);
    // The shared workspace only grows.
    float* w = pool.workspace<float>(64);
    CHECK(pool.workspace<float>(32) == w);
}

TEST_CASE("conv2d: forward_into, backward_add_into, rebind_input and a shared workspace") {
    ts::rng ra(2), rb(2);
    auto c = conv_cfg(3, 2, 3);
    nn::conv2d::bind<cpu, double> plain(c, ra);
    c.shared_workspace = true;
    nn::conv2d::bind<cpu, double> shared(c, rb);
    nn::context<cpu> ctx;
    const auto x = random_tensor<double>(ts::shape{2, 3, 5, 4}, 1);
    ts::tensor<double> y;
    shared.forward_into(ctx, x, y);
    CHECK(max_rel_diff(y.to_vector(), plain.forward(ctx, x).to_vector()) <= 1e-14);
    const auto dy = random_tensor<double>(y.shape(), 3);
    const auto dx = plain.backward(ctx, dy).to_vector();
    const auto copy = x;
    shared.rebind_input(copy);
    ts::tensor<double> acc(x.shape(), 1.0);
    shared.backward_add_into(ctx, dy, acc);
    std::vector<double> expect(dx);
    for (auto& v : expect) v += 1.0;
    CHECK(max_rel_diff(acc.to_vector(), expect) <= 1e-14);
    CHECK_THROWS_AS(shared.rebind_input(ts::tensor<double>(ts::shape{1, 3, 5, 4})), ts::error);
}

TEST_CASE("azad2025 network: the fused preset equals the plain composition on a small input") {
    using stem = ts::methods::azad_stem_paper;
    using fused_net = ts::methods::azad_network<stem>;
    using old_block = nn::sequential<nn::inception, nn::relu, nn::batch_norm>;
    using old_net = nn::sequential<nn::sequential<nn::conv2d, nn::batch_norm, nn::relu>, old_block, old_block,
                                   nn::repeat<old_block>, nn::conv2d, nn::batch_norm>;
    ts::methods::azad2025_config c;
    c.channels = 6;
    c.inception_blocks = 3;
    const auto fcfg = ts::methods::azad_network_config<stem>(c);
    const auto& b3a = std::get<1>(fcfg).block;
    const auto& b3b = std::get<2>(fcfg).block;
    const auto& b3c = std::get<3>(fcfg).block.block;
    const old_net::config ocfg{{std::get<0>(fcfg).conv, {.channels = 15}, {}},
                               {b3a, {}, {.channels = b3a.out_channels()}},
                               {b3b, {}, {.channels = b3b.out_channels()}},
                               {.count = 2, .block = {b3c, {}, {.channels = b3c.out_channels()}}},
                               std::get<4>(fcfg).conv,
                               {.channels = 6}};
    ts::rng ra(8), rb(8);
    old_net::bind<cpu, double> ref(ocfg, ra);
    fused_net::bind<cpu, double> fused(fcfg, rb);
    ref.set_input_grad_needed(false);
    fused.set_input_grad_needed(false);
    same_forward_backward(ref, fused, ts::shape{1, 3, 5, 4}, 1e-9, false);
    const auto gr = all_grads(ref), gf = all_grads(fused);
    REQUIRE(gr.size() == gf.size());
    double sr = 0, sf = 0;
    for (auto v : gr) sr += std::abs(v);
    for (auto v : gf) sf += std::abs(v);
    CHECK(std::abs(sr - sf) <= 1e-9 * sr);
    // The stem (first 4 tensors) and the head (last 4) are in the same order in both.
    const auto pr = ref.parameters(), pf = fused.parameters();
    for (std::size_t k : {std::size_t(0), std::size_t(1), std::size_t(2), std::size_t(3)}) {
        CHECK(max_rel_diff(pf[k].grad->to_vector(), pr[k].grad->to_vector()) <= 1e-9);
        CHECK(max_rel_diff(pf[pf.size() - 1 - k].grad->to_vector(), pr[pr.size() - 1 - k].grad->to_vector()) <= 1e-9);
    }
}
