// tessel/core/image.hpp: host images (interleaved H x W x C) and label maps (H x W integers).
//
// These are the vocabulary types at tessel's edges: files are read into them, superpixel and graph
// stages exchange them, and the metrics score them. Both live in host memory; a stage on the cuda
// backend copies what it needs to the device (see docs/backends.md). Pixel (x, y) channel c of an
// image is at data[(y * width + x) * channels + c].
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "tessel/core/tensor.hpp"

namespace tessel {

/// A host image with interleaved channels (RGB order for colour images).
template <class T>
class image {
public:
    using value_type = T;

    image() = default;
    image(index_t width, index_t height, index_t channels, T value = T{})
        : m_width(width), m_height(height), m_channels(channels) {
        expects(width >= 0 && height >= 0 && channels >= 0, "tessel::image", "negative size ", width, "x",
                height, "x", channels);
        m_data.assign(static_cast<std::size_t>(width * height * channels), value);
    }

    [[nodiscard]] index_t width() const noexcept { return m_width; }
    [[nodiscard]] index_t height() const noexcept { return m_height; }
    [[nodiscard]] index_t channels() const noexcept { return m_channels; }
    [[nodiscard]] index_t num_pixels() const noexcept { return m_width * m_height; }
    [[nodiscard]] bool empty() const noexcept { return m_data.empty(); }
    [[nodiscard]] T* data() noexcept { return m_data.data(); }
    [[nodiscard]] const T* data() const noexcept { return m_data.data(); }
    [[nodiscard]] std::vector<T>& values() noexcept { return m_data; }
    [[nodiscard]] const std::vector<T>& values() const noexcept { return m_data; }

    [[nodiscard]] T& operator()(index_t x, index_t y, index_t c = 0) noexcept {
        return m_data[static_cast<std::size_t>((y * m_width + x) * m_channels + c)];
    }
    [[nodiscard]] const T& operator()(index_t x, index_t y, index_t c = 0) const noexcept {
        return m_data[static_cast<std::size_t>((y * m_width + x) * m_channels + c)];
    }

private:
    index_t m_width = 0, m_height = 0, m_channels = 0;
    std::vector<T> m_data;
};

/// A segmentation: one integer label per pixel, row-major.
class label_map {
public:
    label_map() = default;
    label_map(index_t width, index_t height, label_t value = 0) : m_width(width), m_height(height) {
        expects(width >= 0 && height >= 0, "tessel::label_map", "negative size ", width, "x", height);
        m_labels.assign(static_cast<std::size_t>(width * height), value);
    }
    label_map(index_t width, index_t height, std::vector<label_t> labels)
        : m_width(width), m_height(height), m_labels(std::move(labels)) {
        expects(static_cast<index_t>(m_labels.size()) == width * height, "tessel::label_map", "size ", width, "x",
                height, " needs ", width * height, " labels, got ", m_labels.size());
    }

    [[nodiscard]] index_t width() const noexcept { return m_width; }
    [[nodiscard]] index_t height() const noexcept { return m_height; }
    [[nodiscard]] index_t size() const noexcept { return m_width * m_height; }
    [[nodiscard]] bool empty() const noexcept { return m_labels.empty(); }
    [[nodiscard]] label_t* data() noexcept { return m_labels.data(); }
    [[nodiscard]] const label_t* data() const noexcept { return m_labels.data(); }
    [[nodiscard]] std::vector<label_t>& values() noexcept { return m_labels; }
    [[nodiscard]] const std::vector<label_t>& values() const noexcept { return m_labels; }
    [[nodiscard]] label_t& operator()(index_t x, index_t y) noexcept {
        return m_labels[static_cast<std::size_t>(y * m_width + x)];
    }
    [[nodiscard]] label_t operator()(index_t x, index_t y) const noexcept {
        return m_labels[static_cast<std::size_t>(y * m_width + x)];
    }

    /// Number of distinct labels.
    [[nodiscard]] index_t count_labels() const {
        std::vector<label_t> v = m_labels;
        std::sort(v.begin(), v.end());
        return static_cast<index_t>(std::unique(v.begin(), v.end()) - v.begin());
    }

private:
    index_t m_width = 0, m_height = 0;
    std::vector<label_t> m_labels;
};

/// Relabels to 0..K-1 in order of first appearance (row-major); returns K.
inline index_t relabel_sequential(label_map& labels) {
    label_t next = 0;
    label_t* p = labels.data();
    // A dense lookup when labels are small non-negative ints, otherwise sort-based.
    label_t lo = 0, hi = -1;
    if (!labels.empty()) {
        auto [mn, mx] = std::minmax_element(p, p + labels.size());
        lo = *mn;
        hi = *mx;
    }
    if (hi >= lo && static_cast<index_t>(hi) - lo < (index_t{1} << 26)) {
        std::vector<label_t> map(static_cast<std::size_t>(hi - lo + 1), -1);
        for (index_t i = 0; i < labels.size(); ++i) {
            label_t& m = map[static_cast<std::size_t>(p[i] - lo)];
            if (m < 0) m = next++;
            p[i] = m;
        }
        return next;
    }
    std::vector<label_t> sorted(p, p + labels.size());
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    std::vector<label_t> order(sorted.size(), -1);
    for (index_t i = 0; i < labels.size(); ++i) {
        auto k = static_cast<std::size_t>(std::lower_bound(sorted.begin(), sorted.end(), p[i]) - sorted.begin());
        if (order[k] < 0) order[k] = next++;
        p[i] = order[k];
    }
    return next;
}

/// Converts an 8-bit image to a [1, C, H, W] float tensor on backend B, scaled by `scale`
/// (1/255 maps to [0, 1]).
template <Backend B = cpu_serial>
tensor<float, B> to_nchw(const image<std::uint8_t>& img, float scale = 1.0f / 255.0f) {
    expects(!img.empty(), "tessel::to_nchw", "empty image");
    const index_t H = img.height(), W = img.width(), C = img.channels();
    tensor<float, cpu_serial> host(shape{1, C, H, W});
    float* out = host.data();
    const std::uint8_t* in = img.data();
    for (index_t c = 0; c < C; ++c)
        for (index_t i = 0; i < H * W; ++i) out[c * H * W + i] = static_cast<float>(in[i * C + c]) * scale;
    if constexpr (std::is_same_v<B, cpu_serial>)
        return host;
    else
        return host.template to<B>();
}

}  // namespace tessel
