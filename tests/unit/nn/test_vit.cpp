// nn/vit.hpp and its blocks (layer_norm, attention, gelu, bicubic positional resize) against
// naive references written here: explicit loops in double for the patch convolution, LayerNorm,
// per-head attention, erf GELU, and a direct evaluation of Keys' cubic kernel for the positional
// grid (METHODS.md §6.2 tests 2 and 3). Weights are seeded random; no pretrained file is needed.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "support/backend_test.hpp"
#include "tessel/nn/vit.hpp"

namespace ts = tessel;

namespace {

using mat = std::vector<std::vector<double>>;

mat tokens_of(const ts::tensor<float>& t) {
    mat m(static_cast<std::size_t>(t.dim(0)), std::vector<double>(static_cast<std::size_t>(t.dim(1))));
    for (ts::index_t i = 0; i < t.dim(0); ++i)
        for (ts::index_t j = 0; j < t.dim(1); ++j) m[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)] = t(i, j);
    return m;
}

mat ref_layer_norm(const mat& x, const ts::tensor<float>& g, const ts::tensor<float>& b, double eps) {
    mat y = x;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const std::size_t D = x[i].size();
        double mean = 0, var = 0;
        for (double v : x[i]) mean += v;
        mean /= static_cast<double>(D);
        for (double v : x[i]) var += (v - mean) * (v - mean);
        var /= static_cast<double>(D);
        for (std::size_t j = 0; j < D; ++j)
            y[i][j] = (x[i][j] - mean) / std::sqrt(var + eps) * g[static_cast<ts::index_t>(j)] + b[static_cast<ts::index_t>(j)];
    }
    return y;
}

mat ref_linear(const mat& x, const ts::tensor<float>& w, const ts::tensor<float>& b) {
    const ts::index_t O = w.dim(0), I = w.dim(1);
    mat y(x.size(), std::vector<double>(static_cast<std::size_t>(O)));
    for (std::size_t r = 0; r < x.size(); ++r)
        for (ts::index_t o = 0; o < O; ++o) {
            double s = b[o];
            for (ts::index_t i = 0; i < I; ++i) s += static_cast<double>(w(o, i)) * x[r][static_cast<std::size_t>(i)];
            y[r][static_cast<std::size_t>(o)] = s;
        }
    return y;
}

mat ref_attention(const mat& x, const ts::nn::attention_weights<float>& w) {
    const std::size_t T = x.size(), D = x[0].size(), H = static_cast<std::size_t>(w.heads), d = D / H;
    const mat qkv = ref_linear(x, w.qkv_weight, w.qkv_bias);
    mat o(T, std::vector<double>(D));
    for (std::size_t h = 0; h < H; ++h)
        for (std::size_t i = 0; i < T; ++i) {
            std::vector<double> s(T);
            double m = -1e300;
            for (std::size_t j = 0; j < T; ++j) {
                double dot = 0;
                for (std::size_t c = 0; c < d; ++c) dot += qkv[i][h * d + c] * qkv[j][D + h * d + c];
                s[j] = dot / std::sqrt(static_cast<double>(d));
                m = std::max(m, s[j]);
            }
            double z = 0;
            for (double& v : s) z += (v = std::exp(v - m));
            for (std::size_t c = 0; c < d; ++c) {
                double acc = 0;
                for (std::size_t j = 0; j < T; ++j) acc += s[j] / z * qkv[j][2 * D + h * d + c];
                o[i][h * d + c] = acc;
            }
        }
    return ref_linear(o, w.proj_weight, w.proj_bias);
}

double ref_gelu(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }

/// Keys' cubic convolution kernel W(s) for A = -0.75, evaluated directly.
double keys_kernel(double s) {
    const double A = -0.75, a = std::abs(s);
    if (a <= 1) return (A + 2) * a * a * a - (A + 3) * a * a + 1;
    if (a < 2) return A * a * a * a - 5 * A * a * a + 8 * A * a - 4 * A;
    return 0;
}
/// PyTorch-style bicubic sample of grid[., ., c] at source coordinate (sy, sx), borders clamped.
double ref_bicubic(const ts::tensor<float>& grid, double sy, double sx, ts::index_t c) {
    const ts::index_t G = grid.dim(0);
    const double fy = std::floor(sy), fx = std::floor(sx);
    double acc = 0;
    for (int i = -1; i <= 2; ++i)
        for (int j = -1; j <= 2; ++j) {
            const auto yy = std::clamp<ts::index_t>(static_cast<ts::index_t>(fy) + i, 0, G - 1);
            const auto xx = std::clamp<ts::index_t>(static_cast<ts::index_t>(fx) + j, 0, G - 1);
            acc += keys_kernel(sy - (fy + i)) * keys_kernel(sx - (fx + j)) * grid(yy, xx, c);
        }
    return acc;
}

/// The whole key-feature extractor, naively: conv patch embedding, positional grid, blocks, keys.
mat ref_keys(const ts::nn::vit_weights& w, const ts::tensor<float>& img, ts::index_t stride, ts::index_t layer) {
    const ts::index_t C = img.dim(0), H = img.dim(1), W = img.dim(2), p = w.patch, D = w.dim;
    const ts::index_t gh = (H - p) / stride + 1, gw = (W - p) / stride + 1, G = w.pos_grid;
    ts::tensor<float> grid(ts::shape{G, G, D});
    for (ts::index_t i = 0; i < G * G * D; ++i) grid[i] = w.pos_embed[D + i];
    mat x(static_cast<std::size_t>(1 + gh * gw), std::vector<double>(static_cast<std::size_t>(D)));
    for (ts::index_t c = 0; c < D; ++c) x[0][static_cast<std::size_t>(c)] = static_cast<double>(w.cls_token[c]) + w.pos_embed[c];
    for (ts::index_t ty = 0; ty < gh; ++ty)
        for (ts::index_t tx = 0; tx < gw; ++tx)
            for (ts::index_t o = 0; o < D; ++o) {
                double s = w.patch_bias[o];
                for (ts::index_t c = 0; c < C; ++c)
                    for (ts::index_t ky = 0; ky < p; ++ky)
                        for (ts::index_t kx = 0; kx < p; ++kx)
                            s += static_cast<double>(w.patch_weight(o, c, ky, kx)) * img(c, ty * stride + ky, tx * stride + kx);
                const double sy = (ty + 0.5) * G / (gh + 0.1) - 0.5, sx = (tx + 0.5) * G / (gw + 0.1) - 0.5;
                const double pos = (gh == G && gw == G) ? grid(ty, tx, o) : ref_bicubic(grid, sy, sx, o);
                x[static_cast<std::size_t>(1 + ty * gw + tx)][static_cast<std::size_t>(o)] = s + pos;
            }
    for (ts::index_t l = 0; l < layer; ++l) {
        const auto& b = w.blocks[static_cast<std::size_t>(l)];
        const mat a = ref_attention(ref_layer_norm(x, b.norm1_weight, b.norm1_bias, 1e-6), b.attn);
        for (std::size_t i = 0; i < x.size(); ++i)
            for (std::size_t j = 0; j < x[i].size(); ++j) x[i][j] += a[i][j];
        mat h = ref_linear(ref_layer_norm(x, b.norm2_weight, b.norm2_bias, 1e-6), b.fc1_weight, b.fc1_bias);
        for (auto& r : h)
            for (auto& v : r) v = ref_gelu(v);
        const mat m = ref_linear(h, b.fc2_weight, b.fc2_bias);
        for (std::size_t i = 0; i < x.size(); ++i)
            for (std::size_t j = 0; j < x[i].size(); ++j) x[i][j] += m[i][j];
    }
    const auto& b = w.blocks[static_cast<std::size_t>(layer)];
    const mat qkv = ref_linear(ref_layer_norm(x, b.norm1_weight, b.norm1_bias, 1e-6), b.attn.qkv_weight, b.attn.qkv_bias);
    const ts::index_t Hh = w.heads, d = D / Hh;
    mat f(x.size() - 1, std::vector<double>(static_cast<std::size_t>(D)));
    for (std::size_t n = 1; n < x.size(); ++n)
        for (ts::index_t h = 0; h < Hh; ++h)
            for (ts::index_t j = 0; j < d; ++j)
                f[n - 1][static_cast<std::size_t>(j * Hh + h)] = qkv[n][static_cast<std::size_t>(D + h * d + j)];
    return f;
}

ts::tensor<float> random_image(ts::index_t H, ts::index_t W, std::uint64_t seed) {
    ts::rng g(seed);
    ts::tensor<float> x(ts::shape{3, H, W});
    for (ts::index_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(g.uniform(-2, 2));
    return x;
}

template <class B>
void vit_key_parity() {
    // ViT width 24 with 3 heads of 8, two blocks, patch 8: a 32 x 32 image at stride 4 gives the
    // 7 x 7 grid of METHODS.md §6.2, with the 4 x 4 trained grid resized (scale 7.1 / 4).
    ts::rng gen(5);
    const auto w = ts::nn::random_vit({.dim = 24, .depth = 3, .heads = 3, .patch = 8, .mlp_hidden = 40, .pos_grid = 4}, gen);
    const auto img = random_image(32, 32, 9);
    for (ts::index_t layer : {0, 2}) {
        ts::nn::vit_model<B> vit(w);
        ts::tensor<float, B> x;
        x.assign(img.shape(), img.data(), img.data() + img.numel());
        const auto got = vit.key_features(x, 4, layer);
        CHECK(got.shape() == ts::shape{49, 24});
        CHECK(vit.grid() == std::pair<ts::index_t, ts::index_t>{7, 7});
        const mat want = ref_keys(w, img, 4, layer);
        double worst = 0, scale = 0;
        for (ts::index_t i = 0; i < 49; ++i)
            for (ts::index_t j = 0; j < 24; ++j) {
                worst = std::max(worst, std::abs(got(i, j) - want[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]));
                scale = std::max(scale, std::abs(want[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]));
            }
        CHECK(scale > 0.01);
        CHECK(worst < 2e-5 * std::max(1.0, scale));
    }
    // Stride equal to the patch (no overlap), odd non-square image (5 x 3 grid), and the trained
    // grid used as is when it fits exactly (here 4 x 4 at 32 x 32, stride 8).
    for (auto [H, W, s] : {std::tuple<ts::index_t, ts::index_t, ts::index_t>{43, 27, 8}, {32, 32, 8}, {35, 22, 3}}) {
        const auto im = random_image(H, W, 3);
        ts::nn::vit_model<B> vit(w);
        ts::tensor<float, B> x;
        x.assign(im.shape(), im.data(), im.data() + im.numel());
        const auto got = vit.key_features(x, s, 1);
        const mat want = ref_keys(w, im, s, 1);
        REQUIRE(got.dim(0) == static_cast<ts::index_t>(want.size()));
        double worst = 0;
        for (ts::index_t i = 0; i < got.dim(0); ++i)
            for (ts::index_t j = 0; j < 24; ++j)
                worst = std::max(worst, std::abs(got(i, j) - want[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]));
        CHECK(worst < 2e-5);
    }
}

}  // namespace

TESSEL_BACKEND_TEST("vit: key features equal a naive reference (LN, per-head attention, erf GELU, bicubic grid)",
                    vit_key_parity)

TEST_CASE("vit: attention in score bands of 1, 5 and all rows equals the naive per-head attention") {
    ts::rng gen(3);
    const auto w = ts::nn::random_vit({.dim = 16, .depth = 1, .heads = 4, .patch = 2, .mlp_hidden = 8, .pos_grid = 2}, gen);
    ts::tensor<float> x(ts::shape{13, 16});
    for (ts::index_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(gen.uniform(-3, 3));
    const mat want = ref_attention(tokens_of(x), w.blocks[0].attn);
    for (ts::index_t band : {1, 5, 13, 100}) {
        ts::nn::multi_head_attention<float> a;
        a.band_rows = band;
        ts::tensor<float> y;
        a.forward(w.blocks[0].attn, x, y);
        double worst = 0;
        for (ts::index_t i = 0; i < 13; ++i)
            for (ts::index_t j = 0; j < 16; ++j)
                worst = std::max(worst, std::abs(y(i, j) - want[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]));
        CHECK(worst < 1e-5);
    }
}

TEST_CASE("vit: positional interpolation 28x28 -> 55x55 equals a direct bicubic evaluation; CLS untouched") {
    // A linear ramp per channel plus a curved term, so every weight of the kernel matters (with
    // A = -0.75 bicubic does not reproduce a ramp exactly, so the direct evaluation is the
    // reference); a constant field is reproduced everywhere (the weights sum to 1).
    const ts::index_t G = 28, D = 3;
    ts::tensor<float> pos(ts::shape{1, 1 + G * G, D});
    for (ts::index_t c = 0; c < D; ++c) pos(0, 0, c) = 100.f + static_cast<float>(c);
    for (ts::index_t y = 0; y < G; ++y)
        for (ts::index_t x = 0; x < G; ++x)
            for (ts::index_t c = 0; c < D; ++c)
                pos(0, 1 + y * G + x, c) = static_cast<float>(0.1 * x + 0.05 * (c + 1) * y + (c == 2 ? 0.01 * x * x : 0.0));
    const auto out = ts::nn::interpolate_pos_embed(pos, 55, 55);
    REQUIRE(out.shape() == ts::shape{1 + 55 * 55, D});
    for (ts::index_t c = 0; c < D; ++c) CHECK(out(0, c) == pos(0, 0, c));
    ts::tensor<float> grid(ts::shape{G, G, D});
    for (ts::index_t i = 0; i < G * G * D; ++i) grid[i] = pos[D + i];
    double worst = 0, const_err = 0;
    ts::tensor<float> flat(pos.shape(), 0.75f);
    const auto flat_out = ts::nn::interpolate_pos_embed(flat, 55, 55);
    for (ts::index_t i = 0; i < flat_out.numel(); ++i) const_err = std::max(const_err, std::abs(flat_out[i] - 0.75));
    for (ts::index_t y = 0; y < 55; ++y)
        for (ts::index_t x = 0; x < 55; ++x) {
            const double sy = (y + 0.5) * 28.0 / 55.1 - 0.5, sx = (x + 0.5) * 28.0 / 55.1 - 0.5;
            for (ts::index_t c = 0; c < D; ++c)
                worst = std::max(worst, std::abs(out(1 + y * 55 + x, c) - ref_bicubic(grid, sy, sx, c)));
        }
    CHECK(worst < 1e-5);
    CHECK(const_err < 1e-6);
    // The corner sample sits left of pixel 0 (src < 0), so the clamped border is reached.
    CHECK((0.5 * 28.0 / 55.1 - 0.5) < 0);
}

TEST_CASE("vit: a 224 x 224 image at stride 4 gives 3,025 x 384 key features (ViT-S/8 shapes)") {
    ts::rng gen(1);
    // Two blocks of full width: one full block at 3,026 tokens, then the keys of the second.
    const auto w = ts::nn::random_vit({.dim = 384, .depth = 2, .heads = 6, .patch = 8, .mlp_hidden = 1536, .pos_grid = 28}, gen);
    ts::nn::vit_model<ts::cpu_omp> vit(w);
    ts::tensor<float, ts::cpu_omp> x(ts::shape{3, 224, 224}, 0.5f);
    const auto f = vit.key_features(x, 4);
    CHECK(f.shape() == ts::shape{3025, 384});
    CHECK(vit.grid() == std::pair<ts::index_t, ts::index_t>{55, 55});
    bool finite = true;
    for (ts::index_t i = 0; i < f.numel(); ++i) finite = finite && std::isfinite(f[i]);
    CHECK(finite);
}

TEST_CASE("vit: invalid inputs are errors") {
    ts::rng gen(2);
    const auto w = ts::nn::random_vit({.dim = 16, .depth = 1, .heads = 2, .patch = 8, .mlp_hidden = 8, .pos_grid = 2}, gen);
    ts::nn::vit_model<ts::cpu_serial> vit(w);
    CHECK_THROWS_AS(vit.key_features(ts::tensor<float>(ts::shape{3, 7, 20}), 4), ts::error);   // smaller than a patch
    CHECK_THROWS_AS(vit.key_features(ts::tensor<float>(ts::shape{1, 16, 16}), 4), ts::error);  // one channel
    CHECK_THROWS_AS(vit.key_features(ts::tensor<float>(ts::shape{3, 16, 16}), 0), ts::error);  // stride 0
    CHECK_THROWS_AS(vit.key_features(ts::tensor<float>(ts::shape{3, 16, 16}), 4, 1), ts::error);  // no block 1
    ts::tensor<float> g(ts::shape{4}, 1.f), b(ts::shape{4}, 0.f), x(ts::shape{2, 4}), y;
    CHECK_THROWS_AS(ts::nn::layer_norm(x, g, b, 0.0, y), ts::error);
    CHECK_THROWS_AS(ts::nn::layer_norm(ts::tensor<float>(ts::shape{2, 5}), g, b, 1e-6, y), ts::error);
}
