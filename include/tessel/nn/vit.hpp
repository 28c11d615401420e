// tessel/nn/vit.hpp: a vision transformer (DINO / timm `VisionTransformer`) for inference, and
// its patch-token features.
//
// Blocks, each usable alone: patch embedding (a k x k convolution with any stride, as an im2col
// and one GEMM), a learned positional embedding resized bicubically to the token grid
// (ops/bicubic.hpp, DINO's interpolate_pos_encoding with the +0.1 of its feature extractor),
// LayerNorm (nn/layer_norm.hpp), multi-head self-attention (nn/attention.hpp), an MLP with exact
// GELU, and the pre-norm block x += Attn(LN1(x)); x += MLP(LN2(x)) (with DINOv2's optional layer
// scale). vit_model runs them on a [3, H, W] image and returns the `key` facet of a block
// (METHODS.md §6.2): LN1 of that block's input projected by the key rows of qkv, the CLS token
// dropped, the heads interleaved per channel (f[j * heads + h] = k_h[j]) as the dino-vit-features
// extractor lays them out. Blocks after the chosen one are not run.
//
// Depth, width, patch size, MLP width and the trained positional grid are read from the tensors
// (load_vit); the head count cannot be (qkv is [3D, D] for any count), so it defaults to D / 64,
// the head width of every DINO and DINOv2 model, and can be given. Weights come from the user
// (io/safetensors.hpp); random_vit draws seeded weights for tests and benchmarks.
#pragma once
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tessel/backend/parallel.hpp"
#include "tessel/core/random.hpp"
#include "tessel/core/tensor.hpp"
#include "tessel/io/safetensors.hpp"
#include "tessel/nn/activation.hpp"
#include "tessel/nn/attention.hpp"
#include "tessel/nn/layer_norm.hpp"
#include "tessel/ops/bicubic.hpp"
#include "tessel/ops/gemm.hpp"
#include "tessel/ops/im2col.hpp"

namespace tessel::nn {

/// The weights of one pre-norm transformer block.
struct vit_block_weights {
    tensor<float> norm1_weight, norm1_bias, norm2_weight, norm2_bias;
    attention_weights<float> attn;
    tensor<float> fc1_weight, fc1_bias, fc2_weight, fc2_bias;
    tensor<float> ls1, ls2;  ///< DINOv2 layer scale ([D]); empty when absent
};

/// A ViT's weights and the sizes read from them.
struct vit_weights {
    index_t dim = 0, depth = 0, heads = 0, patch = 0, mlp_hidden = 0, in_channels = 3;
    index_t pos_grid = 0;  ///< side of the trained positional grid (28 for ViT-S/8 at 224 px)
    double ln_eps = 1e-6;
    tensor<float> patch_weight, patch_bias;  ///< [D, C, p, p], [D]
    tensor<float> cls_token;                 ///< [1, 1, D]
    tensor<float> pos_embed;                 ///< [1, 1 + g*g, D]
    std::vector<vit_block_weights> blocks;
    tensor<float> norm_weight, norm_bias;    ///< final LayerNorm (not used by the key features)
};

/// The tensor names and shapes of a DINO ViT (150 for ViT-S/8: 4 + 12 per block + 2).
inline std::vector<std::pair<std::string, shape>> vit_tensor_shapes(index_t depth = 12, index_t dim = 384,
                                                                    index_t patch = 8, index_t pos_grid = 28,
                                                                    index_t mlp_hidden = 1536, index_t in_channels = 3) {
    std::vector<std::pair<std::string, shape>> v{{"cls_token", shape{1, 1, dim}},
                                                 {"pos_embed", shape{1, 1 + pos_grid * pos_grid, dim}},
                                                 {"patch_embed.proj.weight", shape{dim, in_channels, patch, patch}},
                                                 {"patch_embed.proj.bias", shape{dim}}};
    for (index_t i = 0; i < depth; ++i) {
        const std::string b = "blocks." + std::to_string(i) + ".";
        v.insert(v.end(), {{b + "norm1.weight", shape{dim}},
                           {b + "norm1.bias", shape{dim}},
                           {b + "attn.qkv.weight", shape{3 * dim, dim}},
                           {b + "attn.qkv.bias", shape{3 * dim}},
                           {b + "attn.proj.weight", shape{dim, dim}},
                           {b + "attn.proj.bias", shape{dim}},
                           {b + "norm2.weight", shape{dim}},
                           {b + "norm2.bias", shape{dim}},
                           {b + "mlp.fc1.weight", shape{mlp_hidden, dim}},
                           {b + "mlp.fc1.bias", shape{mlp_hidden}},
                           {b + "mlp.fc2.weight", shape{dim, mlp_hidden}},
                           {b + "mlp.fc2.bias", shape{dim}}});
    }
    v.emplace_back("norm.weight", shape{dim});
    v.emplace_back("norm.bias", shape{dim});
    return v;
}

/// Builds a ViT from named tensors, reading its sizes from them; every tensor is checked for
/// presence and shape (errors name the file and the tensor). heads = 0: dim / 64.
inline vit_weights load_vit(const io::weight_map& m, index_t heads = 0) {
    constexpr auto where = "tessel::nn::load_vit";
    vit_weights w;
    const tensor<float>& pw = m.require("patch_embed.proj.weight");
    expects(pw.rank() == 4 && pw.dim(2) == pw.dim(3) && pw.dim(2) >= 1, where, "'", m.file(),
            "': patch_embed.proj.weight must be [D, C, p, p], got ", pw.shape().str());
    w.dim = pw.dim(0);
    w.in_channels = pw.dim(1);
    w.patch = pw.dim(2);
    w.heads = heads > 0 ? heads : w.dim / 64;
    expects(w.heads >= 1 && w.dim % w.heads == 0, where, "'", m.file(), "': width ", w.dim, " is not divisible by ",
            w.heads, " heads (give the head count)");
    while (m.contains("blocks." + std::to_string(w.depth) + ".norm1.weight")) ++w.depth;
    expects(w.depth >= 1, where, "'", m.file(), "' has no tensor 'blocks.0.norm1.weight' (is it a ViT state dict?)");
    const tensor<float>& pos = m.require("pos_embed");
    expects(pos.rank() == 3 && pos.dim(0) == 1 && pos.dim(2) == w.dim && pos.dim(1) >= 2, where, "'", m.file(),
            "': tensor 'pos_embed' has shape ", pos.shape().str(), ", expected [1, 1 + g*g, ", w.dim, "]");
    w.pos_grid = static_cast<index_t>(std::llround(std::sqrt(static_cast<double>(pos.dim(1) - 1))));
    expects(w.pos_grid * w.pos_grid == pos.dim(1) - 1, where, "'", m.file(), "': tensor 'pos_embed' has ",
            pos.dim(1) - 1, " patch positions, not a square grid");
    const tensor<float>& fc1 = m.require("blocks.0.mlp.fc1.weight");
    expects(fc1.rank() == 2, where, "'", m.file(), "': tensor 'blocks.0.mlp.fc1.weight' has shape ", fc1.shape().str());
    w.mlp_hidden = fc1.dim(0);
    for (const auto& [name, s] : vit_tensor_shapes(w.depth, w.dim, w.patch, w.pos_grid, w.mlp_hidden, w.in_channels))
        (void)m.require(name, s);
    w.patch_weight = pw;
    w.patch_bias = m.require("patch_embed.proj.bias");
    w.cls_token = m.require("cls_token");
    w.pos_embed = pos;
    w.norm_weight = m.require("norm.weight");
    w.norm_bias = m.require("norm.bias");
    for (index_t i = 0; i < w.depth; ++i) {
        const std::string b = "blocks." + std::to_string(i) + ".";
        vit_block_weights k;
        k.norm1_weight = m.require(b + "norm1.weight");
        k.norm1_bias = m.require(b + "norm1.bias");
        k.norm2_weight = m.require(b + "norm2.weight");
        k.norm2_bias = m.require(b + "norm2.bias");
        k.attn.qkv_weight = m.require(b + "attn.qkv.weight");
        k.attn.qkv_bias = m.require(b + "attn.qkv.bias");
        k.attn.proj_weight = m.require(b + "attn.proj.weight");
        k.attn.proj_bias = m.require(b + "attn.proj.bias");
        k.attn.heads = w.heads;
        k.fc1_weight = m.require(b + "mlp.fc1.weight");
        k.fc1_bias = m.require(b + "mlp.fc1.bias");
        k.fc2_weight = m.require(b + "mlp.fc2.weight");
        k.fc2_bias = m.require(b + "mlp.fc2.bias");
        if (m.contains(b + "ls1.gamma")) k.ls1 = m.require(b + "ls1.gamma", shape{w.dim});
        if (m.contains(b + "ls2.gamma")) k.ls2 = m.require(b + "ls2.gamma", shape{w.dim});
        w.blocks.push_back(std::move(k));
    }
    return w;
}

/// The tensors of a ViT as a weight_map (for writing a converted or random model to a file).
inline io::weight_map vit_to_weight_map(const vit_weights& w) {
    io::weight_map m("(memory)");
    m.insert("patch_embed.proj.weight", w.patch_weight);
    m.insert("patch_embed.proj.bias", w.patch_bias);
    m.insert("cls_token", w.cls_token);
    m.insert("pos_embed", w.pos_embed);
    m.insert("norm.weight", w.norm_weight);
    m.insert("norm.bias", w.norm_bias);
    for (index_t i = 0; i < w.depth; ++i) {
        const std::string b = "blocks." + std::to_string(i) + ".";
        const auto& k = w.blocks[static_cast<std::size_t>(i)];
        m.insert(b + "norm1.weight", k.norm1_weight);
        m.insert(b + "norm1.bias", k.norm1_bias);
        m.insert(b + "norm2.weight", k.norm2_weight);
        m.insert(b + "norm2.bias", k.norm2_bias);
        m.insert(b + "attn.qkv.weight", k.attn.qkv_weight);
        m.insert(b + "attn.qkv.bias", k.attn.qkv_bias);
        m.insert(b + "attn.proj.weight", k.attn.proj_weight);
        m.insert(b + "attn.proj.bias", k.attn.proj_bias);
        m.insert(b + "mlp.fc1.weight", k.fc1_weight);
        m.insert(b + "mlp.fc1.bias", k.fc1_bias);
        m.insert(b + "mlp.fc2.weight", k.fc2_weight);
        m.insert(b + "mlp.fc2.bias", k.fc2_bias);
    }
    return m;
}

/// Sizes of a random ViT.
struct vit_shape {
    index_t dim = 384, depth = 12, heads = 6, patch = 8, mlp_hidden = 1536, pos_grid = 28, in_channels = 3;
};

/// Seeded random weights: every tensor truncated normal (std 0.02, cut at +-2 std, as DINO's
/// trunc_normal_ initialises its linear layers), LayerNorm gains 1 + that. DINO itself starts
/// biases at 0 and gains at 1; drawing them too makes a test reach every term.
inline vit_weights random_vit(const vit_shape& s, rng& gen) {
    auto fill = [&](const shape& sh, double offset = 0.0) {
        tensor<float> t(sh);
        for (index_t i = 0; i < t.numel(); ++i) {
            double v;
            do v = gen.normal(); while (std::abs(v) > 2.0);
            t[i] = static_cast<float>(offset + 0.02 * v);
        }
        return t;
    };
    io::weight_map m("(random)");
    for (const auto& [name, sh] : vit_tensor_shapes(s.depth, s.dim, s.patch, s.pos_grid, s.mlp_hidden, s.in_channels)) {
        const bool gain = name.find("norm") != std::string::npos && name.ends_with(".weight");
        m.insert(name, fill(sh, gain ? 1.0 : 0.0));
    }
    return load_vit(m, s.heads);
}

/// The positional embedding for a gh x gw token grid: the CLS entry unchanged, the trained
/// g x g patch grid resized bicubically by (gh + 0.1) / g and (gw + 0.1) / g (DINO's feature
/// extractor), as [1 + gh*gw, D]. The trained grid is returned as is when it already fits.
inline tensor<float> interpolate_pos_embed(const tensor<float>& pos_embed, index_t gh, index_t gw) {
    constexpr auto where = "tessel::nn::interpolate_pos_embed";
    expects(pos_embed.rank() == 3 && pos_embed.dim(0) == 1 && pos_embed.dim(1) >= 2, where,
            "expects [1, 1 + g*g, D], got ", pos_embed.shape().str());
    const index_t D = pos_embed.dim(2), N = pos_embed.dim(1) - 1;
    const auto g = static_cast<index_t>(std::llround(std::sqrt(static_cast<double>(N))));
    expects(g * g == N, where, N, " patch positions are not a square grid");
    expects(gh >= 1 && gw >= 1, where, "token grid must be positive, got ", gh, "x", gw);
    tensor<float> out(shape{1 + gh * gw, D});
    for (index_t c = 0; c < D; ++c) out(0, c) = pos_embed(0, 0, c);
    if (gh == g && gw == g) {
        std::copy(pos_embed.data() + D, pos_embed.data() + (1 + N) * D, out.data() + D);
        return out;
    }
    tensor<float> grid(shape{g, g, D});
    std::copy(pos_embed.data() + D, pos_embed.data() + (1 + N) * D, grid.data());
    const double sh = (static_cast<double>(gh) + 0.1) / static_cast<double>(g);
    const double sw = (static_cast<double>(gw) + 0.1) / static_cast<double>(g);
    const tensor<float> r = ops::resize_bicubic_hwc(grid, sh, sw);
    expects(r.dim(0) == gh && r.dim(1) == gw, where, "bicubic resize gave ", r.dim(0), "x", r.dim(1), " for ", gh,
            "x", gw);
    std::copy(r.data(), r.data() + r.numel(), out.data() + D);
    return out;
}

namespace detail {
template <class Op>
struct apply_inplace_fn {
    Op op;
    float* x;
    TESSEL_HD void operator()(index_t i) const { x[i] = op.value(x[i]); }
};
struct residual_add_fn {  // x += (scale ? scale[c] : 1) * y
    float* x;
    const float* y;
    const float* scale;
    index_t D;
    TESSEL_HD void operator()(index_t i) const { x[i] += scale ? scale[i % D] * y[i] : y[i]; }
};
}  // namespace detail

/// Token grid of a k x k patch embedding with stride s on an H x W image.
inline std::pair<index_t, index_t> vit_token_grid(index_t H, index_t W, index_t patch, index_t stride) {
    expects(patch >= 1 && stride >= 1, "tessel::nn::vit_token_grid", "patch ", patch, " and stride ", stride,
            " must be >= 1");
    expects(H >= patch && W >= patch, "tessel::nn::vit_token_grid", "image ", W, "x", H, " is smaller than the ", patch,
            "-pixel patch");
    return {(H - patch) / stride + 1, (W - patch) / stride + 1};
}

/// A ViT bound to backend B for inference (cpu_serial or cpu_omp; the weights stay in host memory).
template <Backend B>
    requires HostBackend<B>
class vit_model {
public:
    explicit vit_model(vit_weights w) : m_w(std::move(w)) {}
    [[nodiscard]] const vit_weights& weights() const noexcept { return m_w; }

    /// Patch tokens [gh*gw, D] of x [C, H, W] (row-major grid), the CLS token not included.
    tensor<float, B> patch_embed(const tensor<float, B>& x, index_t stride) {
        constexpr auto where = "tessel::nn::vit_model::patch_embed";
        expects(x.rank() == 3 && x.dim(0) == m_w.in_channels, where, "expects a [", m_w.in_channels,
                ", H, W] image, got ", x.shape().str());
        ops::conv_geometry g{.channels = x.dim(0), .height = x.dim(1), .width = x.dim(2), .kernel = m_w.patch,
                             .stride = stride};
        g.finish(where);
        const index_t T = g.out_height * g.out_width, K = g.col_rows(), D = m_w.dim;
        tensor<float, B> col(shape{K, T});
        ops::im2col(B{}, g, x.data(), 0, g.out_height, col.data());
        tensor<float, B> tok(shape{T, D});
        ops::gemm(B{}, ops::gemm_args<float>{.trans_a = ops::op::trans, .trans_b = ops::op::trans, .m = T, .n = D,
                                             .k = K, .a = col.data(), .lda = T, .b = m_w.patch_weight.data(),
                                             .ldb = K, .c = tok.data(), .ldc = D});
        parallel_for(B{}, T * D, detail::add_row_bias_fn<float>{tok.data(), m_w.patch_bias.data(), D});
        return tok;
    }

    /// One pre-norm block in place on tokens x [T, D].
    void block(const vit_block_weights& k, tensor<float, B>& x) {
        const index_t D = m_w.dim, T = x.dim(0);
        layer_norm(x, k.norm1_weight, k.norm1_bias, m_w.ln_eps, m_h);
        m_attn.forward(k.attn, m_h, m_y);
        parallel_for(B{}, T * D, detail::residual_add_fn{x.data(), m_y.data(), k.ls1.empty() ? nullptr : k.ls1.data(), D});
        layer_norm(x, k.norm2_weight, k.norm2_bias, m_w.ln_eps, m_h);
        mlp(k, m_h, m_y);
        parallel_for(B{}, T * D, detail::residual_add_fn{x.data(), m_y.data(), k.ls2.empty() ? nullptr : k.ls2.data(), D});
    }

    /// fc2(GELU(fc1(x))).
    void mlp(const vit_block_weights& k, const tensor<float, B>& x, tensor<float, B>& y) {
        linear_forward(x, k.fc1_weight, k.fc1_bias, m_hidden);
        parallel_for(B{}, m_hidden.numel(),
                     detail::apply_inplace_fn<detail::gelu_op>{detail::gelu_op({}), m_hidden.data()});
        linear_forward(m_hidden, k.fc2_weight, k.fc2_bias, y);
    }

    /// The tokens [1 + gh*gw, D] entering block `layer` (CLS first), for x [C, H, W].
    tensor<float, B> tokens_before(const tensor<float, B>& x, index_t stride, index_t layer) {
        constexpr auto where = "tessel::nn::vit_model";
        expects(layer >= 0 && layer <= m_w.depth, where, "layer ", layer, " outside 0..", m_w.depth);
        const auto [gh, gw] = vit_token_grid(x.dim(1), x.dim(2), m_w.patch, stride);
        m_grid = {gh, gw};
        const tensor<float, B> patches = patch_embed(x, stride);
        const index_t D = m_w.dim, T = 1 + gh * gw;
        const tensor<float> pos = interpolate_pos_embed(m_w.pos_embed, gh, gw);
        tensor<float, B> tok(shape{T, D});
        std::vector<float> host(static_cast<std::size_t>(T * D));
        const std::vector<float> p = patches.to_vector();
        for (index_t c = 0; c < D; ++c) host[static_cast<std::size_t>(c)] = m_w.cls_token[c] + pos[c];
        for (index_t i = D; i < T * D; ++i)
            host[static_cast<std::size_t>(i)] = p[static_cast<std::size_t>(i - D)] + pos[i];
        tok.assign(shape{T, D}, host.begin(), host.end());
        for (index_t l = 0; l < layer; ++l) block(m_w.blocks[static_cast<std::size_t>(l)], tok);
        return tok;
    }

    /// The key facet of block `layer` (default: the last), [gh*gw, D], heads interleaved
    /// (f[j * heads + h] = k_h[j]), CLS dropped. grid() then holds (gh, gw).
    tensor<float, B> key_features(const tensor<float, B>& x, index_t stride, index_t layer = -1) {
        if (layer < 0) layer = m_w.depth - 1;
        expects(layer < m_w.depth, "tessel::nn::vit_model::key_features", "layer ", layer, " outside 0..",
                m_w.depth - 1);
        tensor<float, B> tok = tokens_before(x, stride, layer);
        const auto& k = m_w.blocks[static_cast<std::size_t>(layer)];
        layer_norm(tok, k.norm1_weight, k.norm1_bias, m_w.ln_eps, m_h);
        // Only the key rows of qkv (rows D .. 2D - 1 of the weight, a contiguous block).
        const index_t D = m_w.dim, T = tok.dim(0), H = m_w.heads, d = D / H, N = T - 1;
        tensor<float, B> keys(shape{N, D});
        m_y.resize(shape{N, D});
        ops::gemm(B{}, ops::gemm_args<float>{.trans_b = ops::op::trans, .m = N, .n = D, .k = D, .a = m_h.data() + D,
                                             .lda = D, .b = k.attn.qkv_weight.data() + D * D, .ldb = D,
                                             .c = m_y.data(), .ldc = D});
        parallel_for(B{}, N * D, detail::add_row_bias_fn<float>{m_y.data(), k.attn.qkv_bias.data() + D, D});
        parallel_for(B{}, N * D, interleave_fn{m_y.data(), keys.data(), D, H, d});
        return keys;
    }
    [[nodiscard]] std::pair<index_t, index_t> grid() const noexcept { return m_grid; }

private:
    struct interleave_fn {  // out[n, j*H + h] = in[n, h*d + j]
        const float* in;
        float* out;
        index_t D, H, d;
        TESSEL_HD void operator()(index_t i) const {
            const index_t n = i / D, c = i % D, h = c / d, j = c % d;
            out[n * D + j * H + h] = in[i];
        }
    };
    vit_weights m_w;
    multi_head_attention<float, B> m_attn;
    tensor<float, B> m_h, m_y, m_hidden;
    std::pair<index_t, index_t> m_grid{0, 0};
};

}  // namespace tessel::nn
