// Every reader on the damaged-file corpus of tests/support/bad_inputs.hpp: each file decodes to
// the size it claims or is refused with a tessel::error saying why; nothing crashes or hangs.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "support/bad_inputs.hpp"
#include "tessel/io/image.hpp"

namespace fs = std::filesystem;

TEST_CASE("io: the bad-input corpus: each file decodes to its size or is refused with a reason") {
    const fs::path dir = fs::temp_directory_path() / "tessel_test_bad_inputs";
    fs::remove_all(dir);
    const auto corpus = tessel::testing::write_bad_input_corpus(dir);
    CHECK(corpus.size() == 43);
    int refused = 0;
    for (const auto& f : corpus) {
        CAPTURE(f.name);
        const fs::path p = dir / f.name;
        if (f.width > 0) {
            const auto img = tessel::io::read_image(p);
            CHECK(img.width() == f.width);
            CHECK(img.height() == f.height);
            CHECK(img.channels() == 3);
            const auto size = tessel::io::read_image_size(p);
            CHECK(size.width == f.width);
            CHECK(size.height == f.height);
            continue;
        }
        ++refused;
        try {
            (void)tessel::io::read_image(p);
            FAIL("read_image accepted a bad file");
        } catch (const tessel::error& e) {
            const std::string msg = e.what();
            CAPTURE(msg);
            CHECK(msg.find(f.error_contains) != std::string::npos);
            CHECK(msg.find(f.name) != std::string::npos);
            CHECK(msg.find('\n') == std::string::npos);
        }
        // The label reader refuses it too (all corpus files that are not good images are bad
        // PNGs or not PNG at all).
        CHECK_THROWS_AS((void)tessel::io::read_label_png(p), tessel::error);
    }
    CHECK(refused == 29);
    // The 16-bit label file keeps its values through read_label_png.
    CHECK(tessel::io::read_label_png(dir / "labels16.png").values() == std::vector<tessel::label_t>(20, 40000));
    const auto every = tessel::io::read_label_png(dir / "labels_every_pixel.png");
    CHECK(every.values().front() == 0);
    CHECK(every.values().back() == 65535);
    CHECK(every.count_labels() == 65536);
    fs::remove_all(dir);
}
