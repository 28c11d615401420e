// Fuzz target: tessel::io::read_label_png on arbitrary bytes.
#include "fuzz/fuzz_common.hpp"
#include "tessel/io/image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto& p = tessel::fuzz::write_input(data, size, ".png");
    tessel::fuzz::refuse_or_accept([&] { (void)tessel::io::read_label_png(p); });
    return 0;
}
