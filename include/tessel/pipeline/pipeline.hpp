// tessel/pipeline/pipeline.hpp: composing stages into a method at compile time.
//
//   template <tessel::Backend B>
//   using my_method = tessel::pipeline::pipeline<B, stages::superpixels<slic>, stages::self_train<...>>;
//   my_method<cpu_omp> m({.n_segments = 10000}, {.max_iterations = 1000});
//   label_map seg = m.run(img, tessel::seed{42});
// The pipeline holds one bound stage per spec in a flat tuple, constructed from the stages'
// configs in order, and runs them left to right over one state<B>. Each stage is checked by its
// own static_assert, so a stage that does not fit names itself in the error message.
#pragma once
#include <tuple>
#include <utility>

#include "tessel/pipeline/concepts.hpp"

namespace tessel::pipeline {

namespace detail {
template <class S, class B>
constexpr bool check_stage() {
    static_assert(requires { typename S::config; }, "tessel::pipeline: a stage spec needs a nested 'config' type");
    static_assert(requires { typename S::template bind<B>; },
                  "tessel::pipeline: a stage spec needs a nested 'template <Backend B> struct bind'");
    static_assert(Stage<S, B>,
                  "tessel::pipeline: the stage's bind<B> must be constructible from its config and have "
                  "run(pipeline::state<B>&); see pipeline/concepts.hpp");
    return true;
}
}  // namespace detail

template <Backend B, class... Stages>
class pipeline {
    static_assert((detail::check_stage<Stages, B>() && ...));

public:
    using backend_type = B;
    using stages_type = std::tuple<typename Stages::template bind<B>...>;

    explicit pipeline(const typename Stages::config&... cfgs) : m_stages(cfgs...) {}

    /// Segments one image. The seed fixes every random choice of every stage.
    label_map run(const image<std::uint8_t>& img, seed s = {}, progress_fn progress = {}) {
        expects(!img.empty(), "tessel::pipeline::run", "empty input image");
        expects(img.channels() == 3, "tessel::pipeline::run", "expects an RGB image, got ", img.channels(),
                " channels");
        m_state = state<B>{};
        m_state.input = &img;
        m_state.input_tensor = to_nchw<B>(img);
        m_state.gen.reseed(s.value);
        m_state.progress = std::move(progress);
        std::apply([this](auto&... stage) { (stage.run(m_state), ...); }, m_stages);
        expects(!m_state.labels.empty(), "tessel::pipeline::run", "no stage produced a label map");
        m_state.info.num_segments = m_state.labels.count_labels();
        return m_state.labels;
    }

    /// The state after the last run (report, superpixels, ...).
    [[nodiscard]] const state<B>& last_state() const noexcept { return m_state; }
    template <std::size_t I>
    auto& stage() noexcept { return std::get<I>(m_stages); }

private:
    stages_type m_stages;
    state<B> m_state;
};

}  // namespace tessel::pipeline
