// Writes the bad-input corpus of tests/support/bad_inputs.hpp into a folder and prints one line
// per file: "<name> <width> <height>" (0 0 for a file every reader must refuse). The CLI corpus
// test (tests/cli/run_corpus.cmake) runs the tools on each file.
#include <cstdio>
#include <exception>

#include "support/bad_inputs.hpp"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_bad_inputs FOLDER\n");
        return 2;
    }
    try {
        for (const auto& f : tessel::testing::write_bad_input_corpus(argv[1]))
            std::printf("%s %lld %lld\n", f.name.c_str(), static_cast<long long>(f.width),
                        static_cast<long long>(f.height));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "make_bad_inputs: %s\n", e.what());
        return 1;
    }
    return 0;
}
