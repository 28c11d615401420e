// libFuzzer support: the readers under test take paths, so each input is written to one scratch
// file (in /dev/shm when it exists) and read back through the public API. A tessel::error is the
// expected way to refuse an input; anything else escaping (another exception, a sanitizer report,
// a crash) is a finding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "tessel/core/error.hpp"

namespace tessel::fuzz {
/// A scratch path in /dev/shm (or the temporary folder) unique to this process, removed (with
/// whatever is under it) when the process exits normally, as libFuzzer does at the end of a run.
inline std::filesystem::path scratch_path(const std::string& suffix) {
    const std::filesystem::path dir =
        std::filesystem::exists("/dev/shm") ? std::filesystem::path("/dev/shm") : std::filesystem::temp_directory_path();
    return dir / ("tessel_fuzz_" + std::to_string(::getpid()) + suffix);
}
inline void remove_at_exit(const std::filesystem::path* p) {
    static const std::filesystem::path* registered = nullptr;
    registered = p;
    std::atexit([] {
        std::error_code ec;
        std::filesystem::remove_all(*registered, ec);
    });
}
inline const std::filesystem::path& scratch(const char* ext) {
    static const std::filesystem::path p = scratch_path(ext);
    static const bool cleaned = (remove_at_exit(&p), true);
    (void)cleaned;
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
