// tessel/data/masks.hpp: binary-mask datasets (foreground segmentation: Kvasir-SEG, ECSSD, ...).
//
// The BSDS layout with exactly one annotation per image: <id>.jpg, <id>_gt0.png and index.txt,
// where the mask PNG holds 1 (or any non-zero value) for foreground and 0 for background. Masks are
// returned binarised to {0, 1}, the input expected by metrics::foreground_iou.
#pragma once
#include <filesystem>
#include <string_view>

#include "tessel/data/bsds.hpp"

namespace tessel::data {

/// Binarises a label map in place: non-zero -> 1.
inline void binarize(label_map& mask) {
    for (auto& v : mask.values()) v = v != 0 ? 1 : 0;
}

/// A set of images with one binary foreground mask each.
class mask_dataset {
public:
    /// @pre dir holds <id>_gt0.png (and <id>.jpg); no image has a second annotation.
    explicit mask_dataset(const std::filesystem::path& dir) : m_set(dir) {
        for (const auto& item : m_set)
            expects(item.ground_truths.size() == 1, "tessel::data::mask_dataset", "image ", item.id, " in '",
                    dir.string(), "' has ", item.ground_truths.size(),
                    " annotations; a mask set has exactly one (<id>_gt0.png)");
    }
    [[nodiscard]] std::size_t size() const noexcept { return m_set.size(); }
    [[nodiscard]] const bsds_item& operator[](std::size_t i) const { return m_set[i]; }
    [[nodiscard]] auto begin() const noexcept { return m_set.begin(); }
    [[nodiscard]] auto end() const noexcept { return m_set.end(); }
    [[nodiscard]] image<std::uint8_t> load_image(std::size_t i) const { return m_set.load_image(i); }
    /// The mask of item i as a {0, 1} label map.
    [[nodiscard]] label_map load_mask(std::size_t i) const {
        label_map m = io::read_label_png(m_set[i].ground_truths.front());
        binarize(m);
        return m;
    }

private:
    bsds_dataset m_set;
};

}  // namespace tessel::data
