// Fuzz target: tessel::io::read_image_size and read_image (every channel count, damaged JPEGs
// refused and accepted) on arbitrary bytes.
#include "fuzz/fuzz_common.hpp"
#include "tessel/io/image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto& p = tessel::fuzz::write_input(data, size, ".img");
    tessel::fuzz::refuse_or_accept([&] { (void)tessel::io::read_image_size(p); });
    const int channels = size ? data[size - 1] % 5 : 3;
    tessel::fuzz::refuse_or_accept([&] { (void)tessel::io::read_image(p, channels); });
    tessel::fuzz::refuse_or_accept([&] { (void)tessel::io::read_image(p, 0, {.allow_truncated = true}); });
    return 0;
}
