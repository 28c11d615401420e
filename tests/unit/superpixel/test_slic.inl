// SLIC test bodies, templated over the backend: instantiated for cpu_serial and cpu_omp by
// test_slic.cpp and for cuda by tests/cuda/test_slic.cu.
//
// Reference numbers marked "skimage" were produced with scikit-image 0.21.0 (numpy 1.26, scipy
// 1.17) as side tooling, by running skimage.segmentation.slic with the same parameters on the
// bytes of tessel::testing::gradient_scene (dumped to a raw file) and counting np.unique(labels).
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <tuple>
#include <type_traits>
#include <vector>

#include "tessel/superpixel/slic.hpp"
#include "unit/superpixel/scene.hpp"

namespace slic_tests {

namespace ts = tessel;

/// Number of 4-connected components of each label, summed: equals the label count iff every
/// label is one connected region. Independent of the code under test (plain flood fill).
inline ts::index_t count_components(const ts::label_map& l) {
    const ts::index_t W = l.width(), H = l.height();
    std::vector<char> seen(static_cast<std::size_t>(W * H), 0);
    std::vector<ts::index_t> stack;
    ts::index_t components = 0;
    for (ts::index_t s = 0; s < W * H; ++s) {
        if (seen[static_cast<std::size_t>(s)]) continue;
        ++components;
        seen[static_cast<std::size_t>(s)] = 1;
        stack.assign(1, s);
        while (!stack.empty()) {
            const ts::index_t p = stack.back();
            stack.pop_back();
            const ts::index_t x = p % W, y = p / W;
            const ts::index_t nb[4] = {x > 0 ? p - 1 : -1, x + 1 < W ? p + 1 : -1, y > 0 ? p - W : -1,
                                       y + 1 < H ? p + W : -1};
            for (ts::index_t q : nb)
                if (q >= 0 && !seen[static_cast<std::size_t>(q)] && l.data()[q] == l.data()[p]) {
                    seen[static_cast<std::size_t>(q)] = 1;
                    stack.push_back(q);
                }
        }
    }
    return components;
}

inline ts::index_t smallest_segment(const ts::label_map& l) {
    std::vector<ts::index_t> size;
    for (ts::label_t v : l.values()) {
        if (static_cast<std::size_t>(v) >= size.size()) size.resize(static_cast<std::size_t>(v) + 1, 0);
        ++size[static_cast<std::size_t>(v)];
    }
    ts::index_t m = l.size();
    for (ts::index_t s : size)
        if (s > 0) m = std::min(m, s);
    return m;
}

/// Fraction of pixels on which two label maps agree.
inline double agreement(const ts::label_map& a, const ts::label_map& b) {
    ts::index_t same = 0;
    for (ts::index_t i = 0; i < a.size(); ++i) same += a.data()[i] == b.data()[i] ? 1 : 0;
    return static_cast<double>(same) / static_cast<double>(a.size());
}

/// Backends may differ from cpu_serial in the last bit of float arithmetic (FMA contraction on a
/// GPU); the CPU backends must agree exactly.
template <class B>
void check_same_as_serial(const ts::label_map& got, const ts::label_map& serial) {
    if constexpr (std::is_same_v<B, ts::cuda>)
        CHECK(agreement(got, serial) > 0.99);
    else
        CHECK(got.values() == serial.values());
}

template <class B>
ts::index_t count(const ts::slic::config& cfg, const ts::image<std::uint8_t>& img) {
    return ts::slic{cfg}(B{}, img).count_labels();
}

/// Segment counts equal scikit-image's on the synthetic scene (the implementation reproduces
/// skimage's arithmetic, so equality is expected; 1 % slack allows for float-vs-double ties).
template <class B>
void slic_counts_match_skimage() {
    const auto img = ts::testing::gradient_scene(160, 120);
    auto near = [](ts::index_t got, ts::index_t want) {
        CHECK(std::abs(got - want) <= std::max<ts::index_t>(1, want / 100));
    };
    near(count<B>({.n_segments = 50}, img), 45);    // skimage
    near(count<B>({.n_segments = 200}, img), 179);  // skimage
    near(count<B>({.n_segments = 800}, img), 730);  // skimage
    near(count<B>({.n_segments = 200, .slic_zero = true}, img), 190);            // skimage
    near(count<B>({.n_segments = 200, .sigma = 1.0}, img), 173);                 // skimage
    near(count<B>({.n_segments = 400, .compactness = 100}, img), 391);           // skimage
    near(count<B>({.n_segments = 100}, ts::testing::gradient_scene(97, 61)), 87);  // skimage
    // Without connectivity enforcement: raw cluster labels 1..seeds, some clusters empty.
    for (auto [n, distinct, max_label] : {std::tuple{50, 44, 48}, std::tuple{200, 181, 192}, std::tuple{800, 739, 768}}) {
        const auto l = ts::slic{{.n_segments = n, .enforce_connectivity = false}}(B{}, img);
        near(l.count_labels(), distinct);  // skimage
        CHECK(*std::max_element(l.values().begin(), l.values().end()) == max_label);  // skimage: label max = seeds
    }
    // One channel (the green plane): no Lab conversion.
    ts::image<std::uint8_t> grey(160, 120, 1);
    for (ts::index_t i = 0; i < grey.num_pixels(); ++i) grey.data()[i] = img.data()[3 * i + 1];
    near(count<B>({.n_segments = 200}, grey), 192);  // skimage, channel_axis=None
}

/// Properties after connectivity enforcement, over several sizes: counts within 10 % of
/// n_segments, every label one 4-connected region, no segment below the
/// minimum size, labels start_label..K. (The seed count itself can miss n_segments by more than
/// 10 %: skimage's grid gives 884 seeds for n = 1000 on 240 x 180, hence n = 900 here.)
template <class B>
void slic_properties() {
    const auto img = ts::testing::gradient_scene(240, 180);
    for (ts::index_t n : {60, 250, 900}) {
        CAPTURE(n);
        const ts::slic::config cfg{.n_segments = n};
        ts::slic::bind<B> bound(cfg);
        const auto l = bound(img);
        const ts::index_t k = l.count_labels();
        CHECK(static_cast<double>(k) >= 0.9 * static_cast<double>(n));
        CHECK(static_cast<double>(k) <= 1.1 * static_cast<double>(n));
        CHECK(count_components(l) == k);
        const auto limits = ts::slic_connectivity_limits(l.size(), bound.last_grid().num_seeds(), 0.5, 3.0);
        CHECK(smallest_segment(l) >= limits.min_size);
        const auto [lo, hi] = std::minmax_element(l.values().begin(), l.values().end());
        CHECK(*lo == 1);
        CHECK(*hi == k);
    }
    const auto l0 = ts::slic{{.n_segments = 100, .start_label = 0}}(B{}, img);
    CHECK(*std::min_element(l0.values().begin(), l0.values().end()) == 0);
}

/// Same input, same labels (bitwise), and the backend agrees with cpu_serial; float input in
/// [0, 1] gives the same segmentation as the 8-bit image it came from.
template <class B>
void slic_deterministic() {
    const auto img = ts::testing::gradient_scene(150, 110);
    for (const ts::slic::config& cfg : {ts::slic::config{.n_segments = 300},
                                       ts::slic::config{.n_segments = 120, .sigma = 1.5, .slic_zero = true}}) {
        const auto a = ts::slic{cfg}(B{}, img);
        const auto b = ts::slic{cfg}(B{}, img);
        CHECK(a.values() == b.values());
        check_same_as_serial<B>(a, ts::slic{cfg}(ts::cpu_serial{}, img));
    }
    ts::image<float> f(img.width(), img.height(), 3);
    for (std::size_t i = 0; i < img.values().size(); ++i) f.values()[i] = static_cast<float>(img.values()[i] / 255.0);
    const auto a8 = ts::slic{{.n_segments = 300}}(B{}, img);
    const auto af = ts::slic{{.n_segments = 300}}(B{}, f);
    CHECK(agreement(a8, af) > 0.99);
    // The bound form reuses its buffers across calls and images of different sizes.
    ts::slic::bind<B> bound({.n_segments = 300});
    CHECK(bound(img).values() == a8.values());
    CHECK(bound(ts::testing::gradient_scene(64, 48)).width() == 64);
    CHECK(bound(img).values() == a8.values());
}

}  // namespace slic_tests
