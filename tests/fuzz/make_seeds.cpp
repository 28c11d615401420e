// Writes the seed corpora of the fuzz targets: FOLDER/image (the bad-input corpus of
// tests/support/bad_inputs.hpp), FOLDER/label_png (its PNGs), FOLDER/scribble (its PNGs and
// scribble maps of class ids and 255), FOLDER/dataset (dataset folders encoded as in
// fuzz_folder.hpp: a BSDS layout with index.txt, ground truths, an image and predictions; one
// without index.txt; a mask set), FOLDER/model_file (a small valid file written by
// model_file::save) and FOLDER/safetensors (a small valid file with F32, F16 and BF16 tensors
// and a __metadata__ entry, written byte by byte).
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/fuzz_folder.hpp"
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
        fs::create_directories(root / "scribble");
        for (const auto& e : fs::directory_iterator(root / "label_png"))
            fs::copy_file(e.path(), root / "scribble" / e.path().filename(), fs::copy_options::overwrite_existing);
        {
            // 8 x 6: unlabelled (255) everywhere but two strokes of classes 0 and 3.
            tessel::label_map strokes(8, 6, 255);
            for (tessel::index_t x = 1; x < 7; ++x) strokes(x, 1) = 0, strokes(x, 4) = 3;
            tessel::io::write_label_png(root / "scribble" / "strokes.png", strokes);
            tessel::io::write_label_png(root / "scribble" / "unlabelled.png", tessel::label_map(4, 4, 255));
        }

        fs::create_directories(root / "dataset");
        const auto file = [](const fs::path& p) {
            std::ifstream f(p, std::ios::binary);
            return std::vector<unsigned char>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
        };
        const auto text = [](const std::string& s) { return std::vector<unsigned char>(s.begin(), s.end()); };
        const auto label_png = [&](const tessel::label_map& m) {
            const fs::path tmp = root / "dataset" / "tmp.png";
            tessel::io::write_label_png(tmp, m);
            auto bytes = file(tmp);
            fs::remove(tmp);
            return bytes;
        };
        const auto seed = [&](const std::string& name, const tessel::fuzz::folder_files& files) {
            const auto bytes = tessel::fuzz::encode_folder(files);
            std::ofstream(root / "dataset" / name, std::ios::binary)
                .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        };
        const tessel::label_map two(5, 4, std::vector<tessel::label_t>{0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 2, 2, 2, 1, 1,
                                                                        2, 2, 2, 2, 2});
        const tessel::label_map one(5, 4, 7), mask(5, 4, std::vector<tessel::label_t>(20, 255));
        tessel::io::write_jpeg(root / "dataset" / "tmp.jpg", tessel::image<std::uint8_t>(5, 4, 3));
        const auto jpg = file(root / "dataset" / "tmp.jpg");
        fs::remove(root / "dataset" / "tmp.jpg");
        seed("bsds_index.bin", {{"index.txt", text("a 5 4 2\nb 5 4 1\n")},
                                {"a_gt0.png", label_png(two)},
                                {"a_gt1.png", label_png(one)},
                                {"b_gt0.png", label_png(two)},
                                {"a.jpg", jpg},
                                {"a.png", label_png(one)},
                                {"b_seg0.png", label_png(two)},
                                {"b_seg1.png", label_png(one)}});
        seed("bsds_names.bin", {{"x_gt0.png", label_png(two)}, {"x_gt1.png", label_png(two)}, {"y_gt0.png", label_png(one)},
                                {"x_seg0.png", label_png(one)}});
        seed("masks.bin", {{"index.txt", text("m 5 4 1\n")}, {"m_gt0.png", label_png(mask)}, {"m.jpg", jpg}});

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
