// libFuzzer support: the readers under test take paths, so each input is written to one scratch
// file (in /dev/shm when it exists) and read back through the public API. A tessel::error is the
// expected way to refuse an input; anything else escaping (another exception, a sanitizer report,
// a crash) is a finding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "tessel/core/error.hpp"

namespace tessel::fuzz {
inline const std::filesystem::path& scratch(const char* ext) {
    static const std::filesystem::path p = [&] {
        const std::filesystem::path dir =
            std::filesystem::exists("/dev/shm") ? std::filesystem::path("/dev/shm") : std::filesystem::temp_directory_path();
        return dir / ("tessel_fuzz_" + std::to_string(::getpid()) + ext);
    }();
    return p;
}
inline const std::filesystem::path& write_input(const std::uint8_t* data, std::size_t size, const char* ext) {
    const auto& p = scratch(ext);
    std::FILE* f = std::fopen(p.string().c_str(), "wb");
    if (!f) __builtin_trap();
    if (size) std::fwrite(data, 1, size, f);
    std::fclose(f);
    return p;
}
template <class F>
void refuse_or_accept(F&& read) {
    try {
        read();
    } catch (const tessel::error&) {
    }
}
}  // namespace tessel::fuzz
