// tessel::io image readers and writers: libjpeg and libpng round trips, PNG variants (palette,
// grey+alpha, 16-bit, sub-byte labels), damaged JPEGs, BMP compression modes, and the pixels PIL
// decodes from BSDS500.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "support/bad_inputs.hpp"
#include "support/error_message.hpp"
#include "support/synthetic.hpp"
#include "tessel/io/image.hpp"

namespace fs = std::filesystem;
namespace ts = tessel;

namespace {
struct scratch_dir {
    fs::path path;
    explicit scratch_dir(const std::string& name) : path(fs::temp_directory_path() / ("tessel_test_io_" + name)) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~scratch_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path operator/(const std::string& f) const { return path / f; }
};
std::vector<unsigned char> slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void spit(const fs::path& p, const std::vector<unsigned char>& b) {
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
std::uint64_t fnv1a64(const std::uint8_t* p, std::size_t n) {
    std::uint64_t h = 0xCBF29CE484222325ull;
    for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
    return h;
}
std::string error_of(auto&& fn) { return tessel::testing::message_of(fn, "(no error)"); }

/// A PNG written with libpng's full API in any colour type and depth, so that the reader meets
/// files tessel's own writers never produce. `rows` are already packed for the depth.
void write_raw_png(const fs::path& path, std::uint32_t w, std::uint32_t h, int depth, int colour,
                   const std::vector<unsigned char>& packed, const std::vector<png_color>& palette = {},
                   const std::vector<unsigned char>& trns = {}, bool interlace = false) {
    std::FILE* f = std::fopen(path.string().c_str(), "wb");
    REQUIRE(f != nullptr);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    REQUIRE(setjmp(png_jmpbuf(png)) == 0);
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, depth, colour, interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (!palette.empty()) png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
    if (!trns.empty()) png_set_tRNS(png, info, trns.data(), static_cast<int>(trns.size()), nullptr);
    png_write_info(png, info);
    const int passes = png_set_interlace_handling(png);
    const std::size_t stride = packed.size() / h;
    for (int pass = 0; pass < passes; ++pass)
        for (std::uint32_t y = 0; y < h; ++y) png_write_row(png, packed.data() + stride * y);
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
}
}  // namespace

TEST_CASE("io: JPEG written by write_jpeg reads back close to the source, grey and RGB") {
    scratch_dir dir("jpeg_round_trip");
    const auto scene = ts::testing::make_shapes(45, 29, 0, 4);
    ts::io::write_jpeg(dir / "a.jpg", scene.img, 100);
    const auto back = ts::io::read_image(dir / "a.jpg");
    REQUIRE(back.width() == 45);
    REQUIRE(back.height() == 29);
    REQUIRE(back.channels() == 3);
    // Quality 100 with 4:2:0 chroma: flat regions come back within a few levels, edges blur
    // (82 % of the bytes are within 8 here).
    int close = 0;
    for (std::size_t i = 0; i < back.values().size(); ++i) close += std::abs(back.values()[i] - scene.img.values()[i]) <= 8;
    CHECK(close > static_cast<int>(back.values().size() * 3 / 4));
    CHECK(ts::io::read_image_size(dir / "a.jpg").channels == 3);

    ts::image<std::uint8_t> grey(8, 8, 1);
    for (ts::index_t i = 0; i < 64; ++i) grey.data()[i] = static_cast<std::uint8_t>(i < 32 ? 40 : 200);
    ts::io::write_jpeg(dir / "g.jpg", grey, 100);
    CHECK(ts::io::read_image_size(dir / "g.jpg").channels == 1);
    const auto g = ts::io::read_image(dir / "g.jpg", 0);
    REQUIRE(g.channels() == 1);
    CHECK(std::abs(g.data()[0] - 40) <= 2);
    CHECK(std::abs(g.data()[63] - 200) <= 2);
    const auto g3 = ts::io::read_image(dir / "g.jpg", 3);  // grey replicated
    CHECK(g3.data()[0] == g.data()[0]);
    CHECK(g3.data()[2] == g.data()[0]);
    CHECK(g3.data()[63 * 3 + 1] == g.data()[63]);

    CHECK_THROWS_WITH_AS(ts::io::write_jpeg(dir / "rgba.jpg", ts::image<std::uint8_t>(2, 2, 4)),
                         doctest::Contains("1 or 3"), ts::error);
    CHECK_THROWS_WITH_AS(ts::io::write_jpeg(dir / "q.jpg", grey, 0), doctest::Contains("quality"), ts::error);
    CHECK_FALSE(fs::exists(dir / "rgba.jpg"));
}

TEST_CASE("io: a truncated JPEG is an error naming the function, the path and libjpeg's warning") {
    scratch_dir dir("jpeg_truncated");
    const auto scene = ts::testing::make_shapes(64, 48, 10, 2);
    ts::io::write_jpeg(dir / "full.jpg", scene.img, 90);
    auto bytes = slurp(dir / "full.jpg");
    bytes.resize(bytes.size() * 2 / 3);
    spit(dir / "cut.jpg", bytes);
    const std::string msg = error_of([&] { (void)ts::io::read_image(dir / "cut.jpg"); });
    CHECK(msg.find("tessel::io::read_image") != std::string::npos);
    CHECK(msg.find("cut.jpg") != std::string::npos);
    CHECK(msg.find("Premature end of JPEG file") != std::string::npos);
    CHECK(msg.find("allow_truncated") != std::string::npos);
    // The header is intact, so the size is known without decoding.
    CHECK(ts::io::read_image_size(dir / "cut.jpg").width == 64);

    std::vector<std::string> warnings;
    const auto img = ts::io::read_image(dir / "cut.jpg", 3, {.allow_truncated = true, .warnings = &warnings});
    CHECK(img.width() == 64);
    CHECK(img.height() == 48);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("Premature end of JPEG file") != std::string::npos);
    // The top rows were in the file and decode as in the complete one.
    const auto full = ts::io::read_image(dir / "full.jpg");
    CHECK(std::equal(full.data(), full.data() + 64 * 3 * 8, img.data()));

    // Cut inside the header: a fatal libjpeg error, with or without the option.
    bytes.resize(40);
    spit(dir / "head.jpg", bytes);
    for (bool allow : {false, true}) {
        const std::string m = error_of([&] { (void)ts::io::read_image(dir / "head.jpg", 3, {.allow_truncated = allow}); });
        CHECK(m.find("cannot decode JPEG") != std::string::npos);
        CHECK(m.find("head.jpg") != std::string::npos);
        CHECK(m.find("allow_truncated") == std::string::npos);  // the option would not help
    }
}

TEST_CASE("io: PNG colour types and depths: palette, tRNS, grey+alpha, 16-bit, sub-byte, interlaced") {
    scratch_dir dir("png_variants");
    // Palette 2x2 with a transparent entry.
    write_raw_png(dir / "pal.png", 2, 2, 8, PNG_COLOR_TYPE_PALETTE, {0, 1, 2, 0},
                  {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}}, {255, 128});
    CHECK(ts::io::read_image_size(dir / "pal.png").channels == 4);
    CHECK(ts::io::read_image(dir / "pal.png", 0).values() ==
          std::vector<std::uint8_t>{255, 0, 0, 255, 0, 255, 0, 128, 0, 0, 255, 255, 255, 0, 0, 255});
    CHECK(ts::io::read_image(dir / "pal.png").values() == std::vector<std::uint8_t>{255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 0, 0});
    // Grey+alpha to RGB drops alpha; to grey keeps the value.
    write_raw_png(dir / "ga.png", 2, 1, 8, PNG_COLOR_TYPE_GRAY_ALPHA, {10, 20, 30, 40});
    CHECK(ts::io::read_image(dir / "ga.png").values() == std::vector<std::uint8_t>{10, 10, 10, 30, 30, 30});
    CHECK(ts::io::read_image(dir / "ga.png", 1).values() == std::vector<std::uint8_t>{10, 30});
    CHECK_THROWS_WITH_AS((void)ts::io::read_label_png(dir / "ga.png"), doctest::Contains("single-channel"), ts::error);
    CHECK_THROWS_WITH_AS((void)ts::io::read_label_png(dir / "pal.png"), doctest::Contains("palette"), ts::error);
    // 16-bit RGB: read_image keeps the high byte (as PIL does).
    write_raw_png(dir / "rgb16.png", 1, 1, 16, PNG_COLOR_TYPE_RGB, {0x12, 0x34, 0xAB, 0xFF, 0x00, 0x80});
    CHECK(ts::io::read_image(dir / "rgb16.png").values() == std::vector<std::uint8_t>{0x12, 0xAB, 0x00});
    // RGB to grey uses PIL's "L" weights: (299 R + 587 G + 114 B) / 1000, rounded.
    write_raw_png(dir / "rgb.png", 1, 1, 8, PNG_COLOR_TYPE_RGB, {200, 100, 50});
    CHECK(ts::io::read_image(dir / "rgb.png", 1).data()[0] == 124);  // 59.8 + 58.7 + 5.7 = 124.2
    // 2-bit grey: read_image scales to 0..255, read_label_png keeps the stored values 0..3.
    write_raw_png(dir / "g2.png", 4, 1, 2, PNG_COLOR_TYPE_GRAY, {0b00011011});
    CHECK(ts::io::read_image(dir / "g2.png", 1).values() == std::vector<std::uint8_t>{0, 85, 170, 255});
    CHECK(ts::io::read_label_png(dir / "g2.png").values() == std::vector<ts::label_t>{0, 1, 2, 3});
    // 16-bit grey labels, interlaced, 3x3 so that several Adam7 passes are non-empty.
    std::vector<unsigned char> be;
    std::vector<ts::label_t> want;
    for (int i = 0; i < 9; ++i) {
        const int v = 1000 * i + 7;
        want.push_back(v);
        be.push_back(static_cast<unsigned char>(v >> 8));
        be.push_back(static_cast<unsigned char>(v & 0xFF));
    }
    write_raw_png(dir / "l16i.png", 3, 3, 16, PNG_COLOR_TYPE_GRAY, be, {}, {}, true);
    CHECK(ts::io::read_label_png(dir / "l16i.png").values() == want);
}

TEST_CASE("io: label PNG writer picks 8 or 16 bits by the largest label, and round trips both") {
    scratch_dir dir("label_png");
    ts::label_map small(3, 2, std::vector<ts::label_t>{0, 1, 2, 255, 254, 3});
    ts::io::write_label_png(dir / "l8.png", small);
    CHECK(slurp(dir / "l8.png")[24] == 8);  // IHDR bit depth byte
    CHECK(ts::io::read_label_png(dir / "l8.png").values() == small.values());
    ts::label_map large(3, 1, std::vector<ts::label_t>{0, 256, 65535});
    ts::io::write_label_png(dir / "l16.png", large);
    CHECK(slurp(dir / "l16.png")[24] == 16);
    CHECK(ts::io::read_label_png(dir / "l16.png").values() == large.values());
    // Writing into a folder that does not exist fails and leaves nothing behind.
    CHECK_THROWS_WITH_AS(ts::io::write_label_png(dir / "no/such/dir.png", small), doctest::Contains("cannot open"),
                         ts::error);
}

TEST_CASE("io: BMP: uncompressed and bitfields are read, every other compression is refused before stb") {
    using ts::testing::bad_input_detail::bmp_header;
    scratch_dir dir("bmp_compression");
    // 2 x 1, 32 bits, BI_BITFIELDS with the red and blue masks swapped from the default: the three
    // masks follow the 40-byte header, so the pixels start at 66.
    auto bitfields = bmp_header(2, 1, 32, 3, 74);
    bitfields[10] = 66;
    const unsigned char masks_and_pixels[] = {0xFF, 0, 0, 0, 0, 0xFF, 0, 0, 0, 0, 0xFF, 0,  // R, G, B masks
                                              0x11, 0x22, 0x33, 0, 0xAA, 0xBB, 0xCC, 0};
    std::copy(std::begin(masks_and_pixels), std::end(masks_and_pixels), bitfields.begin() + 54);
    spit(dir / "bitfields.bmp", bitfields);
    const auto img = ts::io::read_image(dir / "bitfields.bmp");
    REQUIRE(img.width() == 2);
    REQUIRE(img.height() == 1);
    CHECK(std::vector<std::uint8_t>(img.data(), img.data() + 6) ==
          std::vector<std::uint8_t>{0x11, 0x22, 0x33, 0xAA, 0xBB, 0xCC});

    // The fuzz_image finding: compression 0xFFFFFFFF (stb reads it as -1 and accepts it) on a
    // 57-byte file claiming 24 x 7077904. Refused by tessel's own check, with the value, by
    // read_image and read_image_size alike.
    spit(dir / "minus_one.bmp", bmp_header(24, 7077904, 24, 0xFFFFFFFFu, 57));
    for (const bool header_only : {false, true}) {
        const std::string m = error_of([&] {
            if (header_only)
                (void)ts::io::read_image_size(dir / "minus_one.bmp");
            else
                (void)ts::io::read_image(dir / "minus_one.bmp");
        });
        CAPTURE(m);
        CHECK(m.find(header_only ? "tessel::io::read_image_size" : "tessel::io::read_image") != std::string::npos);
        CHECK(m.find("minus_one.bmp': unsupported BMP compression 4294967295; only uncompressed and bitfields BMPs "
                     "are read") != std::string::npos);
    }
    // The same header uncompressed is a truncated file, not an unsupported one.
    spit(dir / "short.bmp", bmp_header(24, 7077904, 24, 0, 57));
    CHECK(error_of([&] { (void)ts::io::read_image(dir / "short.bmp"); }).find("truncated: 57 bytes") != std::string::npos);
    // RLE8, RLE4, JPEG, PNG, alpha bitfields and values that are negative as a signed int: each
    // refused by name (stb alone would say "not GIF" for the first five and decode the others),
    // even when the file is long enough for the canvas.
    const std::pair<std::uint32_t, const char*> modes[] = {
        {1u, "1 (RLE8)"},          {2u, "2 (RLE4)"}, {4u, "4 (embedded JPEG)"}, {5u, "5 (embedded PNG)"},
        {6u, "6 (alpha bitfields)"}, {7u, "7;"},      {0x80000000u, "2147483648;"}};
    for (const auto& [compression, named] : modes) {
        CAPTURE(compression);
        spit(dir / "c.bmp", bmp_header(2, 2, 8, compression, 54 + 1024 + 16));
        const std::string e = error_of([&] { (void)ts::io::read_image(dir / "c.bmp"); });
        CAPTURE(e);
        CHECK(e.find("c.bmp': unsupported BMP compression " + std::string(named)) != std::string::npos);
    }
    // A BITMAPCOREHEADER (12 bytes) has no compression field: 2 x 1, 24 bits, read as uncompressed.
    std::vector<unsigned char> core(26 + 8, 0);
    core[0] = 'B', core[1] = 'M', core[2] = 34, core[10] = 26, core[14] = 12, core[18] = 2, core[20] = 1, core[22] = 1,
    core[24] = 24;
    const unsigned char bgr[] = {3, 2, 1, 6, 5, 4};
    std::copy(std::begin(bgr), std::end(bgr), core.begin() + 26);
    spit(dir / "core.bmp", core);
    const auto small = ts::io::read_image(dir / "core.bmp");
    CHECK(std::vector<std::uint8_t>(small.data(), small.data() + 6) == std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6});
}

TEST_CASE("io: read_image decodes the BSDS500 val JPEGs to PIL's pixels (data test)") {
    const fs::path fixture = fs::path(__FILE__).parent_path() / "pil_jpeg_checksums.txt";
    const fs::path folder = fs::path(TESSEL_TEST_DATA_DIR) / "bsds500" / "val";
    REQUIRE(fs::exists(fixture));
    if (!fs::exists(folder)) {
        MESSAGE("skipped: BSDS500 val not found at " << folder.string());
        return;
    }
    std::ifstream in(fixture);
    std::string line;
    int compared = 0;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ss(line);
        std::string name, hash;
        ts::index_t w = 0, h = 0;
        ss >> name >> w >> h >> hash;
        CAPTURE(name);
        const auto img = ts::io::read_image(folder / name);
        REQUIRE(img.width() == w);
        REQUIRE(img.height() == h);
        std::ostringstream got;
        got << std::hex << std::setw(16) << std::setfill('0') << fnv1a64(img.data(), img.values().size());
        CHECK(got.str() == hash);
        ++compared;
    }
    CHECK(compared == 100);
}
