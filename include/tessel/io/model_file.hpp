// tessel/io/model_file.hpp: tessel's own file format for trained networks and checkpoints.
//
// A model file holds string metadata (what network, which epoch, the settings that made it) and
// named float32 tensors with their shapes. Stage 1 of Deep Superpixel Cut (the SuperAE) is trained
// once and applied to many images, as is the DFC family's reference-image mode, so a network's
// parameters and buffers must survive a process. The format is little-endian and versioned:
//
//   "TESSELMF"  u32 version (1)  u32 metadata count  u32 tensor count
//   metadata:   { u32 length, key bytes, u32 length, value bytes } ...
//   u64 FNV-1a of every byte above (the header checksum)
//   tensors:    { u32 length, name bytes, u32 rank, i64 dims[rank], u64 FNV-1a of the data,
//                 float32 data[numel] } ...
//   "TESSELEND"
//
// A wrong magic, an unknown version, a truncated file, a checksum mismatch (naming the tensor),
// a missing tensor or a shape mismatch on load all throw tessel::error naming the file (and the
// tensor). add_layer / load_layer save and restore any nn layer's parameters() and buffers()
// under a prefix, by position and name ("encoder/param/3/weight"), so that a network whose layer
// list differs from the saved one is refused instead of loaded into the wrong tensors.
#pragma once
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tessel/core/error.hpp"
#include "tessel/core/tensor.hpp"
#include "tessel/nn/concepts.hpp"

namespace tessel::io {

/// One tensor of a model file: its name, shape and values (host memory, float32).
struct named_tensor {
    std::string name;
    shape dims;
    std::vector<float> values;
};

class model_file {
public:
    static constexpr std::uint32_t version = 1;
    static constexpr char magic[8] = {'T', 'E', 'S', 'S', 'E', 'L', 'M', 'F'};
    static constexpr char end_marker[9] = {'T', 'E', 'S', 'S', 'E', 'L', 'E', 'N', 'D'};

    std::map<std::string, std::string> metadata;

    /// Adds (or replaces) a tensor; names are unique.
    template <class B>
    void add(std::string name, const tensor<float, B>& t) {
        expects(!name.empty(), "tessel::io::model_file::add", "tensor names must not be empty");
        named_tensor nt{std::move(name), t.shape(), t.to_vector()};
        for (auto& e : m_tensors)
            if (e.name == nt.name) {
                e = std::move(nt);
                return;
            }
        m_tensors.push_back(std::move(nt));
    }
    [[nodiscard]] const std::vector<named_tensor>& tensors() const noexcept { return m_tensors; }
    [[nodiscard]] const named_tensor* find(std::string_view name) const {
        for (const auto& e : m_tensors)
            if (e.name == name) return &e;
        return nullptr;
    }
    /// The tensor called name; throws naming the file and the tensor when absent.
    [[nodiscard]] const named_tensor& get(std::string_view name) const {
        const named_tensor* t = find(name);
        expects(t != nullptr, "tessel::io::model_file", source_desc(), " has no tensor '", name, "'");
        return *t;
    }
    /// Copies tensor `name` into t, which must have (or, if empty, takes) the stored shape.
    template <class B>
    void load(std::string_view name, tensor<float, B>& t) const {
        const named_tensor& s = get(name);
        expects(t.numel() == 0 || t.shape() == s.dims, "tessel::io::model_file", source_desc(), ": tensor '", name,
                "' is stored with shape ", s.dims.str(), " but the network expects ", t.shape().str());
        t.assign(s.dims, s.values.begin(), s.values.end());
    }
    /// Metadata value of key, or throws naming the file.
    [[nodiscard]] const std::string& meta(const std::string& key) const {
        auto it = metadata.find(key);
        expects(it != metadata.end(), "tessel::io::model_file", source_desc(), " has no metadata '", key, "'");
        return it->second;
    }

    /// Saves every parameter and buffer of a layer under prefix.
    template <class B, class L>
    void add_layer(const std::string& prefix, L& layer) {
        const auto params = layer.parameters();
        for (std::size_t i = 0; i < params.size(); ++i)
            add(param_name(prefix, i, params[i].name), *params[i].value);
        const auto bufs = nn::buffers_of<float, B>(layer);
        for (std::size_t i = 0; i < bufs.size(); ++i) add(buffer_name(prefix, i, bufs[i].name), *bufs[i].value);
    }
    /// Restores a layer saved by add_layer under prefix: every parameter and buffer must be present
    /// with its shape, and the file must hold no other tensor under prefix.
    template <class B, class L>
    void load_layer(const std::string& prefix, L& layer) const {
        const auto params = layer.parameters();
        const auto bufs = nn::buffers_of<float, B>(layer);
        for (std::size_t i = 0; i < params.size(); ++i) load(param_name(prefix, i, params[i].name), *params[i].value);
        for (std::size_t i = 0; i < bufs.size(); ++i) load(buffer_name(prefix, i, bufs[i].name), *bufs[i].value);
        std::size_t under = 0;
        for (const auto& e : m_tensors)
            if (e.name.compare(0, prefix.size() + 1, prefix + "/") == 0) ++under;
        expects(under == params.size() + bufs.size(), "tessel::io::model_file", source_desc(), " holds ", under,
                " tensors under '", prefix, "' but the network has ", params.size(), " parameters and ", bufs.size(),
                " buffers: it was saved from a different network");
    }

    /// Writes the file (to a temporary beside it, then renamed, so a crash never leaves half a model).
    void save(const std::filesystem::path& path) const {
        constexpr auto where = "tessel::io::model_file::save";
        std::string head(magic, sizeof magic);
        put_u32(head, version);
        put_u32(head, static_cast<std::uint32_t>(metadata.size()));
        put_u32(head, static_cast<std::uint32_t>(m_tensors.size()));
        for (const auto& [k, v] : metadata) {
            put_str(head, k);
            put_str(head, v);
        }
        put_u64(head, fnv1a(head.data(), head.size()));
        std::filesystem::path tmp = path;
        tmp += ".partial";
        {
            std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
            expects(static_cast<bool>(f), where, "cannot open '", tmp.string(), "' for writing");
            f.write(head.data(), static_cast<std::streamsize>(head.size()));
            for (const auto& t : m_tensors) {
                std::string h;
                put_str(h, t.name);
                put_u32(h, static_cast<std::uint32_t>(t.dims.rank));
                for (int d = 0; d < t.dims.rank; ++d) put_u64(h, static_cast<std::uint64_t>(t.dims[d]));
                const auto bytes = float_bytes(t.values);
                put_u64(h, fnv1a(bytes.data(), bytes.size()));
                f.write(h.data(), static_cast<std::streamsize>(h.size()));
                f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
            }
            f.write(end_marker, sizeof end_marker);
            expects(static_cast<bool>(f), where, "cannot write '", tmp.string(), "'");
        }
        std::error_code ec;
        std::filesystem::rename(tmp, path, ec);
        expects(!ec, where, "cannot rename '", tmp.string(), "' to '", path.string(), "': ", ec.message());
    }

    /// Reads and verifies a file.
    static model_file read(const std::filesystem::path& path) {
        constexpr auto where = "tessel::io::model_file::read";
        std::error_code ec;
        expects(std::filesystem::is_regular_file(path, ec), where, "no such file: '", path.string(), "'");
        std::ifstream f(path, std::ios::binary | std::ios::ate);
        expects(static_cast<bool>(f), where, "cannot open '", path.string(), "'");
        const auto size = static_cast<std::uint64_t>(f.tellg());
        std::string bytes(static_cast<std::size_t>(size), '\0');
        f.seekg(0);
        f.read(bytes.data(), static_cast<std::streamsize>(size));
        expects(static_cast<bool>(f), where, "cannot read '", path.string(), "'");
        model_file m;
        m.m_source = path.string();
        reader r{bytes, 0, m.source_desc()};
        expects(bytes.size() >= sizeof magic && std::memcmp(bytes.data(), magic, sizeof magic) == 0, where,
                m.source_desc(), " is not a tessel model file (no TESSELMF header)");
        r.pos = sizeof magic;
        const std::uint32_t v = r.u32("the version");
        expects(v == version, where, m.source_desc(), " has format version ", v, "; this build reads version ",
                version);
        const std::uint32_t nmeta = r.u32("the metadata count"), ntensors = r.u32("the tensor count");
        for (std::uint32_t i = 0; i < nmeta; ++i) {
            std::string k = r.str("a metadata key");
            m.metadata[k] = r.str("metadata '" + k + "'");
        }
        const std::size_t head_end = r.pos;
        const std::uint64_t head_sum = r.u64("the header checksum");
        expects(head_sum == fnv1a(bytes.data(), head_end), where, m.source_desc(),
                ": header checksum mismatch (the file is corrupted)");
        for (std::uint32_t i = 0; i < ntensors; ++i) {
            named_tensor t;
            t.name = r.str("the name of tensor " + std::to_string(i));
            const std::string what = "tensor '" + t.name + "'";
            const std::uint32_t rank = r.u32(what);
            expects(rank <= static_cast<std::uint32_t>(max_rank), where, m.source_desc(), ": ", what, " has rank ",
                    rank, " (at most ", max_rank, ")");
            t.dims.rank = static_cast<int>(rank);
            std::uint64_t numel = 1;
            for (std::uint32_t d = 0; d < rank; ++d) {
                const std::uint64_t e = r.u64(what);
                expects(e < (std::uint64_t{1} << 40) && numel * (e == 0 ? 1 : e) < (std::uint64_t{1} << 40), where,
                        m.source_desc(), ": ", what, " has an absurd extent ", e);
                t.dims[static_cast<int>(d)] = static_cast<index_t>(e);
                numel *= e;
            }
            const std::uint64_t sum = r.u64(what);
            const std::size_t nbytes = static_cast<std::size_t>(numel) * 4;
            r.need(nbytes, what + "'s data");
            expects(fnv1a(bytes.data() + r.pos, nbytes) == sum, where, m.source_desc(), ": checksum mismatch in ",
                    what, " (the file is corrupted)");
            t.values.resize(static_cast<std::size_t>(numel));
            for (std::size_t k = 0; k < t.values.size(); ++k) {
                std::uint32_t u = 0;
                for (int b = 0; b < 4; ++b)
                    u |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[r.pos + 4 * k + static_cast<std::size_t>(b)]))
                         << (8 * b);
                t.values[k] = std::bit_cast<float>(u);
            }
            r.pos += nbytes;
            expects(m.find(t.name) == nullptr, where, m.source_desc(), ": ", what, " appears twice");
            m.m_tensors.push_back(std::move(t));
        }
        r.need(sizeof end_marker, "the end marker");
        expects(std::memcmp(bytes.data() + r.pos, end_marker, sizeof end_marker) == 0 &&
                    r.pos + sizeof end_marker == bytes.size(),
                where, m.source_desc(), ": no end marker after the last tensor (trailing or missing bytes)");
        return m;
    }

    static std::string param_name(const std::string& prefix, std::size_t i, std::string_view n) {
        return prefix + "/param/" + std::to_string(i) + "/" + std::string(n);
    }
    static std::string buffer_name(const std::string& prefix, std::size_t i, std::string_view n) {
        return prefix + "/buffer/" + std::to_string(i) + "/" + std::string(n);
    }

private:
    struct reader {
        const std::string& bytes;
        std::size_t pos;
        std::string source;
        void need(std::size_t n, const std::string& what) const {
            expects(pos + n <= bytes.size(), "tessel::io::model_file::read", source, " is truncated (in ", what,
                    ", at byte ", pos, " of ", bytes.size(), ")");
        }
        std::uint64_t le(int n, const std::string& what) {
            need(static_cast<std::size_t>(n), what);
            std::uint64_t v = 0;
            for (int b = 0; b < n; ++b)
                v |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[pos + static_cast<std::size_t>(b)]))
                     << (8 * b);
            pos += static_cast<std::size_t>(n);
            return v;
        }
        std::uint32_t u32(const std::string& what) { return static_cast<std::uint32_t>(le(4, what)); }
        std::uint64_t u64(const std::string& what) { return le(8, what); }
        std::string str(const std::string& what) {
            const std::uint32_t n = u32(what);
            need(n, what);
            std::string s = bytes.substr(pos, n);
            pos += n;
            return s;
        }
    };
    static void put_u32(std::string& s, std::uint32_t v) {
        for (int b = 0; b < 4; ++b) s.push_back(static_cast<char>((v >> (8 * b)) & 0xFFu));
    }
    static void put_u64(std::string& s, std::uint64_t v) {
        for (int b = 0; b < 8; ++b) s.push_back(static_cast<char>((v >> (8 * b)) & 0xFFu));
    }
    static void put_str(std::string& s, std::string_view v) {
        put_u32(s, static_cast<std::uint32_t>(v.size()));
        s.append(v);
    }
    static std::string float_bytes(const std::vector<float>& v) {
        std::string s;
        s.reserve(v.size() * 4);
        for (float x : v) put_u32(s, std::bit_cast<std::uint32_t>(x));
        return s;
    }
    static std::uint64_t fnv1a(const char* p, std::size_t n) {
        std::uint64_t h = 0xcbf29ce484222325ull;
        for (std::size_t i = 0; i < n; ++i) {
            h ^= static_cast<unsigned char>(p[i]);
            h *= 0x100000001b3ull;
        }
        return h;
    }
    [[nodiscard]] std::string source_desc() const {
        return m_source.empty() ? std::string("model") : "model file '" + m_source + "'";
    }

    std::vector<named_tensor> m_tensors;
    std::string m_source;
};

}  // namespace tessel::io
