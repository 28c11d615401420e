// libFuzzer support for readers of whole folders (the BSDS and mask dataset readers): one fuzz
// input is a list of files, each written as
//   [name length n: 1 byte] [name: n bytes] [content length L: 2 bytes, little-endian] [content]
// The last record may be cut short (its content is then what remains). Names keep only the
// characters [A-Za-z0-9_.] and may not be "." or ".."; a later file of the same name replaces an
// earlier one. make_seeds.cpp encodes seed folders with encode_folder.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

#include "fuzz/fuzz_common.hpp"

namespace tessel::fuzz {

using folder_files = std::vector<std::pair<std::string, std::vector<unsigned char>>>;

inline std::vector<unsigned char> encode_folder(const folder_files& files) {
    std::vector<unsigned char> out;
    for (const auto& [name, content] : files) {
        if (name.size() > 255 || content.size() > 0xFFFF) __builtin_trap();
        out.push_back(static_cast<unsigned char>(name.size()));
        out.insert(out.end(), name.begin(), name.end());
        out.push_back(static_cast<unsigned char>(content.size() & 0xFF));
        out.push_back(static_cast<unsigned char>(content.size() >> 8));
        out.insert(out.end(), content.begin(), content.end());
    }
    return out;
}

inline folder_files decode_folder(const std::uint8_t* data, std::size_t size) {
    folder_files files;
    std::size_t at = 0;
    while (at < size) {
        const std::size_t n = data[at++];
        std::string name;
        for (std::size_t i = 0; i < n && at < size; ++i, ++at) {
            const unsigned char c = data[at];
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.')
                name.push_back(static_cast<char>(c));
        }
        std::size_t len = 0;
        if (at < size) len = data[at++];
        if (at < size) len |= static_cast<std::size_t>(data[at++]) << 8;
        len = std::min(len, size - at);
        if (!name.empty() && name != "." && name != "..")
            files.emplace_back(std::move(name), std::vector<unsigned char>(data + at, data + at + len));
        at += len;
    }
    return files;
}

/// Writes the files of the input into one scratch folder (emptied first) and returns it.
inline const std::filesystem::path& write_folder(const std::uint8_t* data, std::size_t size) {
    namespace fs = std::filesystem;
    static const fs::path dir = scratch_path("_folder");
    static const bool cleaned = (remove_at_exit(&dir), true);
    (void)cleaned;
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir);
    for (const auto& [name, content] : decode_folder(data, size)) {
        std::FILE* f = std::fopen((dir / name).string().c_str(), "wb");
        if (!f) __builtin_trap();
        if (!content.empty()) std::fwrite(content.data(), 1, content.size(), f);
        std::fclose(f);
    }
    return dir;
}

}  // namespace tessel::fuzz
