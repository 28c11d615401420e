// tessel/pipeline/concepts.hpp: what a pipeline stage must provide.
//
// A method is a pipeline of stages (superpixels, self-training, refinement, graph cuts...) that
// exchange a small fixed vocabulary through pipeline::state<B>: the input image, its tensor form,
// the current label map, superpixels, a region graph, the random stream and a report. Any stage
// that reads and writes that vocabulary composes with any other.
#pragma once
#include <concepts>

#include "tessel/pipeline/state.hpp"

namespace tessel::pipeline {

/// Stage<S, B>: a backend-free stage spec S and its bound form on backend B.
///   requires: S::config is default-constructible and copyable (an aggregate of run-time
///             numbers); S::bind<B> is constructible from const config&;
///             bind.run(state) reads what earlier stages left in the state and writes its
///             results back (documented per stage under "reads:" / "writes:").
///   ensures:  run() throws tessel::error, naming the stage, when the state lacks an input it
///             needs (e.g. a refinement stage run before any labels exist).
template <class S, class B>
concept Stage = requires { typename S::config; typename S::template bind<B>; } &&
                std::default_initializable<typename S::config> && std::copy_constructible<typename S::config> &&
                std::constructible_from<typename S::template bind<B>, const typename S::config&> &&
                requires(typename S::template bind<B>& s, state<B>& st) { s.run(st); };

}  // namespace tessel::pipeline
