// tessel/io/image.hpp: reading and writing images and label maps (PNG, JPEG, BMP... via stb).
//
// read_image     - any 8-bit image stb decodes, as RGB (or the file's channels)
// read_label_png - a single-channel 8- or 16-bit PNG as a label_map
// write_png      - an 8-bit grey, RGB or RGBA image
// write_label_png- a label_map as 8-bit PNG when every label is < 256, else 16-bit
// Every failure (missing, unreadable, truncated or unsupported file, absurd size) throws
// tessel::error naming the function and the path.
#pragma once
#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "tessel/core/image.hpp"
#include "tessel/io/detail/stb.hpp"

namespace tessel::io {

/// Images larger than this many pixels are rejected rather than risking exhausting memory.
inline constexpr index_t max_image_pixels = index_t{1} << 28;

namespace detail {
inline void check_readable(const std::filesystem::path& path, std::string_view where) {
    std::error_code ec;
    expects(std::filesystem::exists(path, ec), where, "no such file: '", path.string(), "'");
    expects(std::filesystem::is_regular_file(path, ec), where, "not a regular file: '", path.string(), "'");
    expects(std::filesystem::file_size(path, ec) > 0, where, "empty file: '", path.string(), "'");
}
inline std::string stb_reason() {
    const char* r = stbi_failure_reason();
    return r ? r : "unknown reason";
}
struct stb_deleter {
    void operator()(void* p) const noexcept { stbi_image_free(p); }
};
inline void check_dims(int w, int h, const std::filesystem::path& path, std::string_view where) {
    expects(w > 0 && h > 0, where, "image '", path.string(), "' has no pixels (", w, "x", h, ")");
    expects(static_cast<index_t>(w) * h <= max_image_pixels, where, "image '", path.string(), "' is too large (",
            w, "x", h, " pixels; the limit is ", max_image_pixels, ")");
}
}  // namespace detail

/// Reads an image file. channels = 0 keeps the file's channel count; 1, 3 or 4 converts.
inline image<std::uint8_t> read_image(const std::filesystem::path& path, int channels = 3) {
    constexpr std::string_view where = "tessel::io::read_image";
    expects(channels >= 0 && channels <= 4, where, "channels must be 0..4, got ", channels);
    detail::check_readable(path, where);
    int w = 0, h = 0, c = 0;
    expects(stbi_info(path.string().c_str(), &w, &h, &c) != 0, where, "cannot decode '", path.string(),
            "': ", detail::stb_reason());
    detail::check_dims(w, h, path, where);
    std::unique_ptr<stbi_uc, detail::stb_deleter> pixels(stbi_load(path.string().c_str(), &w, &h, &c, channels));
    expects(pixels != nullptr, where, "cannot decode '", path.string(), "': ", detail::stb_reason());
    const int out_c = channels == 0 ? c : channels;
    image<std::uint8_t> img(w, h, out_c);
    std::copy(pixels.get(), pixels.get() + static_cast<std::size_t>(w) * h * out_c, img.data());
    return img;
}

/// Reads a single-channel 8- or 16-bit PNG of integer labels.
inline label_map read_label_png(const std::filesystem::path& path) {
    constexpr std::string_view where = "tessel::io::read_label_png";
    detail::check_readable(path, where);
    const std::string p = path.string();
    int w = 0, h = 0, c = 0;
    expects(stbi_info(p.c_str(), &w, &h, &c) != 0, where, "cannot decode '", p, "': ", detail::stb_reason());
    detail::check_dims(w, h, path, where);
    expects(c == 1, where, "'", p, "' has ", c, " channels; a label map must be single-channel");
    std::vector<label_t> labels(static_cast<std::size_t>(w) * h);
    if (stbi_is_16_bit(p.c_str())) {
        std::unique_ptr<stbi_us, detail::stb_deleter> px(stbi_load_16(p.c_str(), &w, &h, &c, 1));
        expects(px != nullptr, where, "cannot decode '", p, "': ", detail::stb_reason());
        std::copy(px.get(), px.get() + labels.size(), labels.begin());
    } else {
        std::unique_ptr<stbi_uc, detail::stb_deleter> px(stbi_load(p.c_str(), &w, &h, &c, 1));
        expects(px != nullptr, where, "cannot decode '", p, "': ", detail::stb_reason());
        std::copy(px.get(), px.get() + labels.size(), labels.begin());
    }
    return label_map(w, h, std::move(labels));
}

/// Writes an 8-bit image (1, 3 or 4 channels) as PNG.
inline void write_png(const std::filesystem::path& path, const image<std::uint8_t>& img) {
    constexpr std::string_view where = "tessel::io::write_png";
    expects(!img.empty(), where, "refusing to write an empty image to '", path.string(), "'");
    expects(img.channels() == 1 || img.channels() == 3 || img.channels() == 4, where, "cannot write ",
            img.channels(), " channels to PNG '", path.string(), "'");
    const int ok = stbi_write_png(path.string().c_str(), static_cast<int>(img.width()), static_cast<int>(img.height()),
                                  static_cast<int>(img.channels()), img.data(),
                                  static_cast<int>(img.width() * img.channels()));
    expects(ok != 0, where, "cannot write '", path.string(), "'");
}

namespace detail {
inline std::uint32_t crc32(const unsigned char* data, std::size_t n, std::uint32_t crc = 0) {
    static const auto table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    crc = ~crc;
    for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}
inline void put_u32(std::vector<unsigned char>& out, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<unsigned char>(v >> s));
}
inline void put_chunk(std::vector<unsigned char>& out, const char* type, const unsigned char* data, std::size_t n) {
    put_u32(out, static_cast<std::uint32_t>(n));
    const std::size_t start = out.size();
    out.insert(out.end(), type, type + 4);
    out.insert(out.end(), data, data + n);
    put_u32(out, crc32(out.data() + start, n + 4));
}
/// A greyscale 16-bit PNG (stb_image_write only writes 8-bit).
inline void write_grey16_png(const std::filesystem::path& path, index_t w, index_t h, const label_t* px) {
    std::vector<unsigned char> raw;
    raw.reserve(static_cast<std::size_t>(h * (1 + 2 * w)));
    for (index_t y = 0; y < h; ++y) {
        raw.push_back(0);  // filter: none
        for (index_t x = 0; x < w; ++x) {
            const auto v = static_cast<std::uint16_t>(px[y * w + x]);
            raw.push_back(static_cast<unsigned char>(v >> 8));
            raw.push_back(static_cast<unsigned char>(v & 0xFF));
        }
    }
    int zlen = 0;
    std::unique_ptr<unsigned char, void (*)(void*)> z(
        stbi_zlib_compress(raw.data(), static_cast<int>(raw.size()), &zlen, 8), [](void* p) { STBIW_FREE(p); });
    expects(z != nullptr, "tessel::io::write_label_png", "compression failed for '", path.string(), "'");
    std::vector<unsigned char> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    std::vector<unsigned char> ihdr;
    put_u32(ihdr, static_cast<std::uint32_t>(w));
    put_u32(ihdr, static_cast<std::uint32_t>(h));
    ihdr.insert(ihdr.end(), {16, 0, 0, 0, 0});  // bit depth 16, greyscale, deflate, no filter, no interlace
    put_chunk(out, "IHDR", ihdr.data(), ihdr.size());
    put_chunk(out, "IDAT", z.get(), static_cast<std::size_t>(zlen));
    put_chunk(out, "IEND", nullptr, 0);
    std::ofstream f(path, std::ios::binary);
    expects(static_cast<bool>(f), "tessel::io::write_label_png", "cannot open '", path.string(), "' for writing");
    f.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
    expects(static_cast<bool>(f), "tessel::io::write_label_png", "cannot write '", path.string(), "'");
}
}  // namespace detail

/// Writes labels as a single-channel PNG: 8-bit when every label is in 0..255, 16-bit when in
/// 0..65535; other labels are an error (relabel first).
inline void write_label_png(const std::filesystem::path& path, const label_map& labels) {
    constexpr std::string_view where = "tessel::io::write_label_png";
    expects(!labels.empty(), where, "refusing to write an empty label map to '", path.string(), "'");
    const auto [mn, mx] = std::minmax_element(labels.values().begin(), labels.values().end());
    expects(*mn >= 0 && *mx <= 65535, where, "labels must lie in 0..65535 for PNG, found ", *mn, "..", *mx);
    if (*mx <= 255) {
        image<std::uint8_t> img(labels.width(), labels.height(), 1);
        std::transform(labels.values().begin(), labels.values().end(), img.data(),
                       [](label_t v) { return static_cast<std::uint8_t>(v); });
        write_png(path, img);
    } else {
        detail::write_grey16_png(path, labels.width(), labels.height(), labels.data());
    }
}

}  // namespace tessel::io
