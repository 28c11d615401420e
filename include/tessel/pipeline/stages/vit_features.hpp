// tessel/pipeline/stages/vit_features.hpp: patch-token features of a ViT (or of a file) as the
// node features of a pipeline (stages::node_features), for UnSegGNet (METHODS.md §6.1-6.2).
//
// With `weights` (a safetensors file the user converted, tools/convert_dino.py): the image is
// resized to resolution x resolution with Pillow's LANCZOS (ops/resize_lanczos.hpp), scaled to
// [0, 1], normalised with the ImageNet mean and std, and passed through the ViT with its patch
// stride set to `stride`; the features are the key facet of block `layer` (default the last),
// CLS dropped, heads interleaved (nn/vit.hpp): 3,025 x 384 for DINO ViT-S/8 at 224 px, stride 4.
// The weights are read once, at the first image, and kept for the next ones.
// With `features` instead: a precomputed N x D float32 matrix, either raw little-endian (D =
// feature_dim, N = file size / 4D, which must be a square grid) or a safetensors file holding a
// tensor "features" [N, D] (or [gh, gw, D]). The ViT is then skipped. Exactly one of the two
// must be given; neither is ever downloaded.
#pragma once
#include <cmath>
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>

#include "tessel/io/safetensors.hpp"
#include "tessel/nn/vit.hpp"
#include "tessel/ops/resize_lanczos.hpp"
#include "tessel/pipeline/stages/graph_cluster.hpp"
#include "tessel/pipeline/state.hpp"

namespace tessel::stages {

/// Which network of a file that holds both a DINO student and teacher to load.
enum class dino_network { any, student, teacher };

/// Reads a precomputed feature matrix (see the top of the file); returns it with its grid.
inline node_features<cpu_serial> read_feature_file(const std::string& path, index_t feature_dim) {
    constexpr auto where = "tessel::stages::read_feature_file";
    node_features<cpu_serial> out;
    auto square = [&](index_t n) {
        const auto g = static_cast<index_t>(std::llround(std::sqrt(static_cast<double>(n))));
        expects(g * g == n, where, "'", path, "' holds ", n, " feature rows, not a square grid");
        return g;
    };
    if (path.size() >= 12 && path.ends_with(".safetensors")) {
        io::safetensors_options opt;
        opt.ignore_prefixes.clear();
        const auto m = io::read_safetensors(path, opt);
        const tensor<float>& t = m.require("features");
        expects(t.rank() == 2 || t.rank() == 3, where, "tensor 'features' in '", path, "' must be [N, D] or [gh, gw, D], got ",
                t.shape().str());
        const index_t D = t.dim(t.rank() - 1), N = t.numel() / std::max<index_t>(D, 1);
        expects(D >= 1 && N >= 2, where, "tensor 'features' in '", path, "' has shape ", t.shape().str());
        out.grid_h = t.rank() == 3 ? t.dim(0) : square(N);
        out.grid_w = t.rank() == 3 ? t.dim(1) : out.grid_h;
        out.features = t;
        out.features.reshape(shape{N, D});
        return out;
    }
    expects(feature_dim >= 1, where, "feature_dim must be >= 1, got ", feature_dim);
    std::ifstream in(path, std::ios::binary);
    expects(in.good(), where, "cannot open '", path, "'");
    in.seekg(0, std::ios::end);
    const auto bytes = static_cast<index_t>(in.tellg());
    in.seekg(0);
    expects(bytes > 0 && bytes % (4 * feature_dim) == 0, where, "'", path, "' has ", bytes, " bytes, not a whole number of ",
            feature_dim, "-float rows (float32, little-endian; set feature-dim)");
    const index_t N = bytes / (4 * feature_dim);
    out.grid_h = out.grid_w = square(N);
    std::vector<unsigned char> raw(static_cast<std::size_t>(bytes));
    in.read(reinterpret_cast<char*>(raw.data()), bytes);
    expects(in.good(), where, "could not read '", path, "'");
    tensor<float> f(shape{N, feature_dim});
    for (index_t i = 0; i < N * feature_dim; ++i)
        f[i] = std::bit_cast<float>(io::detail::read_le32(raw.data() + 4 * i));
    out.features = std::move(f);
    return out;
}

/// Stage: node features from a ViT or from a file.
///   reads:  state.input (the photo)
///   writes: node_features<B>; state.info.values["grid"] (tokens per side)
struct vit_features {
    struct config {
        std::string weights;           ///< ViT safetensors file (the user's)
        std::string features;          ///< or a precomputed feature file
        index_t feature_dim = 384;     ///< D of a raw feature file
        index_t resolution = 224;      ///< square input side
        index_t stride = 4;            ///< patch stride (DINO ViT-S/8 was trained at 8)
        index_t layer = -1;            ///< block whose keys are the features; -1: the last
        index_t heads = 0;             ///< attention heads; 0: width / 64
        dino_network network = dino_network::any;
    };

    template <Backend B>
    class bind {
    public:
        explicit bind(const config& cfg) : m_cfg(cfg) {}

    private:
        void check(std::string_view where) const {
            const config& cfg = m_cfg;
            expects(cfg.weights.empty() != cfg.features.empty(), where,
                    cfg.weights.empty() ? "needs a ViT weights file (--weights, safetensors; see docs/unseggnet.md for "
                                          "where to get and how to convert DINO's checkpoint) or a features file "
                                          "(--features)"
                                        : "takes either a weights file or a features file, not both");
            expects(cfg.resolution >= 1 && cfg.stride >= 1, where, "resolution ", cfg.resolution, " and stride ",
                    cfg.stride, " must be >= 1");
            expects(cfg.heads >= 0, where, "heads must be >= 0, got ", cfg.heads);
        }

    public:
        void run(pipeline::state<B>& st) {
            constexpr auto where = "tessel::stages::vit_features";
            check(where);
            pipeline::stage_timer timer(st, "features");
            auto& nf = st.template data<node_features<B>>();
            if (!m_cfg.features.empty()) {
                if (!m_file) m_file = read_feature_file(m_cfg.features, m_cfg.feature_dim);
                nf.features.assign(m_file->features.shape(), m_file->features.data(),
                                   m_file->features.data() + m_file->features.numel());
                nf.grid_h = m_file->grid_h;
                nf.grid_w = m_file->grid_w;
            } else {
                expects(st.input != nullptr && st.input->channels() == 3, where, "needs an RGB image");
                if (!m_vit) {
                    io::safetensors_options opt;
                    if (m_cfg.network == dino_network::student) opt.select_prefix = "student.";
                    if (m_cfg.network == dino_network::teacher) opt.select_prefix = "teacher.";
                    m_vit.emplace(nn::load_vit(io::read_safetensors(m_cfg.weights, opt), m_cfg.heads));
                }
                const index_t R = m_cfg.resolution;
                const image<std::uint8_t> small = ops::resize_lanczos(*st.input, R, R);
                constexpr float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
                tensor<float> x(shape{3, R, R});
                for (index_t c = 0; c < 3; ++c)
                    for (index_t y = 0; y < R; ++y)
                        for (index_t xx = 0; xx < R; ++xx)
                            x(c, y, xx) = (static_cast<float>(small(xx, y, c)) / 255.0f - mean[c]) / stdv[c];
                tensor<float, B> xb;
                xb.assign(x.shape(), x.data(), x.data() + x.numel());
                nf.features = m_vit->key_features(xb, m_cfg.stride, m_cfg.layer);
                nf.grid_h = m_vit->grid().first;
                nf.grid_w = m_vit->grid().second;
            }
            st.info.values["grid"] = static_cast<double>(nf.grid_w);
        }

    private:
        config m_cfg;
        std::optional<nn::vit_model<B>> m_vit;
        std::optional<node_features<cpu_serial>> m_file;
    };
};

}  // namespace tessel::stages
