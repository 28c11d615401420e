// Test support: a corpus of damaged and awkward image files, written by code at test time (so no
// binary fixture is committed and no Python is needed). Used by tests/unit/io/test_bad_inputs.cpp
// (every reader) and, through tests/cli/make_bad_inputs.cpp, by the CLI corpus test.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <zlib.h>

#include "support/synthetic.hpp"
#include "tessel/io/image.hpp"

namespace tessel::testing {

/// One corpus file and what read_image must do with it: decode to width x height, or throw a
/// tessel::error whose message contains `error_contains`.
struct bad_input {
    std::string name;
    index_t width = 0, height = 0;  // 0: must be refused
    std::string error_contains;
};

namespace bad_input_detail {
inline std::vector<unsigned char> slurp(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
inline void spit(const std::filesystem::path& p, const std::vector<unsigned char>& b) {
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
inline void put_be32(std::vector<unsigned char>& b, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + static_cast<std::size_t>(i)] = static_cast<unsigned char>(v >> (24 - 8 * i));
}
/// A PNG whose IHDR claims w x h, with the CRC fixed so that only the size is wrong.
inline std::vector<unsigned char> png_with_size(std::vector<unsigned char> b, std::uint32_t w, std::uint32_t h) {
    put_be32(b, 16, w);
    put_be32(b, 20, h);
    put_be32(b, 29, static_cast<std::uint32_t>(crc32(0, b.data() + 12, 17)));
    return b;
}
/// A 54-byte BMP file header and BITMAPINFOHEADER for a w x h canvas, zero-padded to `size` bytes
/// (the pixel data, if any, starts at byte 54).
inline std::vector<unsigned char> bmp_header(std::uint32_t w, std::uint32_t h, std::uint16_t bpp,
                                             std::uint32_t compression, std::size_t size) {
    std::vector<unsigned char> b(size < 54 ? 54 : size, 0);
    const auto le32 = [&](std::size_t at, std::uint32_t v) {
        for (int i = 0; i < 4; ++i) b[at + static_cast<std::size_t>(i)] = static_cast<unsigned char>(v >> (8 * i));
    };
    b[0] = 'B', b[1] = 'M';
    le32(2, static_cast<std::uint32_t>(b.size()));
    le32(10, 54);  // pixel data offset
    le32(14, 40);  // BITMAPINFOHEADER
    le32(18, w);
    le32(22, h);
    b[26] = 1;  // planes
    b[28] = static_cast<unsigned char>(bpp), b[29] = static_cast<unsigned char>(bpp >> 8);
    le32(30, compression);
    return b;
}
/// Offset of the JPEG SOF0 marker's height field (FF C0 len(2) precision(1) height(2) width(2)).
inline std::size_t jpeg_sof_size_at(const std::vector<unsigned char>& b) {
    for (std::size_t i = 2; i + 8 < b.size(); ++i)
        if (b[i] == 0xFF && b[i + 1] == 0xC0) return i + 5;
    return 0;
}
}  // namespace bad_input_detail

/// Writes the corpus into `dir` (created) and returns what each file must produce.
inline std::vector<bad_input> write_bad_input_corpus(const std::filesystem::path& dir) {
    using namespace bad_input_detail;
    namespace fs = std::filesystem;
    fs::create_directories(dir);
    std::vector<bad_input> out;
    const auto scene = make_shapes(24, 16, 10, 7);
    const auto at = [&](const std::string& n) { return dir / n; };
    const auto refuse = [&](const std::string& n, const std::vector<unsigned char>& bytes, std::string why) {
        spit(at(n), bytes);
        out.push_back({n, 0, 0, std::move(why)});
    };
    const auto good = [&](const std::string& n, index_t w, index_t h) { out.push_back({n, w, h, {}}); };

    // ---- PNG -----------------------------------------------------------------------------------
    io::write_png(at("ok.png"), scene.img);
    good("ok.png", 24, 16);
    const auto png = slurp(at("ok.png"));
    refuse("png_signature_only.png", {png.begin(), png.begin() + 8}, "truncated");
    refuse("png_cut_in_ihdr.png", {png.begin(), png.begin() + 20}, "truncated");
    refuse("png_cut_in_idat.png", {png.begin(), png.begin() + static_cast<std::ptrdiff_t>(png.size() * 2 / 3)},
           "cannot decode PNG");
    {
        auto b = png;
        b[b.size() - 20] ^= 0x5A;  // inside IDAT: the chunk CRC no longer matches
        refuse("png_bad_crc.png", b, "cannot decode PNG");
    }
    refuse("png_zero_width.png", png_with_size(png, 0, 16), "cannot decode PNG");
    refuse("png_huge.png", png_with_size(png, 100000, 100000), "too large");
    // Within the pixel limit but far more pixels than a file this short could hold.
    refuse("png_implausible.png", png_with_size(png, 16000, 16000), "cannot hold");
    {
        image<std::uint8_t> ga(3, 2, 2), rgba(2, 3, 4);
        for (index_t i = 0; i < 12; ++i) ga.data()[i] = static_cast<std::uint8_t>(20 * i), rgba.data()[i] = 7;
        io::write_png(at("grey_alpha.png"), ga);
        good("grey_alpha.png", 3, 2);
    }
    io::write_label_png(at("labels16.png"), label_map(5, 4, std::vector<label_t>(20, 40000)));
    good("labels16.png", 5, 4);
    {
        // Every pixel its own label: as a ground truth or prediction of tessel-evaluate, a one-to-one
        // matching of 65536 x 65536 labels (refused: it needs a 34 GB table).
        std::vector<label_t> v(256 * 256);
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<label_t>(i);
        io::write_label_png(at("labels_every_pixel.png"), label_map(256, 256, std::move(v)));
        good("labels_every_pixel.png", 256, 256);
    }
    io::write_png(at("one_pixel.png"), image<std::uint8_t>(1, 1, 3));
    good("one_pixel.png", 1, 1);
    io::write_png(at("row_4000x1.png"), image<std::uint8_t>(4000, 1, 3));
    good("row_4000x1.png", 4000, 1);
    io::write_png(at("column_1x4000.png"), image<std::uint8_t>(1, 4000, 1));
    good("column_1x4000.png", 1, 4000);

    // ---- JPEG ----------------------------------------------------------------------------------
    io::write_jpeg(at("ok.jpg"), scene.img, 90);
    good("ok.jpg", 24, 16);
    const auto jpg = slurp(at("ok.jpg"));
    refuse("jpeg_soi_only.jpg", {jpg.begin(), jpg.begin() + 3}, "cannot decode JPEG");
    refuse("jpeg_cut_in_header.jpg", {jpg.begin(), jpg.begin() + 100}, "cannot decode JPEG");
    refuse("jpeg_cut_in_scan.jpg", {jpg.begin(), jpg.end() - 60}, "Premature end of JPEG file");
    {
        const std::size_t sof = jpeg_sof_size_at(jpg);
        auto zero = jpg;
        zero[sof] = zero[sof + 1] = 0;
        refuse("jpeg_zero_height.jpg", zero, "cannot decode JPEG");
        auto huge = jpg;  // 60000 x 60000: libjpeg accepts it, tessel's pixel limit does not
        huge[sof] = huge[sof + 2] = 0xEA;
        huge[sof + 1] = huge[sof + 3] = 0x60;
        refuse("jpeg_huge.jpg", huge, "too large");
        auto over = jpg;  // 65535 x 65535: beyond libjpeg's own limit
        over[sof] = over[sof + 1] = over[sof + 2] = over[sof + 3] = 0xFF;
        refuse("jpeg_over_libjpeg_limit.jpg", over, "Maximum supported image dimension");
    }
    io::write_jpeg(at("one_pixel.jpg"), image<std::uint8_t>(1, 1, 3));
    good("one_pixel.jpg", 1, 1);
    io::write_jpeg(at("column_1x4000.jpg"), image<std::uint8_t>(1, 4000, 1));
    good("column_1x4000.jpg", 1, 4000);

    // ---- PNM, BMP, TGA, GIF (stb, behind tessel's completeness checks) -------------------------
    const auto text = [](const std::string& s) { return std::vector<unsigned char>(s.begin(), s.end()); };
    {
        auto ppm = text("P6 2 3000 255\n");
        ppm.resize(ppm.size() + 2 * 3000 * 3, 90);
        spit(at("pnm_2x3000.ppm"), ppm);
        good("pnm_2x3000.ppm", 2, 3000);
        refuse("pnm_truncated.ppm", {ppm.begin(), ppm.end() - 5}, "truncated");
    }
    refuse("pnm_zero.ppm", text("P6 0 0 255\n"), "no pixels");
    refuse("pnm_huge.ppm", text("P6 100000 100000 255\n"), "too large");
    // Found by fuzz_image: a number past INT_MAX overflowed inside stb's PNM parser.
    refuse("pnm_long_number.ppm", text("P5 4 4 255" + std::string(120, '8') + "\n"), "123 digits");
    refuse("pnm_long_width.ppm", text("P6 99999999999 1 255\n"), "11 digits");
    refuse("pnm_16bit_truncated.pgm", text("P5 4 4 65535\n\x01\x02"), "truncated");
    stbi_write_bmp(at("ok.bmp").string().c_str(), 24, 16, 3, scene.img.data());
    good("ok.bmp", 24, 16);
    const auto bmp = slurp(at("ok.bmp"));
    refuse("bmp_truncated.bmp", {bmp.begin(), bmp.end() - 30}, "truncated");
    refuse("bmp_header_only.bmp", {bmp.begin(), bmp.begin() + 20}, "cannot decode");
    {
        // Found by fuzz_image: compression 0xFFFFFFFF is -1 to stb, which passes its "compression
        // >= 4" refusal, so stb decoded a 24 x 7077904 canvas (510 MB) from a 57-byte file.
        refuse("bmp_bad_compression.bmp", bmp_header(24, 7077904, 24, 0xFFFFFFFFu, 57),
               "unsupported BMP compression 4294967295");
    }
    stbi_write_tga(at("ok.tga").string().c_str(), 24, 16, 3, scene.img.data());
    good("ok.tga", 24, 16);
    const auto tga = slurp(at("ok.tga"));
    refuse("tga_truncated.tga", {tga.begin(), tga.end() - 30}, "truncated");
    const std::vector<unsigned char> gif = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0, 255, 128, 0, 255,
                                            255, 255, 0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 1, 0, 0x3B};
    spit(at("one_pixel.gif"), gif);
    good("one_pixel.gif", 1, 1);
    refuse("gif_truncated.gif", {gif.begin(), gif.end() - 4}, "cannot decode");
    {
        // Found by fuzz_image: a 35-byte GIF whose screen is 17993 x 14648 made stb allocate GBs.
        auto huge = gif;
        huge[6] = 'I', huge[7] = 'F', huge[8] = '8', huge[9] = '9';
        refuse("gif_huge_canvas.gif", huge, "more than 35 bytes of GIF data can hold");
    }
    {
        // Found by fuzz_image: fill bytes before a JPEG's SOI marker sent the file to stb's JPEG
        // decoder (undefined behaviour in its Huffman builder); stb now decodes only BMP, TGA,
        // PNM and GIF.
        std::vector<unsigned char> jpeg = slurp(at("column_1x4000.jpg"));
        jpeg.insert(jpeg.begin(), 0xFF);
        refuse("jpeg_fill_byte.jpg", jpeg, "cannot decode");
    }

    // ---- not images ----------------------------------------------------------------------------
    refuse("text.png", text("this is not an image"), "cannot decode");
    refuse("psd.psd", text("8BPS" + std::string(40, '\0')), "cannot decode");
    refuse("empty.jpg", {}, "empty file");
    return out;
}

}  // namespace tessel::testing
