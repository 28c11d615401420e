// bench/args.hpp: the positional arguments of the bench programs. Each bench takes a few
// optional positional arguments (a repeat or iteration count, an image, ...); `-h` / `--help`
// prints the usage line and exits 0, and a count that is not a whole number in range is one line
// on stderr and exit code 2, never read as 0 (std::atoi would turn "--help" into 0 iterations).
#pragma once
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace tessel::bench {

/// Prints `usage` and exits 0 when any argument is -h or --help.
inline void handle_help(int argc, char** argv, const char* usage) {
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "-h") == 0 || std::strcmp(argv[i], "--help") == 0) {
            std::printf("%s\n", usage);
            std::exit(0);
        }
}

/// argv[i] as an integer in [lo, hi], or `fallback` when there is no argv[i] (or it is empty).
inline long long int_arg(int argc, char** argv, int i, long long fallback, long long lo, long long hi,
                         const char* what) {
    if (i >= argc || *argv[i] == '\0') return fallback;
    const char* s = argv[i];
    long long v = 0;
    const auto [end, ec] = std::from_chars(s, s + std::strlen(s), v);
    if (ec != std::errc{} || *end != '\0' || v < lo || v > hi) {
        std::fprintf(stderr, "%s: argument %d (%s) must be a whole number in [%lld, %lld], got '%s' (see --help)\n",
                     argv[0], i, what, lo, hi, s);
        std::exit(2);
    }
    return v;
}

}  // namespace tessel::bench
