// tessel/pipeline/stages/superpixels.hpp: the stage that over-segments the input image.
//
// superpixels<Algo> runs any SuperpixelAlgorithm (tessel::slic, tessel::felzenszwalb) on the
// state's RGB image and stores the result in state.superpixels, where refinement stages
// (Kanezaki 2018's majority vote) and graph stages find it.
//   reads:  state.input
//   writes: state.superpixels, state.info.values["superpixels"]
#pragma once
#include "tessel/pipeline/state.hpp"
#include "tessel/superpixel/concepts.hpp"

namespace tessel::stages {

template <class Algo>
struct superpixels {
    using config = typename Algo::config;

    template <Backend B>
    class bind {
        static_assert(SuperpixelAlgorithm<Algo, B>,
                      "tessel::stages::superpixels: the algorithm must model SuperpixelAlgorithm "
                      "(see superpixel/concepts.hpp)");

    public:
        explicit bind(const config& cfg) : m_algo(cfg) {}
        void run(pipeline::state<B>& st) {
            expects(st.input != nullptr, "tessel::stages::superpixels", "no input image in the pipeline state");
            pipeline::stage_timer timer(st, "superpixels");
            st.superpixels = m_algo(*st.input);
            st.info.values["superpixels"] = static_cast<double>(st.superpixels.count_labels());
        }

    private:
        typename Algo::template bind<B> m_algo;
    };
};

/// A stage that installs superpixels computed outside the pipeline (e.g. by another program, or
/// on a different version of the image).
///   writes: state.superpixels
struct given_superpixels {
    struct config {
        label_map superpixels;
    };
    template <Backend B>
    struct bind {
        config cfg;
        explicit bind(const config& c) : cfg(c) {}
        void run(pipeline::state<B>& st) {
            expects(!cfg.superpixels.empty(), "tessel::stages::given_superpixels", "empty superpixel map");
            st.superpixels = cfg.superpixels;
        }
    };
};

}  // namespace tessel::stages
