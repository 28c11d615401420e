// tessel/pipeline/state.hpp: the vocabulary that pipeline stages exchange.
//
// One state<B> lives for one image. Stages document which fields they read and write. Fields are
// plain members: a stage that needs something absent (empty) throws tessel::error naming itself.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "tessel/core/image.hpp"
#include "tessel/core/random.hpp"
#include "tessel/core/tensor.hpp"

namespace tessel::pipeline {

/// Progress callback: (stage name, step, total steps, message). total may be 0 when unknown.
using progress_fn = std::function<void(std::string_view stage, index_t step, index_t total, std::string_view msg)>;

/// What a run did, for logs and JSON output.
struct report {
    index_t iterations = 0;                    ///< training iterations run
    index_t num_segments = 0;                  ///< distinct labels in the final map
    std::map<std::string, double> seconds;     ///< wall time per stage
    std::map<std::string, double> values;      ///< stage-specific numbers (final loss, energy...)
};

template <class B>
struct state {
    const image<std::uint8_t>* input = nullptr;  ///< the photo, RGB, host memory
    tensor<float, B> input_tensor;               ///< [1, 3, H, W] in [0, 1] (set by the pipeline)
    label_map labels;                            ///< the current segmentation
    label_map superpixels;                       ///< over-segmentation, if a stage made one
    rng gen{0};                                  ///< the run's random stream (seeded by run())
    report info;
    progress_fn progress;                        ///< may be empty

    void notify(std::string_view stage, index_t step, index_t total, std::string_view msg = {}) const {
        if (progress) progress(stage, step, total, msg);
    }
};

/// Measures the wall time of a stage into state.info.seconds[name].
class stage_timer {
public:
    template <class B>
    stage_timer(state<B>& st, std::string name)
        : m_slot(&st.info.seconds[name]), m_start(std::chrono::steady_clock::now()) {}
    ~stage_timer() {
        *m_slot += std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
    }
    stage_timer(const stage_timer&) = delete;
    stage_timer& operator=(const stage_timer&) = delete;

private:
    double* m_slot;
    std::chrono::steady_clock::time_point m_start;
};

}  // namespace tessel::pipeline
