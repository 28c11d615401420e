// tessel/methods/presets.hpp: every preset of tessel in one type list, for front ends.
//
// tessel-segment (and any program that offers "all methods") walks methods::all_presets: it
// registers the options of every preset, finds the chosen one by name, and runs it. A new method
// defines its preset trait (methods/preset.hpp) in its own header and is added to the list here;
// no front end changes. The classical over-segmentations (SLIC, Felzenszwalb) are presets too,
// through a small adaptor that gives them the run() / last_report() face of the methods.
#pragma once
#include <chrono>
#include <string>
#include <limits>

#include "tessel/methods/azad2025.hpp"
#include "tessel/methods/dsc.hpp"
#include "tessel/methods/grapl.hpp"
#include "tessel/methods/kanezaki2018.hpp"
#include "tessel/methods/kim2020.hpp"
#include "tessel/methods/picnet.hpp"
#include "tessel/methods/preset.hpp"
#include "tessel/methods/unseggnet.hpp"
#include "tessel/superpixel/felzenszwalb.hpp"
#include "tessel/superpixel/slic.hpp"

namespace tessel::methods {

/// A classical over-segmentation spec (slic, felzenszwalb) with the face of a method: the seed and
/// progress are accepted and unused (both algorithms are deterministic and fast).
template <class Spec, Backend B>
class over_segmentation {
public:
    explicit over_segmentation(typename Spec::config cfg = {}) : m_spec{cfg} { Spec::validate(m_spec.cfg); }
    label_map run(const image<std::uint8_t>& img, seed = {}, pipeline::progress_fn = {}) {
        const auto t0 = std::chrono::steady_clock::now();
        label_map out = m_spec(B{}, img);
        m_report = {};
        m_report.seconds["over_segmentation"] =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        m_report.num_segments = out.count_labels();
        return out;
    }
    [[nodiscard]] const pipeline::report& last_report() const noexcept { return m_report; }

private:
    Spec m_spec;
    pipeline::report m_report;
};

/// Peak memory of SLIC and Felzenszwalb: under 150 bytes per pixel (docs/methods.md, "Memory").
inline double over_segmentation_bytes(index_t w, index_t h) { return static_cast<double>(w) * static_cast<double>(h) * 150.0; }

/// Preset trait of SLIC (scikit-image semantics).
struct slic_preset {
    static constexpr std::string_view name = "slic";
    static constexpr std::string_view summary = "SLIC superpixels (Achanta et al. 2012), scikit-image semantics";
    using config = slic::config;
    template <Backend B>
    using method = over_segmentation<slic, B>;
    template <class V>
    static void visit_options(config& c, V& v) {
        v(number_option<index_t>{"n-segments", c.n_segments, "SLIC segments", 1, 100000000});
        v(number_option<float>{"compactness", c.compactness, "SLIC compactness", 0, std::numeric_limits<double>::max(),
                               true});
        v(number_option<double>{"sigma", c.sigma, "Gaussian pre-smoothing sigma", 0, std::numeric_limits<double>::max()});
        v(flag_option{"slic-zero", c.slic_zero, "SLIC-zero (adaptive compactness)"});
    }
    static double estimated_bytes(const config&, index_t w, index_t h) { return over_segmentation_bytes(w, h); }
};

/// Preset trait of Felzenszwalb & Huttenlocher 2004 (scikit-image semantics).
struct felzenszwalb_preset {
    static constexpr std::string_view name = "felzenszwalb";
    static constexpr std::string_view summary = "Felzenszwalb & Huttenlocher 2004 graph-based segmentation";
    using config = felzenszwalb::config;
    template <Backend B>
    using method = over_segmentation<felzenszwalb, B>;
    template <class V>
    static void visit_options(config& c, V& v) {
        v(number_option<double>{"scale", c.scale, "Felzenszwalb scale", 0, std::numeric_limits<double>::max(), true});
        v(number_option<double>{"sigma", c.sigma, "Gaussian pre-smoothing sigma", 0, std::numeric_limits<double>::max()});
        v(number_option<index_t>{"min-size", c.min_size, "Felzenszwalb minimum segment size", 0,
                                 std::numeric_limits<double>::max()});
    }
    static double estimated_bytes(const config&, index_t w, index_t h) { return over_segmentation_bytes(w, h); }
};

/// Every preset, in the order front ends list them (the first is the default method).
using all_presets = preset_list<kim2020_preset, kanezaki2018_preset, azad2025_preset, grapl_preset, slic_preset,
                                felzenszwalb_preset, dsc_preset, picnet_preset, unseggnet_preset>;

}  // namespace tessel::methods

static_assert(tessel::methods::Preset<tessel::methods::kim2020_preset> &&
              tessel::methods::Preset<tessel::methods::grapl_preset> &&
              tessel::methods::Preset<tessel::methods::slic_preset>);
