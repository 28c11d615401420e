// io/safetensors.hpp: the reader against files written here byte by byte (headers built with
// nlohmann::json, independently of tessel's writer), every malformed case, and the round trip of a
// DINO ViT-S/8 state dict's 150 tensors through load_vit.
#include <doctest/doctest.h>

#include <bit>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tessel/io/safetensors.hpp"
#include "tessel/nn/vit.hpp"

namespace ts = tessel;
namespace fs = std::filesystem;

namespace {

std::string safetensors_temp_path(const std::string& name) {
    return (fs::temp_directory_path() / ("tessel_st_" + std::to_string(::getpid()) + "_" + name)).string();
}

void put_le64(std::string& out, std::uint64_t v) {
    for (int k = 0; k < 8; ++k) out += static_cast<char>((v >> (8 * k)) & 0xFF);
}

/// A safetensors file from a header JSON and raw data bytes.
void write_raw(const std::string& path, const std::string& header, const std::string& data,
               std::int64_t declared_len = -1) {
    std::string out;
    put_le64(out, declared_len < 0 ? header.size() : static_cast<std::uint64_t>(declared_len));
    out += header;
    out += data;
    std::ofstream f(path, std::ios::binary);
    f.write(out.data(), static_cast<std::streamsize>(out.size()));
}

std::string f32_bytes(const std::vector<float>& v) {
    std::string s;
    for (float x : v) {
        const auto b = std::bit_cast<std::uint32_t>(x);
        for (int k = 0; k < 4; ++k) s += static_cast<char>((b >> (8 * k)) & 0xFF);
    }
    return s;
}
std::string u16_bytes(const std::vector<std::uint16_t>& v) {
    std::string s;
    for (auto x : v) {
        s += static_cast<char>(x & 0xFF);
        s += static_cast<char>(x >> 8);
    }
    return s;
}

std::string safetensors_error_of(const std::string& path, const ts::io::safetensors_options& opt = {}) {
    try {
        (void)ts::io::read_safetensors(path, opt);
    } catch (const ts::error& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("safetensors: F32, F16 and BF16 values, prefixes stripped, head ignored, metadata skipped") {
    const std::string path = safetensors_temp_path("dtypes.safetensors");
    nlohmann::json h;
    h["__metadata__"] = {{"format", "pt"}};
    // f32 [2,3] at 0..24, f16 [5] at 24..34, bf16 [2] at 34..38, head f32 [1] at 38..42
    h["student.module.blocks.0.a"] = {{"dtype", "F32"}, {"shape", {2, 3}}, {"data_offsets", {0, 24}}};
    h["backbone.half"] = {{"dtype", "F16"}, {"shape", {5}}, {"data_offsets", {24, 34}}};
    h["teacher.brain"] = {{"dtype", "BF16"}, {"shape", {2}}, {"data_offsets", {34, 38}}};
    h["student.head.last_layer.weight"] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {38, 42}}};
    h["head.mlp"] = {{"dtype", "I64"}, {"shape", {1}}, {"data_offsets", {42, 50}}};  // unknown dtype, but ignored
    const std::vector<float> a{1.f, -2.5f, 3.25f, 0.f, 1e-3f, -7e5f};
    // 1.5, -2, 0.5, the smallest subnormal 2^-24, +inf
    const std::vector<std::uint16_t> half{0x3E00, 0xC000, 0x3800, 0x0001, 0x7C00};
    const std::vector<std::uint16_t> bf{0x3FC0, 0xC2F7};  // 1.5, -123.5
    write_raw(path, h.dump(), f32_bytes(a) + u16_bytes(half) + u16_bytes(bf) + f32_bytes({9.f}) + std::string(8, '\0'));

    const auto m = ts::io::read_safetensors(path);
    CHECK(m.size() == 3);
    const auto& ta = m.require("blocks.0.a", ts::shape{2, 3});
    for (ts::index_t i = 0; i < 6; ++i) CHECK(ta[i] == a[static_cast<std::size_t>(i)]);
    const auto& th = m.require("half", ts::shape{5});
    CHECK(th[0] == 1.5f);
    CHECK(th[1] == -2.f);
    CHECK(th[2] == 0.5f);
    CHECK(th[3] == std::ldexp(1.0f, -24));
    CHECK(std::isinf(th[4]));
    const auto& tb = m.require("brain", ts::shape{2});
    CHECK(tb[0] == 1.5f);
    CHECK(tb[1] == -123.5f);
    CHECK_FALSE(m.contains("head.last_layer.weight"));

    // select_prefix keeps one of the two networks of a full checkpoint.
    ts::io::safetensors_options only_teacher;
    only_teacher.select_prefix = "teacher.";
    const auto t = ts::io::read_safetensors(path, only_teacher);
    CHECK(t.size() == 1);
    CHECK(t.contains("brain"));

    // A missing tensor or a wrong shape names the file and the tensor.
    try {
        (void)m.require("blocks.0.b");
        FAIL("no error");
    } catch (const ts::error& e) {
        CHECK(contains(e.what(), path));
        CHECK(contains(e.what(), "blocks.0.b"));
    }
    try {
        (void)m.require("blocks.0.a", ts::shape{3, 2});
        FAIL("no error");
    } catch (const ts::error& e) {
        CHECK(contains(e.what(), path));
        CHECK(contains(e.what(), "[2,3]"));
        CHECK(contains(e.what(), "[3,2]"));
    }
    fs::remove(path);
}

TEST_CASE("safetensors: every malformed file is an error naming the file (and the tensor)") {
    const std::string path = safetensors_temp_path("bad.safetensors");
    auto one = [](const std::string& dtype, std::uint64_t b, std::uint64_t e, nlohmann::json shp = {2}) {
        nlohmann::json h;
        h["w"] = {{"dtype", dtype}, {"shape", shp}, {"data_offsets", {b, e}}};
        return h.dump();
    };
    const std::string data = f32_bytes({1.f, 2.f});

    SUBCASE("missing file") {
        const std::string err = safetensors_error_of(path + ".none");
        CHECK(contains(err, "cannot open"));
        CHECK(contains(err, path + ".none"));
    }
    SUBCASE("shorter than the length field") {
        std::ofstream(path, std::ios::binary).write("abc", 3);
        CHECK(contains(safetensors_error_of(path), "8-byte header length"));
    }
    SUBCASE("header length beyond the file") {
        write_raw(path, one("F32", 0, 8), data, 1000);
        const std::string err = safetensors_error_of(path);
        CHECK(contains(err, "truncated"));
        CHECK(contains(err, path));
    }
    SUBCASE("header not JSON") {
        write_raw(path, "{\"w\": {\"dtype\": F32}}", data);
        CHECK(contains(safetensors_error_of(path), "malformed JSON"));
    }
    SUBCASE("header not an object") {
        write_raw(path, "[1, 2]", data);
        CHECK(contains(safetensors_error_of(path), "not an object"));
    }
    SUBCASE("unknown dtype") {
        write_raw(path, one("I32", 0, 8), data);
        const std::string err = safetensors_error_of(path);
        CHECK(contains(err, "'I32'"));
        CHECK(contains(err, "tensor 'w'"));
        CHECK(contains(err, path));
    }
    SUBCASE("offsets outside the file (truncated data)") {
        write_raw(path, one("F32", 0, 8), data.substr(0, 6));
        const std::string err = safetensors_error_of(path);
        CHECK(contains(err, "outside"));
        CHECK(contains(err, "tensor 'w'"));
    }
    SUBCASE("reversed offsets") {
        write_raw(path, one("F32", 8, 0), data);
        CHECK(contains(safetensors_error_of(path), "reversed"));
    }
    SUBCASE("offsets that do not match the shape") {
        write_raw(path, one("F32", 0, 8, {3}), data + f32_bytes({3.f}));
        CHECK(contains(safetensors_error_of(path), "needs 12"));
    }
    SUBCASE("a negative or fractional extent") {
        write_raw(path, one("F32", 0, 8, {-2}), data);
        CHECK(contains(safetensors_error_of(path), "non-negative integer"));
        write_raw(path, one("F32", 0, 8, {2.5}), data);
        CHECK(contains(safetensors_error_of(path), "non-negative integer"));
    }
    SUBCASE("an entry without dtype") {
        write_raw(path, R"({"w": {"shape": [2], "data_offsets": [0, 8]}})", data);
        CHECK(contains(safetensors_error_of(path), "no string 'dtype'"));
    }
    SUBCASE("two names that strip to the same tensor") {
        nlohmann::json h;
        h["student.w"] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {0, 4}}};
        h["teacher.w"] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {4, 8}}};
        write_raw(path, h.dump(), data);
        CHECK(contains(safetensors_error_of(path), "select_prefix"));
    }
    fs::remove(path);
}

TEST_CASE("safetensors: a DINO ViT-S/8 state dict (150 tensors) survives write, read and load_vit") {
    const auto names = ts::nn::vit_tensor_shapes();
    REQUIRE(names.size() == 150);
    ts::index_t params = 0;
    for (const auto& [n, s] : names) params += s.numel();
    CHECK(params == 21'670'272);

    // Written with prefixes and a head, as a converted full DINO checkpoint would be; shrunk in
    // width only where the test's time needs it would change the names' shapes, so it is full size.
    const std::string path = safetensors_temp_path("vits8.safetensors");
    ts::rng gen(11);
    nlohmann::json h;
    std::string data;
    std::vector<std::vector<float>> values;
    for (const auto& [n, s] : names) {
        std::vector<float> v(static_cast<std::size_t>(s.numel()));
        for (auto& x : v) x = static_cast<float>(gen.uniform(-1, 1));
        nlohmann::json shp = nlohmann::json::array();
        for (int a = 0; a < s.rank; ++a) shp.push_back(s[a]);
        h["student.module." + n] = {{"dtype", "F32"}, {"shape", shp}, {"data_offsets", {data.size(), data.size() + 4 * v.size()}}};
        data += f32_bytes(v);
        values.push_back(std::move(v));
    }
    h["student.head.mlp.0.weight"] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {data.size(), data.size() + 4}}};
    data += f32_bytes({0.f});
    write_raw(path, h.dump(), data);

    const auto m = ts::io::read_safetensors(path);
    CHECK(m.size() == 150);
    for (std::size_t k = 0; k < names.size(); ++k) {
        const auto& t = m.require(names[k].first, names[k].second);
        CHECK(t[0] == values[k][0]);
        CHECK(t[t.numel() - 1] == values[k].back());
    }
    const auto w = ts::nn::load_vit(m);
    CHECK(w.depth == 12);
    CHECK(w.dim == 384);
    CHECK(w.heads == 6);
    CHECK(w.patch == 8);
    CHECK(w.mlp_hidden == 1536);
    CHECK(w.pos_grid == 28);
    CHECK(w.blocks[11].attn.qkv_bias[1151] == values[4 + 11 * 12 + 3].back());

    // A state dict with a tensor missing or misshaped is refused, naming the file and tensor.
    auto without = [&](const std::string& drop, const ts::shape* reshape) {
        ts::io::weight_map w2(path);
        for (const auto& [n, t] : m.tensors()) {
            if (n == drop && reshape == nullptr) continue;
            if (n == drop) {
                ts::tensor<float> r(*reshape);
                w2.insert(n, r);
            } else {
                w2.insert(n, t);
            }
        }
        try {
            (void)ts::nn::load_vit(w2);
        } catch (const ts::error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    std::string err = without("blocks.7.mlp.fc2.bias", nullptr);
    CHECK(contains(err, "blocks.7.mlp.fc2.bias"));
    CHECK(contains(err, path));
    const ts::shape wrong{384, 385};
    err = without("blocks.3.attn.proj.weight", &wrong);
    CHECK(contains(err, "blocks.3.attn.proj.weight"));
    CHECK(contains(err, "[384,385]"));
    fs::remove(path);
}

TEST_CASE("safetensors: tessel's writer round-trips through the reader") {
    const std::string path = safetensors_temp_path("writer.safetensors");
    std::map<std::string, ts::tensor<float>> t;
    t["x"] = ts::tensor<float>(ts::shape{3, 1}, {1.f, -0.f, 3.5f});
    t["features"] = ts::tensor<float>(ts::shape{2, 2}, {0.25f, 1e-30f, -1e30f, 7.f});
    ts::io::write_safetensors(path, t);
    const auto m = ts::io::read_safetensors(path);
    CHECK(m.size() == 2);
    for (const auto& [n, v] : t) {
        const auto& r = m.require(n, v.shape());
        for (ts::index_t i = 0; i < v.numel(); ++i) CHECK(std::bit_cast<std::uint32_t>(r[i]) == std::bit_cast<std::uint32_t>(v[i]));
    }
    fs::remove(path);
}
