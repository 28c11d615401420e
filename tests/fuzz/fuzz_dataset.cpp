// Fuzz target: the dataset readers (tessel::data::bsds_dataset, mask_dataset, find_predictions,
// scan_numbered) on a folder built from the input (fuzz_folder.hpp): index.txt, ground-truth,
// mask, prediction and image files with arbitrary names and contents. Besides crashes, a broken
// promise of the readers is a finding: ground truth k of an image is the file <id>_gt<k>.png,
// predictions are <id>.png or <id>_seg0.. in order, masks hold only 0 and 1.
#include <string>

#include "fuzz/fuzz_common.hpp"
#include "fuzz/fuzz_folder.hpp"
#include "tessel/data/bsds.hpp"
#include "tessel/data/masks.hpp"

namespace {
// Enough images to reach every code path; a folder of hundreds only repeats them.
constexpr std::size_t images_checked = 8;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using tessel::fuzz::refuse_or_accept;
    const auto& dir = tessel::fuzz::write_folder(data, size);
    refuse_or_accept([&] {
        const tessel::data::bsds_dataset set(dir);
        for (std::size_t i = 0; i < set.size() && i < images_checked; ++i) {
            const auto& item = set[i];
            for (std::size_t k = 0; k < item.ground_truths.size(); ++k)
                if (item.ground_truths[k] != dir / (item.id + "_gt" + std::to_string(k) + ".png")) __builtin_trap();
            refuse_or_accept([&] {
                const auto gts = set.load_ground_truths(i);
                if (gts.size() != item.ground_truths.size()) __builtin_trap();
            });
            refuse_or_accept([&] { (void)set.load_image(i); });
            refuse_or_accept([&] {
                const auto preds = tessel::data::find_predictions(dir, item.id);
                if (preds.size() == 1 && preds[0] == dir / (item.id + ".png")) return;
                for (std::size_t t = 0; t < preds.size(); ++t)
                    if (preds[t] != dir / (item.id + "_seg" + std::to_string(t) + ".png")) __builtin_trap();
            });
        }
    });
    refuse_or_accept([&] {
        const tessel::data::mask_dataset masks(dir);
        for (std::size_t i = 0; i < masks.size() && i < images_checked; ++i)
            refuse_or_accept([&] {
                const tessel::label_map mask = masks.load_mask(i);
                for (const tessel::label_t v : mask.values())
                    if (v != 0 && v != 1) __builtin_trap();
            });
    });
    refuse_or_accept([&] { (void)tessel::data::scan_numbered(dir, "seg"); });
    return 0;
}
