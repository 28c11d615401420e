// tessel/io/image.hpp: reading and writing images and label maps.
//
// JPEG goes through libjpeg (libjpeg-turbo) and PNG through libpng, the decoders PIL, OpenCV and
// most published pipelines use, so tessel sees the same pixels their authors saw: JPEG is decoded
// with libjpeg's defaults (islow DCT, fancy upsampling), as PIL does. BMP, TGA, PNM and GIF, which
// those libraries do not read, go through stb_image behind completeness checks of their own.
//
// read_image      - any 8-bit image as RGB (or the file's channels, or 1/2/4 channels)
// read_image_size - width, height, channels from the header, nothing decoded
// read_label_png  - a single-channel 1/2/4/8/16-bit greyscale PNG as a label_map (raw values)
// write_png       - an 8-bit grey, RGB or RGBA image
// write_jpeg      - an 8-bit grey or RGB image
// write_label_png - a label_map as 8-bit PNG when every label is < 256, else 16-bit
// Every failure (missing, unreadable, truncated, corrupt or unsupported file, absurd size) throws
// tessel::error naming the function and the path. A JPEG decoder warning (truncated or corrupt
// entropy data, which libjpeg would paper over with grey) is an error unless
// read_options::allow_truncated is set; a writer that fails removes its partial file.
#pragma once
#include <algorithm>
#include <bit>
#include <cctype>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <png.h>

#include "tessel/core/image.hpp"
#include "tessel/io/detail/stb.hpp"

namespace tessel::io {

/// Images larger than this many pixels are rejected rather than risking exhausting memory.
inline constexpr index_t max_image_pixels = index_t{1} << 28;

/// How read_image treats damaged input.
struct read_options {
    /// Accept a JPEG that libjpeg can only decode with a warning (a truncated file: "Premature end
    /// of JPEG file", or corrupt entropy data); the missing part comes out as libjpeg fills it.
    bool allow_truncated = false;
    /// When set, the warnings accepted under allow_truncated are appended here (one line each).
    std::vector<std::string>* warnings = nullptr;
};

/// Width, height and channel count of an image file.
struct image_size {
    index_t width = 0, height = 0, channels = 0;
};

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
inline void check_dims(std::uint64_t w, std::uint64_t h, const std::filesystem::path& path, std::string_view where) {
    expects(w > 0 && h > 0, where, "image '", path.string(), "' has no pixels (", w, "x", h, ")");
    expects(w <= static_cast<std::uint64_t>(max_image_pixels) && h <= static_cast<std::uint64_t>(max_image_pixels) &&
                w * h <= static_cast<std::uint64_t>(max_image_pixels),
            where, "image '", path.string(), "' is too large (", w, "x", h, " pixels; the limit is ", max_image_pixels,
            ")");
}

/// The whole file as bytes (images are at most a few hundred MB).
inline std::vector<unsigned char> read_bytes(const std::filesystem::path& path, std::string_view where) {
    check_readable(path, where);
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

enum class file_format { png, jpeg, other };
inline file_format sniff(const std::vector<unsigned char>& b) {
    if (b.size() >= 8 && png_sig_cmp(b.data(), 0, 8) == 0) return file_format::png;
    if (b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return file_format::jpeg;
    return file_format::other;
}

/// The three numbers of a binary PNM header (width, height, maxval, with whitespace and '#'
/// comments around them): each value (saturated at 2^40), its digit count, and the offset just
/// past the last digit.
struct pnm_header_fields {
    std::uint64_t value[3] = {0, 0, 0};
    std::size_t digits[3] = {0, 0, 0};
    std::size_t end = 2;
};
inline pnm_header_fields scan_pnm_header(const std::vector<unsigned char>& b) {
    pnm_header_fields f;
    const std::size_t n = b.size();
    std::size_t i = 2;
    for (int field = 0; field < 3; ++field) {
        for (;;) {
            while (i < n && std::isspace(b[i])) ++i;
            if (i < n && b[i] == '#') {
                while (i < n && b[i] != '\n' && b[i] != '\r') ++i;
                continue;
            }
            break;
        }
        for (; i < n && std::isdigit(b[i]); ++i, ++f.digits[field])
            if (f.value[field] < (std::uint64_t{1} << 40))
                f.value[field] = f.value[field] * 10 + static_cast<std::uint64_t>(b[i] - '0');
    }
    f.end = i;
    return f;
}

/// Why a BMP's compression field is not read (empty when it is none or bitfields). stb refuses
/// RLE and compression >= 4 only as a signed int, so 0xFFFFFFFF (-1) passed and it decoded a
/// 57-byte file's claimed 24 x 7077904 canvas from nothing (510 MB, over 10 s under ASan;
/// fuzz_image); and for the values it does refuse, its reason names the last format it tried.
inline std::string bmp_compression_refusal(const std::vector<unsigned char>& b) {
    if (b.size() < 34 || b[0] != 'B' || b[1] != 'M' || le32(&b[14]) == 12) return {};
    const std::uint32_t compression = le32(&b[30]);
    if (compression == 0 || compression == 3) return {};
    static constexpr const char* names[] = {"", " (RLE8)", " (RLE4)", "", " (embedded JPEG)", " (embedded PNG)",
                                            " (alpha bitfields)"};
    return "unsupported BMP compression " + std::to_string(compression) + (compression <= 6 ? names[compression] : "") +
           "; only uncompressed and bitfields BMPs are read";
}

/// stb decodes a short BMP, TGA, PNM or GIF without complaint (the missing pixels are whatever
/// the buffer held), and reads PSD, HDR and PIC the same way. So: the first four are checked
/// against the size their headers imply, the last three are refused. Returns an empty string when
/// the file is complete, else why not.
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
    if (starts("8BPS") || starts("#?RADIANCE") || starts("#?RGBE") || starts("\x53\x80\xF6\x34"))
        return "unsupported format (PSD, HDR and PIC are not read; use PNG, JPEG, BMP, TGA, PNM or GIF)";
    if (starts("GIF8")) {
        // The last byte of a complete GIF is the trailer 0x3B.
        if (b.back() != 0x3B) return "truncated: the GIF trailer is missing";
        // LZW codes are at least 3 bits and each expands to at most 4096 pixels, so a file of n
        // bytes holds at most about 11,000 n pixels. A larger canvas is refused before stb
        // allocates it (a 70-byte file claiming 17993 x 14648 made stb allocate 3 GB; fuzz_image).
        const std::uint64_t most = (static_cast<std::uint64_t>(n) * 8 / 3 + 1) * 4096;
        if (W * H > most)
            return "the header claims " + std::to_string(W) + "x" + std::to_string(H) + " pixels, more than " +
                   std::to_string(n) + " bytes of GIF data can hold";
        return std::string();
    }
    if (starts("P5") || starts("P6")) {
        // Header: magic, width, height, maxval separated by whitespace or comments, then one
        // whitespace byte and the raster.
        const pnm_header_fields f = scan_pnm_header(b);
        const std::uint64_t maxval = f.value[2];
        const std::size_t i = f.end;
        const std::uint64_t need = i + 1 + W * H * (b[1] == '6' ? 3 : 1) * (maxval > 255 ? 2 : 1);
        return n >= need ? std::string() : truncated(need);
    }
    if (starts("BM")) {
        if (n < 34) return truncated(34);
        const std::uint32_t offset = le32(&b[10]), header = le32(&b[14]);
        const std::uint32_t bpp = header == 12 ? le16(&b[24]) : le16(&b[28]);
        // Compression is 0 or 3 here (bmp_compression_refusal).
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

/// Interleaved 8-bit pixels with c channels (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) to `to`
/// channels. Grey from colour uses PIL's "L" weights (ITU-R 601-2 luma, rounded), so that a
/// grey read matches Image.convert("L"); an added alpha is opaque.
inline image<std::uint8_t> convert_channels(const std::uint8_t* px, int w, int h, int c, int to) {
    image<std::uint8_t> out(w, h, to);
    const std::size_t n = static_cast<std::size_t>(w) * static_cast<std::size_t>(h);
    std::uint8_t* o = out.data();
    if (c == to) {
        std::copy(px, px + n * static_cast<std::size_t>(c), o);
        return out;
    }
    for (std::size_t i = 0; i < n; ++i, px += c, o += to) {
        const bool colour = c >= 3;
        const std::uint8_t alpha = (c == 2 || c == 4) ? px[c - 1] : 255;
        std::uint8_t r = px[0], g = colour ? px[1] : px[0], b = colour ? px[2] : px[0];
        if (to <= 2) {
            const std::uint32_t luma = colour ? (r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16 : r;
            o[0] = static_cast<std::uint8_t>(luma);
            if (to == 2) o[1] = alpha;
        } else {
            o[0] = r, o[1] = g, o[2] = b;
            if (to == 4) o[3] = alpha;
        }
    }
    return out;
}

// ---- JPEG (libjpeg) -------------------------------------------------------------------------------
// libjpeg reports a fatal error by calling error_exit, which must not return; the default calls
// exit(). Here it longjmps back to the one setjmp in jpeg_run, whose frame holds only trivially
// destructible state (the jump crosses only libjpeg's C frames), and the message becomes a
// tessel::error after the jump.
struct jpeg_error_state {
    jpeg_error_mgr mgr;  // first member: libjpeg hands back a jpeg_error_mgr*
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    bool allow_warnings;
    bool failed_on_warning;
    int warnings;
    char first_warning[JMSG_LENGTH_MAX];
};
extern "C" inline void tessel_jpeg_error_exit(j_common_ptr cinfo) {
    auto* st = reinterpret_cast<jpeg_error_state*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, st->message);
    std::longjmp(st->jump, 1);
}
extern "C" inline void tessel_jpeg_emit_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;  // trace messages
    auto* st = reinterpret_cast<jpeg_error_state*>(cinfo->err);
    if (!st->allow_warnings) {
        st->failed_on_warning = true;
        (*cinfo->err->format_message)(cinfo, st->message);
        std::longjmp(st->jump, 1);
    }
    if (st->warnings++ == 0) (*cinfo->err->format_message)(cinfo, st->first_warning);
}

struct jpeg_decoded {
    int width = 0, height = 0, channels = 0;
};
/// Reads the header (and, when `pixels` is set, the whole image into it, resized first); returns
/// false with st.message set on a libjpeg error. `pixels` was constructed by the caller, so the
/// jump skips no destructor.
inline bool jpeg_run(const std::vector<unsigned char>& bytes, jpeg_error_state& st, jpeg_decoded& out,
                     std::vector<std::uint8_t>* pixels, std::string& refusal) {
    jpeg_decompress_struct cinfo;
    cinfo.err = jpeg_std_error(&st.mgr);
    st.mgr.error_exit = tessel_jpeg_error_exit;
    st.mgr.emit_message = tessel_jpeg_emit_message;
    if (setjmp(st.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return false;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
    jpeg_read_header(&cinfo, TRUE);
    out.width = static_cast<int>(cinfo.image_width);
    out.height = static_cast<int>(cinfo.image_height);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        refusal = "CMYK JPEG is not supported (convert it to RGB first)";
        jpeg_destroy_decompress(&cinfo);
        return true;
    }
    out.channels = cinfo.jpeg_color_space == JCS_GRAYSCALE ? 1 : 3;
    if (pixels && out.width > 0 && out.height > 0 &&
        static_cast<std::uint64_t>(out.width) * static_cast<std::uint64_t>(out.height) <=
            static_cast<std::uint64_t>(max_image_pixels)) {
        // libjpeg's defaults, as PIL leaves them: JDCT_ISLOW, fancy upsampling, no dithering.
        cinfo.out_color_space = out.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
        jpeg_start_decompress(&cinfo);
        const std::size_t stride = static_cast<std::size_t>(cinfo.output_width) * cinfo.output_components;
        pixels->resize(stride * cinfo.output_height);
        while (cinfo.output_scanline < cinfo.output_height) {
            JSAMPROW row = pixels->data() + stride * cinfo.output_scanline;
            jpeg_read_scanlines(&cinfo, &row, 1);
        }
        jpeg_finish_decompress(&cinfo);
    }
    jpeg_destroy_decompress(&cinfo);
    return true;
}
inline jpeg_decoded jpeg_decode(const std::vector<unsigned char>& bytes, std::vector<std::uint8_t>* pixels,
                                const read_options& opts, const std::filesystem::path& path, std::string_view where) {
    // Heap-allocated: jmp_buf and the message buffers are large, and nothing here may move during the jump.
    auto st = std::make_unique<jpeg_error_state>();
    st->allow_warnings = opts.allow_truncated;
    st->failed_on_warning = false;
    st->warnings = 0;
    jpeg_decoded out;
    std::string refusal;
    const bool ok = jpeg_run(bytes, *st, out, pixels, refusal);
    expects(ok, where, "cannot decode JPEG '", path.string(), "': ", st->message,
            st->failed_on_warning && pixels ? " (read_options::allow_truncated, or tessel-segment --allow-truncated, accepts a damaged JPEG)" : "");
    expects(refusal.empty(), where, "cannot decode '", path.string(), "': ", refusal);
    if (st->warnings > 0 && opts.warnings)
        opts.warnings->push_back("'" + path.string() + "': " + st->first_warning +
                                 (st->warnings > 1 ? " (and " + std::to_string(st->warnings - 1) + " more)" : ""));
    return out;
}

// ---- PNG (libpng) ---------------------------------------------------------------------------------
// libpng's errors longjmp to png_jmpbuf, set in png_run: the same discipline as jpeg_run.
struct png_memory_source {
    const unsigned char* data;
    std::size_t size, at;
};
extern "C" inline void tessel_png_read_memory(png_structp png, png_bytep out, png_size_t n) {
    auto* src = static_cast<png_memory_source*>(png_get_io_ptr(png));
    if (n > src->size - src->at) png_error(png, "unexpected end of file (truncated PNG)");
    std::memcpy(out, src->data + src->at, n);
    src->at += n;
}
struct png_error_state {
    char message[256];
};
extern "C" inline void tessel_png_error(png_structp png, png_const_charp msg) {
    auto* st = static_cast<png_error_state*>(png_get_error_ptr(png));
    std::snprintf(st->message, sizeof st->message, "%s", msg ? msg : "libpng error");
    png_longjmp(png, 1);
}
extern "C" inline void tessel_png_warning(png_structp, png_const_charp) {}

enum class png_mode { header, pixels8, labels };
struct png_decoded {
    std::uint64_t width = 0, height = 0;
    int channels = 0, bit_depth = 0, color_type = 0;
};
/// Reads the header, then in pixels8 mode the image as 8-bit grey/grey+alpha/RGB/RGBA (palette
/// expanded, tRNS to alpha, 16-bit to its high byte as PIL does, sub-byte grey scaled to 0..255),
/// in labels mode a greyscale image as raw values (sub-byte unpacked unscaled, 16-bit native).
inline bool png_run(const std::vector<unsigned char>& bytes, png_error_state& st, png_decoded& out, png_mode mode,
                    std::vector<std::uint8_t>* pixels8, std::vector<std::uint16_t>* pixels16) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, tessel_png_error, tessel_png_warning);
    if (!png) {
        std::snprintf(st.message, sizeof st.message, "out of memory");
        return false;
    }
    png_infop info = png_create_info_struct(png);
    png_memory_source src{bytes.data(), bytes.size(), 0};
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
        return false;
    }
    if (!info) png_error(png, "out of memory");
    png_set_read_fn(png, &src, tessel_png_read_memory);
    png_set_user_limits(png, 0x7FFFFFFF, 0x7FFFFFFF);  // tessel checks the pixel count itself
    png_read_info(png, info);
    out.width = png_get_image_width(png, info);
    out.height = png_get_image_height(png, info);
    out.bit_depth = png_get_bit_depth(png, info);
    out.color_type = png_get_color_type(png, info);
    const bool trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    switch (out.color_type) {
        case PNG_COLOR_TYPE_GRAY: out.channels = trns ? 2 : 1; break;
        case PNG_COLOR_TYPE_GRAY_ALPHA: out.channels = 2; break;
        case PNG_COLOR_TYPE_PALETTE: out.channels = trns ? 4 : 3; break;
        case PNG_COLOR_TYPE_RGB: out.channels = trns ? 4 : 3; break;
        default: out.channels = 4; break;
    }
    const bool fits = out.width > 0 && out.height > 0 && out.width * out.height <= static_cast<std::uint64_t>(max_image_pixels);
    if (fits && mode != png_mode::header) {
        // Deflate expands at most 1032:1, so a short file claiming many pixels is refused before
        // the pixel buffer is allocated rather than after.
        const std::uint64_t raw =
            out.height * (1 + (out.width * png_get_channels(png, info) * static_cast<std::uint64_t>(out.bit_depth) + 7) / 8);
        if (raw > 1032 * static_cast<std::uint64_t>(bytes.size()) + 65536) {
            std::snprintf(st.message, sizeof st.message, "its %zu bytes cannot hold %llux%llu pixels (truncated or corrupt)",
                          bytes.size(), static_cast<unsigned long long>(out.width),
                          static_cast<unsigned long long>(out.height));
            png_destroy_read_struct(&png, &info, nullptr);
            return false;
        }
    }
    if (mode == png_mode::pixels8 && fits) {
        png_set_palette_to_rgb(png);
        png_set_expand_gray_1_2_4_to_8(png);
        if (trns) png_set_tRNS_to_alpha(png);
        png_set_strip_16(png);
        const int passes = png_set_interlace_handling(png);
        png_read_update_info(png, info);
        const std::size_t stride = png_get_rowbytes(png, info);
        pixels8->resize(stride * out.height);
        for (int pass = passes; pass > 0; --pass)
            for (std::uint64_t y = 0; y < out.height; ++y) png_read_row(png, pixels8->data() + stride * y, nullptr);
        png_read_end(png, nullptr);
    } else if (mode == png_mode::labels && fits && out.color_type == PNG_COLOR_TYPE_GRAY) {
        if (out.bit_depth < 8) png_set_packing(png);
        if (out.bit_depth == 16 && std::endian::native == std::endian::little) png_set_swap(png);  // PNG is big-endian
        const int passes = png_set_interlace_handling(png);
        png_read_update_info(png, info);
        const std::size_t stride = png_get_rowbytes(png, info);
        unsigned char* base = nullptr;
        if (out.bit_depth == 16) {
            pixels16->resize(static_cast<std::size_t>(out.width * out.height));
            base = reinterpret_cast<unsigned char*>(pixels16->data());
        } else {
            pixels8->resize(static_cast<std::size_t>(out.width * out.height));
            base = pixels8->data();
        }
        for (int pass = passes; pass > 0; --pass)
            for (std::uint64_t y = 0; y < out.height; ++y) png_read_row(png, base + stride * y, nullptr);
        png_read_end(png, nullptr);
    }
    png_destroy_read_struct(&png, &info, nullptr);
    return true;
}
inline png_decoded png_decode(const std::vector<unsigned char>& bytes, png_mode mode, std::vector<std::uint8_t>* p8,
                              std::vector<std::uint16_t>* p16, const std::filesystem::path& path,
                              std::string_view where) {
    auto st = std::make_unique<png_error_state>();
    st->message[0] = '\0';
    png_decoded out;
    expects(png_run(bytes, *st, out, mode, p8, p16), where, "cannot decode PNG '", path.string(), "': ", st->message);
    return out;
}

/// Header-level facts of any supported file, with the size checks every reader starts with.
inline image_size header_of(const std::vector<unsigned char>& bytes, const std::filesystem::path& path,
                            std::string_view where) {
    switch (sniff(bytes)) {
        case file_format::jpeg: {
            const jpeg_decoded d = jpeg_decode(bytes, nullptr, read_options{}, path, where);
            check_dims(static_cast<std::uint64_t>(d.width), static_cast<std::uint64_t>(d.height), path, where);
            return {d.width, d.height, d.channels};
        }
        case file_format::png: {
            const png_decoded d = png_decode(bytes, png_mode::header, nullptr, nullptr, path, where);
            check_dims(d.width, d.height, path, where);
            return {static_cast<index_t>(d.width), static_cast<index_t>(d.height), d.channels};
        }
        case file_format::other: break;
    }
    if (bytes.size() >= 2 && bytes[0] == 'P' && (bytes[1] == '5' || bytes[1] == '6')) {
        // stb's PNM header parser overflows int on a long number (found by fuzz_image); refuse
        // any header field of more than 9 digits before stb sees it.
        const pnm_header_fields f = scan_pnm_header(bytes);
        for (const std::size_t digits : f.digits)
            expects(digits <= 9, where, "cannot decode '", path.string(), "': a PNM header number has ", digits,
                    " digits");
    }
    const std::string bmp = bmp_compression_refusal(bytes);
    expects(bmp.empty(), where, "cannot decode '", path.string(), "': ", bmp);
    int w = 0, h = 0, c = 0;
    expects(stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &c) != 0, where,
            "cannot decode '", path.string(), "': ",
            stbi_failure_reason() ? stb_reason() : std::string("not an image file of a supported format"),
            " (supported: PNG, JPEG, BMP, TGA, PNM, GIF)");
    check_dims(static_cast<std::uint64_t>(w), static_cast<std::uint64_t>(h), path, where);
    return {w, h, c};
}

/// Writes `bytes` produced by `encode(FILE*)` to path; on any failure the partial file is removed.
template <class Encode>
void write_file(const std::filesystem::path& path, std::string_view where, Encode&& encode) {
    std::FILE* f = std::fopen(path.string().c_str(), "wb");
    expects(f != nullptr, where, "cannot open '", path.string(), "' for writing");
    std::string failure = encode(f);
    if (std::fclose(f) != 0 && failure.empty()) failure = "write error";
    if (!failure.empty()) {
        std::error_code ec;
        std::filesystem::remove(path, ec);
        expects(false, where, "cannot write '", path.string(), "': ", failure);
    }
}

inline bool png_write_run(std::FILE* f, png_error_state& st, std::uint32_t w, std::uint32_t h, int bit_depth,
                          int color_type, const unsigned char* rows, std::size_t stride) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &st, tessel_png_error, tessel_png_warning);
    if (!png) {
        std::snprintf(st.message, sizeof st.message, "out of memory");
        return false;
    }
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, info ? &info : nullptr);
        return false;
    }
    if (!info) png_error(png, "out of memory");
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, bit_depth, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    if (bit_depth == 16 && std::endian::native == std::endian::little) png_set_swap(png);
    for (std::uint32_t y = 0; y < h; ++y) png_write_row(png, rows + stride * y);
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    return std::ferror(f) == 0 || (std::snprintf(st.message, sizeof st.message, "write error"), false);
}
inline void write_png_rows(const std::filesystem::path& path, std::string_view where, index_t w, index_t h,
                           int bit_depth, int color_type, const unsigned char* rows, std::size_t stride) {
    write_file(path, where, [&](std::FILE* f) -> std::string {
        auto st = std::make_unique<png_error_state>();
        st->message[0] = '\0';
        return png_write_run(f, *st, static_cast<std::uint32_t>(w), static_cast<std::uint32_t>(h), bit_depth,
                             color_type, rows, stride)
                   ? std::string()
                   : std::string(st->message);
    });
}

inline bool jpeg_write_run(std::FILE* f, jpeg_error_state& st, const image<std::uint8_t>& img, int quality) {
    jpeg_compress_struct cinfo;
    cinfo.err = jpeg_std_error(&st.mgr);
    st.mgr.error_exit = tessel_jpeg_error_exit;
    if (setjmp(st.jump)) {
        jpeg_destroy_compress(&cinfo);
        return false;
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = static_cast<JDIMENSION>(img.width());
    cinfo.image_height = static_cast<JDIMENSION>(img.height());
    cinfo.input_components = static_cast<int>(img.channels());
    cinfo.in_color_space = img.channels() == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    const std::size_t stride = static_cast<std::size_t>(img.width() * img.channels());
    while (cinfo.next_scanline < cinfo.image_height) {
        // libjpeg's API takes non-const rows but does not write to them.
        JSAMPROW row = const_cast<JSAMPLE*>(img.data() + stride * cinfo.next_scanline);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return true;
}
}  // namespace detail

/// The size of an image file from its header only (nothing is decoded), with the same checks as
/// read_image: a caller can refuse an image before paying for it.
inline image_size read_image_size(const std::filesystem::path& path) {
    constexpr std::string_view where = "tessel::io::read_image_size";
    return detail::header_of(detail::read_bytes(path, where), path, where);
}

/// Reads an image file. channels = 0 keeps the file's channel count; 1, 2, 3 or 4 converts.
inline image<std::uint8_t> read_image(const std::filesystem::path& path, int channels = 3,
                                      const read_options& options = {}) {
    constexpr std::string_view where = "tessel::io::read_image";
    expects(channels >= 0 && channels <= 4, where, "channels must be 0..4, got ", channels);
    const std::vector<unsigned char> bytes = detail::read_bytes(path, where);
    const image_size size = detail::header_of(bytes, path, where);
    const int w = static_cast<int>(size.width), h = static_cast<int>(size.height);
    std::vector<std::uint8_t> px;
    int c = static_cast<int>(size.channels);
    switch (detail::sniff(bytes)) {
        case detail::file_format::jpeg: detail::jpeg_decode(bytes, &px, options, path, where); break;
        case detail::file_format::png: detail::png_decode(bytes, detail::png_mode::pixels8, &px, nullptr, path, where); break;
        case detail::file_format::other: {
            const std::string why = detail::incomplete_reason(bytes, w, h);
            expects(why.empty(), where, "cannot decode '", path.string(), "': ", why);
            int sw = 0, sh = 0, sc = 0;
            std::unique_ptr<stbi_uc, detail::stb_deleter> pixels(
                stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &sw, &sh, &sc, 0));
            expects(pixels != nullptr, where, "cannot decode '", path.string(), "': ", detail::stb_reason());
            expects(sw == w && sh == h, where, "cannot decode '", path.string(), "': the header says ", w, "x", h,
                    ", the data ", sw, "x", sh);
            c = sc;
            px.assign(pixels.get(), pixels.get() + static_cast<std::size_t>(w) * h * sc);
            break;
        }
    }
    expects(px.size() == static_cast<std::size_t>(w) * h * c, where, "cannot decode '", path.string(),
            "': decoded ", px.size(), " bytes for ", w, "x", h, "x", c);
    return detail::convert_channels(px.data(), w, h, c, channels == 0 ? c : channels);
}

/// Reads a single-channel greyscale PNG (1, 2, 4, 8 or 16 bits) of integer labels; the stored
/// values are the labels (sub-byte depths are not rescaled).
inline label_map read_label_png(const std::filesystem::path& path) {
    constexpr std::string_view where = "tessel::io::read_label_png";
    const std::string p = path.string();
    const std::vector<unsigned char> bytes = detail::read_bytes(path, where);
    expects(detail::sniff(bytes) == detail::file_format::png, where, "'", p, "' is not a PNG file");
    std::vector<std::uint8_t> p8;
    std::vector<std::uint16_t> p16;
    const detail::png_decoded d = detail::png_decode(bytes, detail::png_mode::labels, &p8, &p16, path, where);
    detail::check_dims(d.width, d.height, path, where);
    expects(d.color_type == PNG_COLOR_TYPE_GRAY, where, "'", p, "' has ", d.channels,
            d.color_type == PNG_COLOR_TYPE_PALETTE ? " channels (palette)" : " channels",
            "; a label map must be single-channel greyscale");
    std::vector<label_t> labels(static_cast<std::size_t>(d.width * d.height));
    if (d.bit_depth == 16)
        std::copy(p16.begin(), p16.end(), labels.begin());
    else
        std::copy(p8.begin(), p8.end(), labels.begin());
    return label_map(static_cast<index_t>(d.width), static_cast<index_t>(d.height), std::move(labels));
}

/// Writes an 8-bit image (1, 2, 3 or 4 channels) as PNG.
inline void write_png(const std::filesystem::path& path, const image<std::uint8_t>& img) {
    constexpr std::string_view where = "tessel::io::write_png";
    expects(!img.empty(), where, "refusing to write an empty image to '", path.string(), "'");
    expects(img.channels() >= 1 && img.channels() <= 4, where, "cannot write ", img.channels(), " channels to PNG '",
            path.string(), "'");
    static constexpr int types[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                    PNG_COLOR_TYPE_RGB_ALPHA};
    detail::write_png_rows(path, where, img.width(), img.height(), 8, types[img.channels() - 1], img.data(),
                           static_cast<std::size_t>(img.width() * img.channels()));
}

/// Writes an 8-bit grey or RGB image as baseline JPEG at the given quality (1..100).
inline void write_jpeg(const std::filesystem::path& path, const image<std::uint8_t>& img, int quality = 95) {
    constexpr std::string_view where = "tessel::io::write_jpeg";
    expects(!img.empty(), where, "refusing to write an empty image to '", path.string(), "'");
    expects(img.channels() == 1 || img.channels() == 3, where, "cannot write ", img.channels(),
            " channels to JPEG '", path.string(), "' (1 or 3)");
    expects(quality >= 1 && quality <= 100, where, "quality must be 1..100, got ", quality);
    expects(img.width() <= 65500 && img.height() <= 65500, where, "JPEG is limited to 65500 pixels a side, got ",
            img.width(), "x", img.height());
    detail::write_file(path, where, [&](std::FILE* f) -> std::string {
        auto st = std::make_unique<detail::jpeg_error_state>();
        return detail::jpeg_write_run(f, *st, img, quality) ? std::string() : std::string(st->message);
    });
}

/// Writes labels as a single-channel PNG: 8-bit when every label is in 0..255, 16-bit when in
/// 0..65535; other labels are an error (relabel first).
inline void write_label_png(const std::filesystem::path& path, const label_map& labels) {
    constexpr std::string_view where = "tessel::io::write_label_png";
    expects(!labels.empty(), where, "refusing to write an empty label map to '", path.string(), "'");
    const auto [mn, mx] = std::minmax_element(labels.values().begin(), labels.values().end());
    expects(*mn >= 0 && *mx <= 65535, where, "labels must lie in 0..65535 for PNG, found ", *mn, "..", *mx);
    const auto n = static_cast<std::size_t>(labels.width() * labels.height());
    if (*mx <= 255) {
        std::vector<std::uint8_t> px(n);
        std::transform(labels.values().begin(), labels.values().end(), px.begin(),
                       [](label_t v) { return static_cast<std::uint8_t>(v); });
        detail::write_png_rows(path, where, labels.width(), labels.height(), 8, PNG_COLOR_TYPE_GRAY, px.data(),
                               static_cast<std::size_t>(labels.width()));
    } else {
        std::vector<std::uint16_t> px(n);
        std::transform(labels.values().begin(), labels.values().end(), px.begin(),
                       [](label_t v) { return static_cast<std::uint16_t>(v); });
        detail::write_png_rows(path, where, labels.width(), labels.height(), 16, PNG_COLOR_TYPE_GRAY,
                               reinterpret_cast<const unsigned char*>(px.data()),
                               static_cast<std::size_t>(labels.width()) * 2);
    }
}

}  // namespace tessel::io
