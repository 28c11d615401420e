// io/model_file.hpp: a network saved and loaded reproduces its outputs bit for bit; every kind of
// damaged or mismatched file is refused with an error naming the file (and the tensor).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tessel/io/model_file.hpp"
#include "tessel/methods/dsc.hpp"
#include "tessel/methods/kim2020.hpp"

namespace ts = tessel;
namespace fs = std::filesystem;

namespace {
fs::path model_temp_path(const std::string& name) {
    const fs::path dir = fs::temp_directory_path() / "tessel_test_model_file";
    fs::create_directories(dir);
    return dir / name;
}
std::string model_file_text(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write_model_text(const fs::path& p, const std::string& s) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(s.data(), static_cast<std::streamsize>(s.size()));
}
std::string model_error_of(const fs::path& p) {
    try {
        (void)ts::io::model_file::read(p);
    } catch (const ts::error& e) {
        return e.what();
    }
    return "";
}
ts::tensor<float, ts::cpu_serial> ramp(const ts::shape& s, float step) {
    ts::tensor<float, ts::cpu_serial> t(s);
    for (ts::index_t i = 0; i < t.numel(); ++i) t[i] = step * static_cast<float>(i) - 1.0f;
    return t;
}
}  // namespace

TEST_CASE("model_file: tensors and metadata round-trip exactly, including rank 0 and empty tensors") {
    ts::io::model_file m;
    m.metadata["network"] = "test";
    m.metadata["empty"] = "";
    m.add("a", ramp(ts::shape{2, 3}, 0.37f));
    m.add("scalar", ramp(ts::shape{}, 1.0f));
    m.add("none", ts::tensor<float, ts::cpu_serial>(ts::shape{0, 4}));
    ts::tensor<float, ts::cpu_serial> odd(ts::shape{1});
    odd[0] = -0.0f;
    m.add("negzero", odd);
    m.add("a", ramp(ts::shape{3, 2}, 0.5f));  // replaces
    const auto p = model_temp_path("roundtrip.tsl");
    m.save(p);
    CHECK_FALSE(fs::exists(p.string() + ".partial"));
    const auto r = ts::io::model_file::read(p);
    CHECK(r.metadata == m.metadata);
    REQUIRE(r.tensors().size() == 4);
    CHECK(r.get("a").dims == ts::shape{3, 2});
    CHECK(r.get("a").values == ramp(ts::shape{3, 2}, 0.5f).to_vector());
    CHECK(r.get("scalar").dims.rank == 0);
    CHECK(r.get("scalar").values.size() == 1);
    CHECK(r.get("none").values.empty());
    CHECK(std::signbit(r.get("negzero").values[0]));
    CHECK_THROWS_WITH_AS((void)r.get("b"), doctest::Contains("roundtrip.tsl' has no tensor 'b'"), ts::error);
}

TEST_CASE("model_file: a SuperAE saved and loaded gives the same reconstruction; a DFC net too") {
    using net_t = ts::methods::superae_network::bind<ts::cpu_serial>;
    ts::rng a_init(1), b_init(2);
    net_t a(ts::methods::superae_config(), a_init), b(ts::methods::superae_config(), b_init);
    ts::nn::context<ts::cpu_serial> ctx;
    const auto x = ramp(ts::shape{2, 3, 8, 12}, 0.001f);
    (void)a.forward(ctx, x);  // train mode: moves the running statistics away from 0 / 1
    ts::io::model_file m;
    ts::methods::save_superae<ts::cpu_serial>(m, a);
    const auto p = model_temp_path("superae.tsl");
    m.save(p);
    ts::methods::load_superae<ts::cpu_serial>(ts::io::model_file::read(p), b);
    ctx.training = false;
    const auto ya = a.forward(ctx, x).to_vector();
    const auto yb = b.forward(ctx, x).to_vector();
    CHECK(ya == yb);

    using dfc_t = ts::methods::dfc_network::bind<ts::cpu_serial>;
    dfc_t d1(ts::methods::dfc_network_config(8, 2), a_init), d2(ts::methods::dfc_network_config(8, 2), b_init);
    ts::io::model_file dm;
    dm.add_layer<ts::cpu_serial>("dfc", d1);
    dm.load_layer<ts::cpu_serial>("dfc", d2);
    CHECK(d1.forward(ctx, x).to_vector() == d2.forward(ctx, x).to_vector());
    // The DFC net at another width, or another depth, is refused.
    dfc_t wide(ts::methods::dfc_network_config(9, 2), a_init), deep(ts::methods::dfc_network_config(8, 3), a_init);
    CHECK_THROWS_WITH_AS(dm.load_layer<ts::cpu_serial>("dfc", wide), doctest::Contains("is stored with shape [8,3,3,3]"),
                         ts::error);
    CHECK_THROWS_WITH_AS(dm.load_layer<ts::cpu_serial>("dfc", deep), doctest::Contains("tensor 'dfc/param/"),
                         ts::error);
    // A model without the SuperAE tag is not loaded as one.
    CHECK_THROWS_WITH_AS(ts::methods::load_superae<ts::cpu_serial>(dm, b), doctest::Contains("does not hold a SuperAE"),
                         ts::error);
    // Extra tensors under the prefix: a different network.
    ts::io::model_file extra = m;
    extra.add("encoder/param/99/weight", ramp(ts::shape{1}, 1.0f));
    CHECK_THROWS_WITH_AS(ts::methods::load_superae<ts::cpu_serial>(extra, b),
                         doctest::Contains("saved from a different network"), ts::error);
}

TEST_CASE("model_file: damaged files are refused, naming the file and the tensor") {
    ts::io::model_file m;
    m.metadata["network"] = "test";
    m.add("first", ramp(ts::shape{4, 4}, 0.1f));
    m.add("second", ramp(ts::shape{3}, 0.2f));
    const auto good = model_temp_path("good.tsl");
    m.save(good);
    const std::string bytes = model_file_text(good);
    const auto bad = model_temp_path("bad.tsl");

    CHECK(model_error_of(model_temp_path("missing.tsl")).find("no such file") != std::string::npos);
    write_model_text(bad, "");
    CHECK(model_error_of(bad).find("not a tessel model file") != std::string::npos);
    write_model_text(bad, "PNG....." + bytes.substr(8));
    CHECK(model_error_of(bad).find("bad.tsl' is not a tessel model file") != std::string::npos);
    std::string v = bytes;
    v[8] = 2;  // version 2
    write_model_text(bad, v);
    CHECK(model_error_of(bad).find("format version 2") != std::string::npos);
    // A byte of the metadata: the header checksum.
    std::string h = bytes;
    h[h.find("test")] = 'T';
    write_model_text(bad, h);
    CHECK(model_error_of(bad).find("header checksum mismatch") != std::string::npos);
    // The last byte of the data of "second" (just before the end marker).
    std::string d = bytes;
    d[d.size() - 10] = static_cast<char>(d[d.size() - 10] ^ 0x01);
    write_model_text(bad, d);
    CHECK(model_error_of(bad).find("checksum mismatch in tensor 'second'") != std::string::npos);
    // Truncated at every length: always an error, never a crash; inside "first"'s data it names it.
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        write_model_text(bad, bytes.substr(0, n));
        INFO("truncated to " << n << " bytes");
        CHECK(!model_error_of(bad).empty());
    }
    const std::size_t in_first = bytes.find("first") + 5 + 4 + 16 + 8 + 10;
    write_model_text(bad, bytes.substr(0, in_first));
    CHECK(model_error_of(bad).find("truncated (in tensor 'first''s data") != std::string::npos);
    write_model_text(bad, bytes + "x");
    CHECK(model_error_of(bad).find("trailing or missing bytes") != std::string::npos);
    CHECK(model_error_of(good).empty());
}
