// Writes the seed corpora of the fuzz targets: FOLDER/image (the bad-input corpus of
// tests/support/bad_inputs.hpp), FOLDER/label_png (its PNGs) and FOLDER/model_file (a small
// valid file written by model_file::save) and FOLDER/safetensors (a small valid file with F32,
// F16 and BF16 tensors and a __metadata__ entry, written byte by byte).
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "support/bad_inputs.hpp"
#include "tessel/io/model_file.hpp"

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    if (argc != 2) {
        std::fprintf(stderr, "usage: tessel_fuzz_seeds FOLDER\n");
        return 2;
    }
    try {
        const fs::path root = argv[1];
        tessel::testing::write_bad_input_corpus(root / "image");
        fs::create_directories(root / "label_png");
        for (const auto& e : fs::directory_iterator(root / "image"))
            if (e.path().extension() == ".png") fs::copy_file(e.path(), root / "label_png" / e.path().filename(),
                                                              fs::copy_options::overwrite_existing);
        fs::create_directories(root / "model_file");
        tessel::tensor<float> a({2, 3}), b({4});
        for (tessel::index_t i = 0; i < 6; ++i) a.data()[i] = static_cast<float>(i) * 0.5f;
        for (tessel::index_t i = 0; i < 4; ++i) b.data()[i] = -static_cast<float>(i);
        tessel::io::model_file m;
        m.metadata["network"] = "seed";
        m.add("encoder/param/0/weight", a);
        m.add("encoder/param/1/bias", b);
        m.save(root / "model_file" / "seed.tsl");

        fs::create_directories(root / "safetensors");
        std::string header = R"({"__metadata__":{"format":"pt"},)"
                             R"("module.blocks.0.attn.qkv.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                             R"("pos_embed":{"dtype":"F16","shape":[3],"data_offsets":[16,22]},)"
                             R"("cls_token":{"dtype":"BF16","shape":[1,1,1],"data_offsets":[22,24]}})";
        while (header.size() % 8 != 0) header += ' ';
        const unsigned char data[24] = {0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64,  // 1, 2, 3, 4
                                        0, 60, 0, 192, 0, 124,                                  // 1, -2, inf
                                        128, 191};                                              // -1
        std::ofstream st(root / "safetensors" / "seed.safetensors", std::ios::binary);
        const auto n = static_cast<unsigned long long>(header.size());
        for (int i = 0; i < 8; ++i) st.put(static_cast<char>((n >> (8 * i)) & 0xFF));
        st.write(header.data(), static_cast<std::streamsize>(header.size()));
        st.write(reinterpret_cast<const char*>(data), sizeof data);
        if (!st) throw std::runtime_error("cannot write the safetensors seed");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tessel_fuzz_seeds: %s\n", e.what());
        return 1;
    }
    return 0;
}
