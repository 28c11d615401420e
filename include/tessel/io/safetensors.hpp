// tessel/io/safetensors.hpp: reading (and writing) weight files in the safetensors format.
//
// Pretrained weights are the user's: tessel never downloads them, and it does not parse PyTorch
// pickles. A user converts a checkpoint once (tools/convert_dino.py) to safetensors, the format
// published by Hugging Face (github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON mapping each tensor name to {"dtype", "shape", "data_offsets": [begin,
// end]} (offsets relative to the end of the header), an optional "__metadata__" object of strings,
// then the little-endian data. read_safetensors converts F32, F16 and BF16 to float, strips the
// prefixes of training checkpoints (module., backbone., student., teacher.) and can skip tensors
// by prefix (the DINO projection head, head.*). Every malformed file (short, truncated, a header
// that is not JSON or points outside the file, an unknown dtype, overlapping names after
// stripping) is a tessel::error naming the file and, where there is one, the tensor; a weight
// map's require() does the same for a missing or misshaped tensor, so a model is never left with
// silent random weights (the authors' strict=False loading, METHODS.md §6.2). The JSON header is
// parsed by a small strict parser here, so the library needs no JSON dependency.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tessel/core/error.hpp"
#include "tessel/core/tensor.hpp"

namespace tessel::io {

/// Element types of a safetensors file that tessel reads.
enum class safetensors_dtype { f32, f16, bf16 };

/// Options of read_safetensors.
struct safetensors_options {
    /// Leading name prefixes removed (repeatedly, in any order): "student.module.blocks.0..." ->
    /// "blocks.0...".
    std::vector<std::string> strip_prefixes{"module.", "backbone.", "student.", "teacher."};
    /// Tensors whose stripped name starts with one of these are not loaded (DINO's projection head).
    std::vector<std::string> ignore_prefixes{"head."};
    /// When non-empty, only names with this prefix (before stripping) are kept, and it is removed:
    /// "teacher." selects the teacher of a full DINO checkpoint that holds both.
    std::string select_prefix{};
};

/// Named float tensors read from one file, with checks that name the file.
class weight_map {
public:
    weight_map() = default;
    explicit weight_map(std::string file) : m_file(std::move(file)) {}

    [[nodiscard]] const std::string& file() const noexcept { return m_file; }
    [[nodiscard]] bool contains(const std::string& name) const { return m_tensors.count(name) != 0; }
    [[nodiscard]] std::size_t size() const noexcept { return m_tensors.size(); }
    [[nodiscard]] const std::map<std::string, tensor<float>>& tensors() const noexcept { return m_tensors; }
    void insert(const std::string& name, tensor<float> t) { m_tensors[name] = std::move(t); }

    /// The tensor `name`; throws naming the file and the tensor when it is absent.
    [[nodiscard]] const tensor<float>& require(const std::string& name) const {
        const auto it = m_tensors.find(name);
        expects(it != m_tensors.end(), "tessel::io::weight_map", "'", m_file, "' has no tensor '", name, "' (",
                m_tensors.size(), " tensors after prefix stripping)");
        return it->second;
    }
    /// The tensor `name` of shape `s`; throws naming the file, the tensor and both shapes.
    [[nodiscard]] const tensor<float>& require(const std::string& name, const shape& s) const {
        const tensor<float>& t = require(name);
        expects(t.shape() == s, "tessel::io::weight_map", "tensor '", name, "' in '", m_file, "' has shape ",
                t.shape().str(), ", expected ", s.str());
        return t;
    }

private:
    std::string m_file;
    std::map<std::string, tensor<float>> m_tensors;
};

namespace detail {

struct json_member;

/// A JSON value, as much of JSON as a safetensors header uses (objects, arrays, strings,
/// non-negative integers; other numbers, booleans and null are parsed and kept as kinds).
struct json_value {
    enum kind_t { null_v, boolean, number, string, array, object } kind = null_v;
    std::string str;
    double num = 0;
    bool integral = false;
    std::uint64_t uint = 0;
    std::vector<json_value> items;
    // A struct, not std::pair: pair<string, json_value> would need json_value complete here
    // (clang rejects it; std::vector itself allows an incomplete element type).
    std::vector<json_member> members;
};
struct json_member {
    std::string first;
    json_value second;
};

class json_parser {
public:
    json_parser(std::string_view text, std::string_view file) : m_s(text), m_file(file) {}

    json_value parse_document() {
        json_value v = parse_value(0);
        skip_ws();
        if (m_i != m_s.size()) error("unexpected text after the JSON header");
        return v;
    }

private:
    [[noreturn]] void error(std::string_view what) const {
        fail("tessel::io::read_safetensors", "'", m_file, "': malformed JSON header at byte ", m_i, ": ", what);
    }
    void skip_ws() {
        while (m_i < m_s.size() && (m_s[m_i] == ' ' || m_s[m_i] == '\t' || m_s[m_i] == '\n' || m_s[m_i] == '\r')) ++m_i;
    }
    char peek() {
        skip_ws();
        if (m_i >= m_s.size()) error("unexpected end");
        return m_s[m_i];
    }
    void expect_char(char c) {
        if (peek() != c) error(std::string("expected '") + c + "'");
        ++m_i;
    }
    json_value parse_value(int depth) {
        if (depth > 16) error("nested too deeply");
        const char c = peek();
        json_value v;
        if (c == '{') {
            v.kind = json_value::object;
            ++m_i;
            if (peek() == '}') {
                ++m_i;
                return v;
            }
            for (;;) {
                if (peek() != '"') error("expected a member name");
                std::string key = parse_string();
                expect_char(':');
                v.members.push_back(json_member{std::move(key), parse_value(depth + 1)});
                if (peek() == ',') {
                    ++m_i;
                    continue;
                }
                expect_char('}');
                return v;
            }
        }
        if (c == '[') {
            v.kind = json_value::array;
            ++m_i;
            if (peek() == ']') {
                ++m_i;
                return v;
            }
            for (;;) {
                v.items.push_back(parse_value(depth + 1));
                if (peek() == ',') {
                    ++m_i;
                    continue;
                }
                expect_char(']');
                return v;
            }
        }
        if (c == '"') {
            v.kind = json_value::string;
            v.str = parse_string();
            return v;
        }
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
        for (auto [word, kind] : {std::pair{std::string_view("true"), json_value::boolean},
                                  std::pair{std::string_view("false"), json_value::boolean},
                                  std::pair{std::string_view("null"), json_value::null_v}})
            if (m_s.substr(m_i, word.size()) == word) {
                m_i += word.size();
                v.kind = kind;
                return v;
            }
        error("unexpected character");
    }
    std::string parse_string() {
        ++m_i;  // opening quote
        std::string out;
        while (m_i < m_s.size() && m_s[m_i] != '"') {
            char c = m_s[m_i++];
            if (static_cast<unsigned char>(c) < 0x20) error("control character in a string");
            if (c == '\\') {
                if (m_i >= m_s.size()) error("unterminated escape");
                const char e = m_s[m_i++];
                switch (e) {
                    case '"': out += '"'; break;
                    case '\\': out += '\\'; break;
                    case '/': out += '/'; break;
                    case 'b': out += '\b'; break;
                    case 'f': out += '\f'; break;
                    case 'n': out += '\n'; break;
                    case 'r': out += '\r'; break;
                    case 't': out += '\t'; break;
                    case 'u': {
                        if (m_i + 4 > m_s.size()) error("short \\u escape");
                        unsigned code = 0;
                        for (int k = 0; k < 4; ++k) {
                            const char h = m_s[m_i++];
                            code <<= 4;
                            if (h >= '0' && h <= '9') code |= static_cast<unsigned>(h - '0');
                            else if (h >= 'a' && h <= 'f') code |= static_cast<unsigned>(h - 'a' + 10);
                            else if (h >= 'A' && h <= 'F') code |= static_cast<unsigned>(h - 'A' + 10);
                            else error("bad \\u escape");
                        }
                        // Names are ASCII in practice; other code points are kept as UTF-8 (BMP).
                        if (code < 0x80) {
                            out += static_cast<char>(code);
                        } else if (code < 0x800) {
                            out += static_cast<char>(0xC0 | (code >> 6));
                            out += static_cast<char>(0x80 | (code & 0x3F));
                        } else {
                            out += static_cast<char>(0xE0 | (code >> 12));
                            out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
                            out += static_cast<char>(0x80 | (code & 0x3F));
                        }
                        break;
                    }
                    default: error("bad escape");
                }
            } else {
                out += c;
            }
        }
        if (m_i >= m_s.size()) error("unterminated string");
        ++m_i;
        return out;
    }
    json_value parse_number() {
        json_value v;
        v.kind = json_value::number;
        const std::size_t start = m_i;
        if (m_s[m_i] == '-') ++m_i;
        while (m_i < m_s.size() && ((m_s[m_i] >= '0' && m_s[m_i] <= '9') || m_s[m_i] == '.' || m_s[m_i] == 'e' ||
                                    m_s[m_i] == 'E' || m_s[m_i] == '+' || m_s[m_i] == '-'))
            ++m_i;
        const std::string text(m_s.substr(start, m_i - start));
        bool digits_only = !text.empty();
        for (char c : text) digits_only = digits_only && c >= '0' && c <= '9';
        if (digits_only) {
            if (text.size() > 19) error("integer too large");
            v.integral = true;
            v.uint = std::stoull(text);
            v.num = static_cast<double>(v.uint);
        } else {
            char* end = nullptr;
            v.num = std::strtod(text.c_str(), &end);
            if (end != text.c_str() + text.size()) error("bad number");
        }
        return v;
    }

    std::string_view m_s;
    std::string_view m_file;
    std::size_t m_i = 0;
};

inline float half_to_float(std::uint16_t h) {
    const std::uint32_t sign = (h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1Fu;
    const std::uint32_t man = h & 0x3FFu;
    if (exp == 0) {  // zero or subnormal: man * 2^-24
        const float v = std::ldexp(static_cast<float>(man), -24);
        return sign ? -v : v;
    }
    std::uint32_t bits;
    if (exp == 31)
        bits = sign | 0x7F800000u | (man << 13);  // inf / NaN
    else
        bits = sign | ((exp + 112) << 23) | (man << 13);
    return std::bit_cast<float>(bits);
}
inline float bf16_to_float(std::uint16_t b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16); }

inline std::uint64_t read_le64(const unsigned char* p) {
    std::uint64_t v = 0;
    for (int k = 7; k >= 0; --k) v = (v << 8) | p[k];
    return v;
}
inline std::uint16_t read_le16(const unsigned char* p) {
    return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
inline std::uint32_t read_le32(const unsigned char* p) {
    return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
           (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

inline bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace detail

/// Reads every tensor of a safetensors file as float (see the top of this file for the checks).
inline weight_map read_safetensors(const std::string& path, const safetensors_options& opt = {}) {
    constexpr auto where = "tessel::io::read_safetensors";
    std::ifstream in(path, std::ios::binary);
    expects(in.good(), where, "cannot open '", path, "'");
    in.seekg(0, std::ios::end);
    const auto file_size = static_cast<std::uint64_t>(in.tellg());
    in.seekg(0);
    expects(file_size >= 8, where, "'", path, "' has ", file_size,
            " bytes; a safetensors file starts with an 8-byte header length");
    unsigned char len_bytes[8];
    in.read(reinterpret_cast<char*>(len_bytes), 8);
    const std::uint64_t header_len = detail::read_le64(len_bytes);
    expects(header_len >= 2 && header_len <= file_size - 8, where, "'", path, "' declares a JSON header of ", header_len,
            " bytes but only ", file_size - 8, " follow the length field (truncated or not a safetensors file)");
    expects(header_len <= (std::uint64_t(100) << 20), where, "'", path, "' declares a JSON header of ", header_len,
            " bytes (over 100 MB: not a safetensors file)");
    std::string header(static_cast<std::size_t>(header_len), '\0');
    in.read(header.data(), static_cast<std::streamsize>(header_len));
    expects(in.good(), where, "'", path, "': could not read the ", header_len, "-byte header");
    const std::uint64_t data_start = 8 + header_len;
    const std::uint64_t data_size = file_size - data_start;

    const detail::json_value root = detail::json_parser(header, path).parse_document();
    expects(root.kind == detail::json_value::object, where, "'", path, "': the JSON header is not an object");

    weight_map out(path);
    std::vector<char> buf;
    for (const auto& member : root.members) {
        const std::string& raw_name = member.first;
        const detail::json_value& entry = member.second;
        if (raw_name == "__metadata__") continue;
        const auto bad = [&](auto&&... what) {
            fail(where, "'", path, "', tensor '", raw_name, "': ", what...);
        };
        if (entry.kind != detail::json_value::object) bad("header entry is not an object");
        const detail::json_value *dtype = nullptr, *shp = nullptr, *offsets = nullptr;
        for (const auto& [k, v] : entry.members) {
            if (k == "dtype") dtype = &v;
            else if (k == "shape") shp = &v;
            else if (k == "data_offsets") offsets = &v;
        }
        if (!dtype || dtype->kind != detail::json_value::string) bad("no string 'dtype'");
        if (!shp || shp->kind != detail::json_value::array) bad("no array 'shape'");
        if (!offsets || offsets->kind != detail::json_value::array || offsets->items.size() != 2) bad("no 'data_offsets' pair");

        std::string name = raw_name;
        if (!opt.select_prefix.empty()) {
            if (!detail::starts_with(name, opt.select_prefix)) continue;
            name = name.substr(opt.select_prefix.size());
        }
        for (bool again = true; again;) {
            again = false;
            for (const auto& p : opt.strip_prefixes)
                if (!p.empty() && detail::starts_with(name, p)) {
                    name = name.substr(p.size());
                    again = true;
                }
        }
        bool ignored = false;
        for (const auto& p : opt.ignore_prefixes) ignored = ignored || (!p.empty() && detail::starts_with(name, p));

        safetensors_dtype dt{};
        std::uint64_t elem_bytes = 0;
        if (dtype->str == "F32") dt = safetensors_dtype::f32, elem_bytes = 4;
        else if (dtype->str == "F16") dt = safetensors_dtype::f16, elem_bytes = 2;
        else if (dtype->str == "BF16") dt = safetensors_dtype::bf16, elem_bytes = 2;
        else if (ignored) continue;  // a head tensor in a type we do not read is harmless
        else bad("dtype '", dtype->str, "' is not supported (F32, F16 or BF16)");

        expects(shp->items.size() <= static_cast<std::size_t>(max_rank), where, "'", path, "', tensor '", raw_name,
                "': rank ", shp->items.size(), " exceeds ", max_rank);
        shape s;
        std::uint64_t count = 1;
        for (const auto& d : shp->items) {
            if (d.kind != detail::json_value::number || !d.integral) bad("shape holds a value that is not a non-negative integer");
            if (d.uint > (std::uint64_t(1) << 40) || (d.uint > 0 && count > (std::uint64_t(1) << 40) / d.uint))
                bad("shape is too large");
            s.dims[s.rank++] = static_cast<index_t>(d.uint);
            count *= d.uint;
        }
        const auto& b = offsets->items[0];
        const auto& e = offsets->items[1];
        if (b.kind != detail::json_value::number || !b.integral || e.kind != detail::json_value::number || !e.integral)
            bad("data_offsets are not non-negative integers");
        if (b.uint > e.uint) bad("data_offsets [", b.uint, ", ", e.uint, "] are reversed");
        if (e.uint > data_size)
            bad("data_offsets [", b.uint, ", ", e.uint, "] point outside the ", data_size,
                " data bytes of the file (truncated file?)");
        if (e.uint - b.uint != count * elem_bytes)
            bad("data_offsets span ", e.uint - b.uint, " bytes but shape ", s.str(), " of ", dtype->str, " needs ",
                count * elem_bytes);
        if (ignored) continue;
        expects(!out.contains(name), where, "'", path, "': tensors '", raw_name, "' and another both become '", name,
                "' after prefix stripping (select one with select_prefix, e.g. 'student.' or 'teacher.')");

        buf.resize(static_cast<std::size_t>(e.uint - b.uint));
        in.seekg(static_cast<std::streamoff>(data_start + b.uint));
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        if (!in.good()) bad("could not read its ", buf.size(), " bytes");
        tensor<float> t(s);
        const auto* p = reinterpret_cast<const unsigned char*>(buf.data());
        for (std::uint64_t i = 0; i < count; ++i) {
            float v = 0;
            if (dt == safetensors_dtype::f32) v = std::bit_cast<float>(detail::read_le32(p + 4 * i));
            else if (dt == safetensors_dtype::f16) v = detail::half_to_float(detail::read_le16(p + 2 * i));
            else v = detail::bf16_to_float(detail::read_le16(p + 2 * i));
            t[static_cast<index_t>(i)] = v;
        }
        out.insert(name, std::move(t));
    }
    return out;
}

/// Writes float tensors as an F32 safetensors file (tests, feature exports). Names are written
/// as given, in map order, with data laid out contiguously.
inline void write_safetensors(const std::string& path, const std::map<std::string, tensor<float>>& tensors) {
    constexpr auto where = "tessel::io::write_safetensors";
    std::string header = "{";
    std::uint64_t offset = 0;
    bool first = true;
    for (const auto& [name, t] : tensors) {
        for (char c : name)
            expects(c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20, where, "tensor name '", name,
                    "' needs JSON escaping, which the writer does not do");
        if (!first) header += ",";
        first = false;
        header.push_back('"');
        header.append(name);
        header.append("\":{\"dtype\":\"F32\",\"shape\":[");
        for (int a = 0; a < t.rank(); ++a) {
            if (a) header.push_back(',');
            header.append(std::to_string(t.dim(a)));
        }
        const std::uint64_t bytes = static_cast<std::uint64_t>(t.numel()) * 4;
        header.append("],\"data_offsets\":[");
        header.append(std::to_string(offset));
        header.push_back(',');
        header.append(std::to_string(offset + bytes));
        header.append("]}");
        offset += bytes;
    }
    header += "}";
    while (header.size() % 8 != 0) header += ' ';  // the format pads the header to 8 bytes
    std::ofstream out(path, std::ios::binary);
    expects(out.good(), where, "cannot write '", path, "'");
    unsigned char len[8];
    std::uint64_t n = header.size();
    for (int k = 0; k < 8; ++k) len[k] = static_cast<unsigned char>((n >> (8 * k)) & 0xFF);
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const auto& [name, t] : tensors)
        for (index_t i = 0; i < t.numel(); ++i) {
            const auto bits = std::bit_cast<std::uint32_t>(t[i]);
            unsigned char b4[4] = {static_cast<unsigned char>(bits & 0xFF), static_cast<unsigned char>((bits >> 8) & 0xFF),
                                   static_cast<unsigned char>((bits >> 16) & 0xFF),
                                   static_cast<unsigned char>((bits >> 24) & 0xFF)};
            out.write(reinterpret_cast<const char*>(b4), 4);
        }
    expects(out.good(), where, "write to '", path, "' failed");
}

}  // namespace tessel::io
