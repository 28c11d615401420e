// tessel/pipeline/state.hpp: the vocabulary that pipeline stages exchange.
//
// One state<B> lives for one image. Stages document which fields they read and write. The common
// vocabulary (image, tensor, labels, superpixels, random stream, report) is plain members; a stage
// that needs something absent (empty) throws tessel::error naming itself. Anything else a stage
// wants to hand to later stages (GraPL's patch grid, class probabilities, a region graph) is a
// StateData type of its own, kept in the state's typed store: st.data<T>() creates or returns it,
// st.find<T>() returns nullptr when no stage made it, st.require<T>(stage) throws naming both.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <typeindex>
#include <utility>
#include <vector>

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

/// StateData: a type a stage stores in pipeline::state for later stages.
///   requires: default-constructible; T::name is a short name for messages ("patch_grid").
///   ensures:  one value per type and state; it lives until the state is reset (next run()).
template <class T>
concept StateData = std::default_initializable<T> && requires {
    { T::name } -> std::convertible_to<std::string_view>;
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

    /// The stage data of type T, created (value-initialised) on first use.
    template <StateData T>
    T& data() {
        if (T* p = find<T>()) return *p;
        m_data.emplace_back(std::type_index(typeid(T)), std::make_shared<T>());
        return *static_cast<T*>(m_data.back().second.get());
    }
    /// The stage data of type T, or nullptr when no stage created it.
    template <StateData T>
    [[nodiscard]] T* find() const {
        for (const auto& [type, ptr] : m_data)
            if (type == std::type_index(typeid(T))) return static_cast<T*>(ptr.get());
        return nullptr;
    }
    /// The stage data of type T; throws tessel::error naming `stage` and T::name when absent.
    template <StateData T>
    T& require(std::string_view stage) const {
        T* p = find<T>();
        expects(p != nullptr, stage, "needs '", std::string_view(T::name),
                "' in the pipeline state; put the stage that makes it earlier in the pipeline");
        return *p;
    }

private:
    // A handful of entries per run: a linear search beats a hash map and keeps state copyable.
    std::vector<std::pair<std::type_index, std::shared_ptr<void>>> m_data;
};

/// Per-pixel class probabilities of a method's final output, [q, H, W] in host memory: state data
/// that self_train writes with keep_probabilities, for post-processing (segment_graph_cut).
struct class_probabilities {
    static constexpr const char* name = "class_probabilities";
    tensor<float, cpu_serial> probabilities;
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
