// Writes the seed corpora of the fuzz targets: FOLDER/image (the bad-input corpus of
// tests/support/bad_inputs.hpp), FOLDER/label_png (its PNGs) and FOLDER/model_file (a small
// valid file written by model_file::save).
#include <cstdio>
#include <exception>
#include <filesystem>

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
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tessel_fuzz_seeds: %s\n", e.what());
        return 1;
    }
    return 0;
}
