// tessel/data/bsds.hpp: reader for datasets in the BSDS layout (images + human label maps).
//
// A folder holds <id>.jpg, <id>_gt<k>.png (k = 0..n-1, single-channel labels) and optionally
// index.txt ("<id> <width> <height> <n_gt>" per line). This is the layout of the shared BSDS500
// splits, the BSR golden set (whose gt/ and images/ are separate folders, without index.txt) and
// the binary-mask sets (data/masks.hpp). Predictions use the same naming: <id>.png for one
// segmentation per image, <id>_seg<t>.png (t = 0..T-1) for a family of settings (ODS/OIS).
// Only paths are gathered up front; pixels are read on demand through tessel::io.
#pragma once
#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tessel/core/error.hpp"
#include "tessel/core/image.hpp"
#include "tessel/io/image.hpp"

namespace tessel::data {

namespace fs = std::filesystem;

/// Files of a folder named <id>_<tag><k>.<ext>, grouped by id (sorted as text) and ordered by k.
/// Throws when an id's numbers are not exactly 0..n-1 (a missing or stray file), or when a number
/// is written with a leading zero or more than 9 digits (x_gt01.png and x_gt1.png would otherwise
/// be one annotation, and a number past INT_MAX would read as 0).
[[nodiscard]] inline std::map<std::string, std::vector<fs::path>> scan_numbered(const fs::path& dir,
                                                                                 std::string_view tag,
                                                                                 std::string_view ext = ".png") {
    constexpr std::string_view where = "tessel::data::scan_numbered";
    std::error_code ec;
    expects(fs::is_directory(dir, ec), where, "not a directory: '", dir.string(), "'");
    std::string marker(1, '_');  // not "_" + string: g++ 12 -O2 raises a false -Wrestrict on it
    marker.append(tag);
    std::map<std::string, std::map<int, fs::path>> found;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (!entry.is_regular_file()) continue;
        const std::string name = entry.path().filename().string();
        if (name.size() <= ext.size() || name.compare(name.size() - ext.size(), ext.size(), ext) != 0) continue;
        const std::string stem = name.substr(0, name.size() - ext.size());
        const auto pos = stem.rfind(marker);
        if (pos == std::string::npos || pos == 0) continue;
        const std::string digits = stem.substr(pos + marker.size());
        if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
            continue;
        expects(digits.size() <= 9 && (digits.size() == 1 || digits[0] != '0'), where, "'", dir.string(), "': ", name,
                " is numbered ", digits, "; numbers are written 0, 1, 2, ... without leading zeros, at most 9 digits");
        int k = 0;
        std::from_chars(digits.data(), digits.data() + digits.size(), k);
        found[stem.substr(0, pos)][k] = entry.path();
    }
    std::map<std::string, std::vector<fs::path>> out;
    for (auto& [id, files] : found) {
        int expect = 0;
        for (auto& [k, p] : files) {
            expects(k == expect, where, "'", dir.string(), "': image ", id, " has ", marker, k, ext, " but no ", marker,
                    expect, ext, " (numbers must run 0..n-1)");
            ++expect;
            out[id].push_back(p);
        }
    }
    return out;
}

/// One image of a BSDS-layout dataset.
struct bsds_item {
    std::string id;
    fs::path image;                          ///< <image_dir>/<id>.jpg (may be absent; checked on load)
    std::vector<fs::path> ground_truths;     ///< <gt_dir>/<id>_gt<k>.png, k = 0..n-1
    index_t width = 0, height = 0;           ///< from index.txt; 0 when the folder has none
};

/// A BSDS-layout dataset: the list of images and their human segmentations, ordered by id as text.
class bsds_dataset {
public:
    /// Reads `dir` (index.txt when present, else the <id>_gt<k>.png names).
    explicit bsds_dataset(const fs::path& dir) : bsds_dataset(dir, dir) {}
    /// Ground truths from gt_dir, images from image_dir (the golden set's gt/ and images/).
    bsds_dataset(const fs::path& gt_dir, const fs::path& image_dir) {
        constexpr std::string_view where = "tessel::data::bsds_dataset";
        const auto gts = scan_numbered(gt_dir, "gt");
        const fs::path index = gt_dir / "index.txt";
        std::error_code ec;
        if (fs::exists(index, ec)) {
            std::ifstream in(index);
            expects(static_cast<bool>(in), where, "cannot read '", index.string(), "'");
            std::string line;
            int line_no = 0;
            std::set<std::string> listed;
            while (std::getline(in, line)) {
                ++line_no;
                if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
                std::istringstream ls(line);
                bsds_item item;
                std::size_t n_gt = 0;
                expects(static_cast<bool>(ls >> item.id >> item.width >> item.height >> n_gt), where, "'",
                        index.string(), "' line ", line_no, ": expected '<id> <width> <height> <n_gt>', got '", line,
                        "'");
                expects(item.width > 0 && item.height > 0, where, "'", index.string(), "' line ", line_no, ": image ",
                        item.id, " has size ", item.width, "x", item.height);
                expects(listed.insert(item.id).second, where, "'", index.string(), "' line ", line_no, ": image ",
                        item.id, " is listed twice");
                const auto it = gts.find(item.id);
                expects(it != gts.end(), where, "'", index.string(), "' lists image ", item.id, " but '",
                        gt_dir.string(), "' has no ", item.id, "_gt0.png");
                expects(it->second.size() == n_gt, where, "'", index.string(), "' says image ", item.id, " has ", n_gt,
                        " ground truths, the folder has ", it->second.size());
                item.ground_truths = it->second;
                item.image = image_dir / (item.id + ".jpg");
                m_items.push_back(std::move(item));
            }
            std::sort(m_items.begin(), m_items.end(), [](const bsds_item& a, const bsds_item& b) { return a.id < b.id; });
        } else {
            for (const auto& [id, files] : gts) m_items.push_back({id, image_dir / (id + ".jpg"), files, 0, 0});
        }
        expects(!m_items.empty(), where, "no <id>_gt<k>.png files in '", gt_dir.string(), "'");
    }

    [[nodiscard]] std::size_t size() const noexcept { return m_items.size(); }
    [[nodiscard]] const bsds_item& operator[](std::size_t i) const { return m_items.at(i); }
    [[nodiscard]] const std::vector<bsds_item>& items() const noexcept { return m_items; }
    [[nodiscard]] auto begin() const noexcept { return m_items.begin(); }
    [[nodiscard]] auto end() const noexcept { return m_items.end(); }

    /// The RGB image of item i.
    [[nodiscard]] image<std::uint8_t> load_image(std::size_t i) const { return io::read_image(m_items.at(i).image, 3); }
    /// Every human segmentation of item i; throws if they differ in size from each other.
    [[nodiscard]] std::vector<label_map> load_ground_truths(std::size_t i) const {
        const auto& item = m_items.at(i);
        std::vector<label_map> out;
        for (const auto& p : item.ground_truths) {
            out.push_back(io::read_label_png(p));
            expects(out.back().width() == out.front().width() && out.back().height() == out.front().height(),
                    "tessel::data::bsds_dataset::load_ground_truths", "'", p.string(), "' is ", out.back().width(),
                    "x", out.back().height(), ", '", item.ground_truths.front().string(), "' is ",
                    out.front().width(), "x", out.front().height());
        }
        return out;
    }

private:
    std::vector<bsds_item> m_items;
};

/// The prediction files of image `id` in `dir`: {<id>.png} or <id>_seg0.png .. <id>_seg<T-1>.png;
/// empty when there are none. Throws when both forms exist or the seg numbers have a gap.
[[nodiscard]] inline std::vector<fs::path> find_predictions(const fs::path& dir, const std::string& id) {
    constexpr std::string_view where = "tessel::data::find_predictions";
    std::error_code ec;
    std::vector<fs::path> family;
    for (int t = 0;; ++t) {
        fs::path p = dir / (id + "_seg" + std::to_string(t) + ".png");
        if (!fs::exists(p, ec)) break;
        family.push_back(std::move(p));
    }
    const fs::path single = dir / (id + ".png");
    if (fs::exists(single, ec)) {
        expects(family.empty(), where, "'", dir.string(), "' has both ", id, ".png and ", id,
                "_seg0.png; keep one form");
        return {single};
    }
    if (family.empty()) {
        expects(!fs::exists(dir / (id + "_seg1.png"), ec), where, "'", dir.string(), "' has ", id,
                "_seg1.png but no ", id, "_seg0.png (settings are numbered from 0)");
    }
    return family;
}

}  // namespace tessel::data
