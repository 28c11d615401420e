#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "support/backend_test.hpp"
#include "support/synthetic.hpp"
#include "tessel/backend/parallel.hpp"
#include "tessel/core/concepts.hpp"
#include "tessel/core/image.hpp"
#include "tessel/core/random.hpp"
#include "tessel/io/image.hpp"

namespace ts = tessel;

TEST_CASE("shape: numel, equality, printing and invalid extents") {
    ts::shape s{2, 3, 4};
    CHECK(s.numel() == 24);
    CHECK(s.rank == 3);
    CHECK(s == ts::shape{2, 3, 4});
    CHECK_FALSE(s == ts::shape{2, 3});
    CHECK(s.str() == "[2,3,4]");
    CHECK_THROWS_AS((ts::shape{1, -2}), ts::error);
    CHECK_THROWS_AS((ts::shape{1, 1, 1, 1, 1, 1, 1}), ts::error);
}

TEST_CASE("tensor: a default tensor is empty, a rank-0 one holds one element") {
    const ts::tensor<float> none;
    CHECK(none.numel() == 0);
    CHECK(none.empty());
    const ts::tensor<float> scalar(ts::shape{});
    CHECK(scalar.numel() == 1);
    CHECK_FALSE(scalar.empty());
    ts::tensor<float> grown;
    grown.resize(ts::shape{1});
    CHECK(grown.numel() == 1);
    CHECK(grown.data() != nullptr);
}

TEST_CASE("tensor: construction, element access, reshape errors name the shapes") {
    ts::tensor<float> t(ts::shape{2, 3}, {1, 2, 3, 4, 5, 6});
    CHECK(t(1, 2) == 6.0f);
    CHECK(t(0, 1) == 2.0f);
    t.reshape(ts::shape{3, 2});
    CHECK(t(2, 0) == 5.0f);
    try {
        t.reshape(ts::shape{4, 2});
        FAIL("reshape to a different element count must throw");
    } catch (const ts::error& e) {
        CHECK(std::string(e.what()).find("[3,2]") != std::string::npos);
        CHECK(std::string(e.what()).find("[4,2]") != std::string::npos);
        CHECK(e.where() == "tessel::tensor::reshape");
    }
    CHECK_THROWS_AS((ts::tensor<float>(ts::shape{2, 2}, {1, 2, 3})), ts::error);
    auto d = t.cast<double>();
    CHECK(d(2, 1) == 6.0);
    auto omp = t.to<ts::cpu_omp>();
    CHECK(omp.to_vector() == t.to_vector());
}

TEST_CASE("rng: a seed gives the same stream; different seeds differ; ranges hold") {
    ts::rng a(42), b(42), c(43);
    for (int i = 0; i < 100; ++i) {
        const auto x = a.next();
        CHECK(x == b.next());
        CHECK(x != c.next());
    }
    ts::rng g(7);
    double mean = 0, var = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
        const double u = g.uniform01();
        REQUIRE(u >= 0.0);
        REQUIRE(u < 1.0);
        const auto k = g.below(10);
        REQUIRE(k < 10);
        const double z = g.normal();
        mean += z;
        var += z * z;
    }
    mean /= n;
    var = var / n - mean * mean;
    CHECK(std::abs(mean) < 0.05);
    CHECK(std::abs(var - 1.0) < 0.05);
}

template <class B>
void parallel_loops() {
    std::vector<double> v(10007);
    double* p = v.data();
    ts::parallel_for(B{}, static_cast<ts::index_t>(v.size()), [p](ts::index_t i) { p[i] = static_cast<double>(i); });
    const double s = ts::parallel_sum(B{}, static_cast<ts::index_t>(v.size()), 0.0, [p](ts::index_t i) { return p[i]; });
    CHECK(s == doctest::Approx(10006.0 * 10007.0 / 2.0));
    ts::parallel_for(B{}, 0, [](ts::index_t) { FAIL("must not be called for an empty range"); });
}
TESSEL_BACKEND_TEST("parallel_for and parallel_sum visit every index once", parallel_loops)

TEST_CASE("relabel_sequential: labels become 0..K-1 in order of first appearance") {
    ts::label_map m(4, 1, std::vector<ts::label_t>{7, 7, -3, 100000000});
    CHECK(ts::relabel_sequential(m) == 3);
    CHECK(m.values() == std::vector<ts::label_t>{0, 0, 1, 2});
    ts::label_map small(3, 1, std::vector<ts::label_t>{5, 2, 5});
    CHECK(ts::relabel_sequential(small) == 2);
    CHECK(small.values() == std::vector<ts::label_t>{0, 1, 0});
}

TEST_CASE("to_nchw: interleaved bytes become planar floats in [0, 1]") {
    ts::image<std::uint8_t> img(2, 1, 3);
    img(0, 0, 0) = 255;
    img(1, 0, 2) = 51;
    const auto t = ts::to_nchw(img);
    CHECK(t.shape() == ts::shape{1, 3, 1, 2});
    CHECK(t(0, 0, 0, 0) == doctest::Approx(1.0));
    CHECK(t(0, 2, 0, 1) == doctest::Approx(0.2));
    CHECK(t(0, 1, 0, 0) == 0.0f);
}

namespace {
struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        path = std::filesystem::temp_directory_path() /
               ("tessel_test_" + std::to_string(ts::rng(reinterpret_cast<std::uintptr_t>(this)).next()));
        std::filesystem::create_directories(path);
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
};
}  // namespace

TEST_CASE("io: PNG round trips for RGB images and 8- and 16-bit label maps") {
    temp_dir dir;
    auto scene = ts::testing::make_shapes(40, 30, 10, 3);
    ts::io::write_png(dir.path / "img.png", scene.img);
    auto back = ts::io::read_image(dir.path / "img.png");
    CHECK(back.width() == 40);
    CHECK(back.height() == 30);
    CHECK(back.values() == scene.img.values());

    ts::io::write_label_png(dir.path / "l8.png", scene.truth);
    CHECK(ts::io::read_label_png(dir.path / "l8.png").values() == scene.truth.values());

    ts::label_map big(5, 3);
    for (ts::index_t i = 0; i < big.size(); ++i) big.values()[static_cast<std::size_t>(i)] = static_cast<ts::label_t>(i * 4000);
    ts::io::write_label_png(dir.path / "l16.png", big);
    CHECK(ts::io::read_label_png(dir.path / "l16.png").values() == big.values());

    ts::label_map neg(2, 1, std::vector<ts::label_t>{0, -1});
    CHECK_THROWS_AS(ts::io::write_label_png(dir.path / "neg.png", neg), ts::error);
}

TEST_CASE("io: missing, empty, truncated and non-image files give errors naming the path") {
    temp_dir dir;
    auto check_msg = [](auto&& fn, const std::string& needle) {
        try {
            fn();
            FAIL("expected tessel::error");
        } catch (const ts::error& e) {
            CHECK(std::string(e.what()).find(needle) != std::string::npos);
        }
    };
    check_msg([&] { ts::io::read_image(dir.path / "nope.png"); }, "no such file");
    std::ofstream(dir.path / "empty.png").close();
    check_msg([&] { ts::io::read_image(dir.path / "empty.png"); }, "empty file");
    std::ofstream(dir.path / "text.png") << "this is not an image";
    check_msg([&] { ts::io::read_image(dir.path / "text.png"); }, "cannot decode");

    auto scene = ts::testing::make_shapes(32, 32, 10, 3);
    ts::io::write_png(dir.path / "full.png", scene.img);
    const auto size = std::filesystem::file_size(dir.path / "full.png");
    std::filesystem::copy_file(dir.path / "full.png", dir.path / "cut.png");
    std::filesystem::resize_file(dir.path / "cut.png", size / 2);
    CHECK_THROWS_AS(ts::io::read_image(dir.path / "cut.png"), ts::error);
    check_msg([&] { ts::io::read_label_png(dir.path / "full.png"); }, "single-channel");
}

TEST_CASE("io: truncated BMP, TGA, PNM and GIF files are refused, complete ones read back exactly") {
    // stb decodes these four formats from a short file without complaint; read_image checks the
    // size their headers imply (and the GIF trailer).
    temp_dir dir;
    const auto scene = ts::testing::make_shapes(37, 23, 10, 5);
    const auto& img = scene.img;
    const auto p = [&](const char* name) { return (dir.path / name).string(); };
    const int w = static_cast<int>(img.width()), h = static_cast<int>(img.height());
    REQUIRE(stbi_write_bmp(p("a.bmp").c_str(), w, h, 3, img.data()) != 0);
    stbi_write_tga_with_rle = 1;
    REQUIRE(stbi_write_tga(p("rle.tga").c_str(), w, h, 3, img.data()) != 0);
    stbi_write_tga_with_rle = 0;
    REQUIRE(stbi_write_tga(p("raw.tga").c_str(), w, h, 3, img.data()) != 0);
    {
        std::ofstream f(p("a.ppm"), std::ios::binary);
        f << "P6\n# a comment\n" << w << " " << h << "\n255\n";
        f.write(reinterpret_cast<const char*>(img.data()), static_cast<std::streamsize>(img.values().size()));
    }
    for (const char* name : {"a.bmp", "rle.tga", "raw.tga", "a.ppm"}) {
        CAPTURE(name);
        CHECK(ts::io::read_image(p(name)).values() == img.values());
        const std::string cut = p(name) + ".cut";
        std::filesystem::copy_file(p(name), cut);
        std::filesystem::resize_file(cut, std::filesystem::file_size(cut) - 7);
        try {
            (void)ts::io::read_image(cut);
            FAIL("a truncated file was read");
        } catch (const ts::error& e) {
            CHECK(std::string(e.what()).find("truncated") != std::string::npos);
        }
    }
    // A smallest GIF: 1x1, a two-colour palette, one pixel of colour 0 (orange), the trailer 0x3B.
    const unsigned char gif[] = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0, 255, 128, 0, 255, 255, 255,
                                 0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 1, 0, 0x3B};
    std::ofstream(p("a.gif"), std::ios::binary).write(reinterpret_cast<const char*>(gif), sizeof gif);
    std::ofstream(p("cut.gif"), std::ios::binary).write(reinterpret_cast<const char*>(gif), sizeof gif - 1);
    CHECK(ts::io::read_image(p("a.gif")).values() == std::vector<std::uint8_t>{255, 128, 0});
    CHECK_THROWS_WITH_AS((void)ts::io::read_image(p("cut.gif")), doctest::Contains("GIF trailer"), ts::error);
    std::ofstream(p("a.psd"), std::ios::binary) << "8BPS" << std::string(40, '\0');
    CHECK_THROWS_AS((void)ts::io::read_image(p("a.psd")), ts::error);
}

#include "tessel/io/overlay.hpp"

TEST_CASE("overlay: boundaries land exactly where labels change; sizes are checked") {
    ts::image<std::uint8_t> img(4, 2, 3, 10);
    ts::label_map labels(4, 2, std::vector<ts::label_t>{0, 0, 1, 1, 0, 0, 1, 1});
    auto out = ts::io::boundary_overlay(img, labels, {255, 0, 0});
    for (ts::index_t y = 0; y < 2; ++y)
        for (ts::index_t x = 0; x < 4; ++x) CHECK(out(x, y, 0) == (x == 1 ? 255 : 10));
    auto col = ts::io::colorize(labels);
    CHECK(col(0, 0, 0) == col(1, 1, 0));
    CHECK((col(0, 0, 0) != col(2, 0, 0) || col(0, 0, 1) != col(2, 0, 1) || col(0, 0, 2) != col(2, 0, 2)));
    ts::label_map wrong(3, 2);
    CHECK_THROWS_AS(ts::io::boundary_overlay(img, wrong), ts::error);
    CHECK_THROWS_AS(ts::io::blend_overlay(img, labels, 1.5), ts::error);
}
