// tessel/superpixel/concepts.hpp: what a superpixel algorithm is, for the stages that consume
// over-segmentations (Kanezaki 2018's refinement, GraPL's initial labels, DSC's stage 2).
//
// Algorithms follow the spec/bind split of DESIGN.md section 3: a backend-free spec A holding a
// `config` aggregate, called with a backend tag and a host image; A::bind<B> is the stateful form
// that may keep buffers between calls. tessel::slic and tessel::felzenszwalb model the concept.
#pragma once
#include <concepts>
#include <cstdint>
#include <type_traits>

#include "tessel/backend/concepts.hpp"
#include "tessel/core/image.hpp"

namespace tessel {

/// SuperpixelAlgorithm<A, B>: A over-segments images on backend B.
///   requires: A::config is an aggregate of run-time parameters (designated initialisers) and A
///             is constructible from it (A{cfg}); a(B{}, img) accepts image<std::uint8_t> and
///             image<float> of any size with the channel counts A documents, and returns a
///             label_map; A::bind<B> is constructible from const A::config& and callable on an
///             image the same way (without the backend tag).
///   ensures:  the label map has the image's width and height; labels are >= 0 and every label
///             names at least one pixel unless A documents otherwise; the same input, config
///             and backend give bitwise the same labels (and cpu_serial and cpu_omp agree);
///             invalid parameters or an empty image throw tessel::error before any work.
///   complexity: linear in the pixel count for a fixed config (per iteration, if iterative).
///   aliasing: the image is only read; the result owns its storage.
template <class A, class B>
concept SuperpixelAlgorithm =
    Backend<B> && requires { typename A::config; } && std::is_aggregate_v<typename A::config> &&
    std::constructible_from<typename A::template bind<B>, const typename A::config&> &&
    requires(const A& a, typename A::template bind<B>& bound, const typename A::config& cfg,
             const image<std::uint8_t>& rgb8, const image<float>& rgbf) {
        A{cfg};
        { a(B{}, rgb8) } -> std::same_as<label_map>;
        { a(B{}, rgbf) } -> std::same_as<label_map>;
        { bound(rgb8) } -> std::same_as<label_map>;
        { bound(rgbf) } -> std::same_as<label_map>;
    };

}  // namespace tessel
