// Fuzz target: tessel::io::read_safetensors (JSON header, dtypes, offsets) on arbitrary bytes.
#include "fuzz/fuzz_common.hpp"
#include "tessel/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto& p = tessel::fuzz::write_input(data, size, ".safetensors");
    tessel::fuzz::refuse_or_accept([&] { (void)tessel::io::read_safetensors(p.string()); });
    return 0;
}
