// Fuzz target: tessel::io::model_file::read (header, metadata, tensors, checksums) on arbitrary bytes.
#include "fuzz/fuzz_common.hpp"
#include "tessel/io/model_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto& p = tessel::fuzz::write_input(data, size, ".tsl");
    tessel::fuzz::refuse_or_accept([&] { (void)tessel::io::model_file::read(p); });
    return 0;
}
