// tessel/io/image.hpp: reading and writing images and label maps (PNG, JPEG, BMP... via stb).
//
// read_image     - any 8-bit image stb decodes, as RGB (or the file's channels)
// read_label_png - a single-channel 8- or 16-bit PNG as a label_map
// write_png      - an 8-bit grey, RGB or RGBA image
// write_label_png- a label_map as 8-bit PNG when every label is < 256, else 16-bit
// Every failure (missing, unreadable, truncated or unsupported file, absurd size) throws
// tessel::error naming the function and the path.
#pragma once
#include <algorithm>
#include <array>
#include <cctype>
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

/// The whole file as bytes (images are at most a few hundred MB; the checks below need the
/// header and, for GIF and run-length TGA, the body).
inline std::vector<unsigned char> read_bytes(const std::filesystem::path& path, std::string_view where) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    expects(static_cast<bool>(f), where, "cannot open '", path.string(), "'");
    const auto size = static_cast<std::uint64_t>(f.tellg());
    expects(size <= 0x7FFFFFFFu, where, "'", path.string(), "' is ", size, " bytes; files over 2 GiB are not read");
    std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
    f.seekg(0);
    f.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
    expects(static_cast<bool>(f), where, "cannot read '", path.string(), "'");
    return bytes;
}
inline std::uint32_t le16(const unsigned char* p) { return p[0] | (p[1] << 8); }
inline std::uint32_t le32(const unsigned char* p) {
    return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

/// stb decodes a short BMP, TGA, PNM or GIF without complaint (the missing pixels are whatever
/// the buffer held), and reads PSD, HDR and PIC the same way. PNG and JPEG report truncation
/// themselves. So: the first four are checked against the size their headers imply, the last
/// three are refused. Returns an empty string when the file is complete, else why not.
inline std::string incomplete_reason(const std::vector<unsigned char>& b, int w, int h) {
    const std::size_t n = b.size();
    auto starts = [&](std::string_view magic) {
        return n >= magic.size() && std::equal(magic.begin(), magic.end(), b.begin(),
                                               [](char m, unsigned char c) { return static_cast<unsigned char>(m) == c; });
    };
    const auto W = static_cast<std::uint64_t>(w), H = static_cast<std::uint64_t>(h);
    const auto truncated = [&](std::uint64_t need) {
        return "truncated: " + std::to_string(n) + " bytes, the header implies at least " + std::to_string(need);
    };
    if (starts("\x89PNG") || starts("\xFF\xD8")) return {};
    if (starts("8BPS") || starts("#?RADIANCE") || starts("#?RGBE") || starts("\x53\x80\xF6\x34"))
        return "unsupported format (PSD, HDR and PIC are not read; use PNG, JPEG, BMP, TGA, PNM or GIF)";
    if (starts("GIF8")) {
        // The last byte of a complete GIF is the trailer 0x3B.
        return b.back() == 0x3B ? std::string() : "truncated: the GIF trailer is missing";
    }
    if (starts("P5") || starts("P6")) {
        // Header: magic, width, height, maxval separated by whitespace or comments, then one
        // whitespace byte and the raster.
        std::size_t i = 2;
        std::uint64_t maxval = 0;
        for (int field = 0; field < 3; ++field) {
            for (;;) {
                while (i < n && std::isspace(b[i])) ++i;
                if (i < n && b[i] == '#') {
                    while (i < n && b[i] != '\n' && b[i] != '\r') ++i;
                    continue;
                }
                break;
            }
            std::uint64_t v = 0;
            while (i < n && std::isdigit(b[i])) v = v * 10 + static_cast<std::uint64_t>(b[i++] - '0');
            if (field == 2) maxval = v;
        }
        const std::uint64_t need = i + 1 + W * H * (b[1] == '6' ? 3 : 1) * (maxval > 255 ? 2 : 1);
        return n >= need ? std::string() : truncated(need);
    }
    if (starts("BM")) {
        if (n < 34) return truncated(34);
        const std::uint32_t offset = le32(&b[10]), header = le32(&b[14]);
        const std::uint32_t bpp = header == 12 ? le16(&b[24]) : le16(&b[28]);
        const std::uint32_t compression = header == 12 ? 0 : le32(&b[30]);
        if (compression != 0 && compression != 3) return {};  // RLE: stb refuses it itself
        const std::uint64_t need = offset + (W * bpp + 31) / 32 * 4 * H;
        return n >= need ? std::string() : truncated(need);
    }
    // What remains is TGA (stb's last guess).
    if (n < 18) return truncated(18);
    const std::uint32_t id_length = b[0], cmap_type = b[1], type = b[2], cmap_length = le16(&b[5]);
    const std::uint32_t cmap_bits = b[7], pixel_bytes = (b[16] + 7u) / 8u;
    std::uint64_t at = 18 + id_length + (cmap_type == 1 ? cmap_length * ((cmap_bits + 7) / 8) : 0);
    if (type == 1 || type == 2 || type == 3) {
        const std::uint64_t need = at + W * H * pixel_bytes;
        return n >= need ? std::string() : truncated(need);
    }
    if (type == 9 || type == 10 || type == 11) {
        // Run-length packets: a count byte, then one pixel (a run) or count pixels (raw).
        for (std::uint64_t done = 0; done < W * H;) {
            if (at >= n) return "truncated: the run-length data ends after " + std::to_string(done) + " of " +
                                std::to_string(W * H) + " pixels";
            const std::uint32_t head = b[at++], count = (head & 0x7Fu) + 1;
            at += (head & 0x80u) ? pixel_bytes : std::uint64_t{count} * pixel_bytes;
            done += count;
        }
        return at <= n ? std::string() : truncated(at);
    }
    return {};
}
}  // namespace detail

/// Width, height and channel count of an image file.
struct image_size {
    index_t width = 0, height = 0, channels = 0;
};

namespace detail {
/// The checks every reader starts with: the file exists, is not empty, has a header stb knows and
/// a sane size.
inline image_size read_header(const std::filesystem::path& path, std::string_view where) {
    check_readable(path, where);
    int w = 0, h = 0, c = 0;
    expects(stbi_info(path.string().c_str(), &w, &h, &c) != 0, where, "cannot decode '", path.string(),
            "': ", stb_reason());
    check_dims(w, h, path, where);
    return {w, h, c};
}
/// The whole file, refused when it is shorter than its header implies (incomplete_reason).
inline std::vector<unsigned char> read_complete(const std::filesystem::path& path, const image_size& size,
                                                std::string_view where) {
    std::vector<unsigned char> bytes = read_bytes(path, where);
    const std::string why = incomplete_reason(bytes, static_cast<int>(size.width), static_cast<int>(size.height));
    expects(why.empty(), where, "cannot decode '", path.string(), "': ", why);
    return bytes;
}
}  // namespace detail

/// The size of an image file from its header only (nothing is decoded), with the same checks as
/// read_image: a caller can refuse an image before paying for it.
inline image_size read_image_size(const std::filesystem::path& path) {
    return detail::read_header(path, "tessel::io::read_image_size");
}

/// Reads an image file. channels = 0 keeps the file's channel count; 1, 3 or 4 converts.
inline image<std::uint8_t> read_image(const std::filesystem::path& path, int channels = 3) {
    constexpr std::string_view where = "tessel::io::read_image";
    expects(channels >= 0 && channels <= 4, where, "channels must be 0..4, got ", channels);
    const std::vector<unsigned char> bytes = detail::read_complete(path, detail::read_header(path, where), where);
    int w = 0, h = 0, c = 0;
    std::unique_ptr<stbi_uc, detail::stb_deleter> pixels(
        stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &c, channels));
    expects(pixels != nullptr, where, "cannot decode '", path.string(), "': ", detail::stb_reason());
    const int out_c = channels == 0 ? c : channels;
    image<std::uint8_t> img(w, h, out_c);
    std::copy(pixels.get(), pixels.get() + static_cast<std::size_t>(w) * h * out_c, img.data());
    return img;
}

/// Reads a single-channel 8- or 16-bit PNG of integer labels.
inline label_map read_label_png(const std::filesystem::path& path) {
    constexpr std::string_view where = "tessel::io::read_label_png";
    const std::string p = path.string();
    const image_size size = detail::read_header(path, where);
    expects(size.channels == 1, where, "'", p, "' has ", size.channels, " channels; a label map must be single-channel");
    const std::vector<unsigned char> bytes = detail::read_complete(path, size, where);
    int w = static_cast<int>(size.width), h = static_cast<int>(size.height), c = 1;
    const int len = static_cast<int>(bytes.size());
    std::vector<label_t> labels(static_cast<std::size_t>(w) * h);
    if (stbi_is_16_bit_from_memory(bytes.data(), len)) {
        std::unique_ptr<stbi_us, detail::stb_deleter> px(stbi_load_16_from_memory(bytes.data(), len, &w, &h, &c, 1));
        expects(px != nullptr, where, "cannot decode '", p, "': ", detail::stb_reason());
        std::copy(px.get(), px.get() + labels.size(), labels.begin());
    } else {
        std::unique_ptr<stbi_uc, detail::stb_deleter> px(stbi_load_from_memory(bytes.data(), len, &w, &h, &c, 1));
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
