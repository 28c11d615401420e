// tessel/nn/context.hpp: the run-time state a layer sees, and how layers expose their parameters.
//
// context<B> carries what changes between calls but is not a layer's own state: train/eval mode
// (batch norm statistics, dropout), the random stream for stochastic layers, and a pool of
// scratch tensors that containers lend to their layers for gradients that live only during one
// backward call. parameter_ref points at one trainable tensor of a layer and its gradient;
// optimizers work on spans of them.
#pragma once
#include <deque>
#include <string_view>
#include <type_traits>
#include <vector>

#include "tessel/backend/concepts.hpp"
#include "tessel/core/random.hpp"
#include "tessel/core/tensor.hpp"

namespace tessel::nn {

/// Scratch tensors lent out for the duration of one call. A network's input gradients are needed
/// only until the layer before consumes them, so containers (sequential, repeat, inception) take
/// their intermediate gradient buffers from here instead of every layer keeping one for the whole
/// run: a chain then holds O(1) gradient buffers, not one per layer. The pool hands out the first
/// free slot, so a training loop that repeats the same calls sees each slot at the same sizes
/// every iteration and, after the first, allocates nothing. Slots live in a deque: lending one
/// never moves another.
template <Backend B>
class scratch_pool {
public:
    /// A free slot (shape and contents unspecified), marked in use until release().
    template <class T>
    tensor<T, B>& acquire() {
        auto& s = slots<T>();
        for (std::size_t i = 0; i < s.used.size(); ++i)
            if (!s.used[i]) {
                s.used[i] = true;
                return s.bufs[i];
            }
        s.bufs.emplace_back();
        s.used.push_back(true);
        return s.bufs.back();
    }
    template <class T>
    void release(const tensor<T, B>& t) {
        auto& s = slots<T>();
        for (std::size_t i = 0; i < s.used.size(); ++i)
            if (&s.bufs[i] == &t) s.used[i] = false;
    }
    /// Number of slots ever created for T (for tests: bounded by the deepest nesting, not by
    /// the number of layers or iterations).
    template <class T>
    [[nodiscard]] std::size_t size() const {
        return const_cast<scratch_pool*>(this)->slots<T>().bufs.size();
    }

private:
    template <class T>
    struct slot_list {
        std::deque<tensor<T, B>> bufs;
        std::vector<bool> used;
    };
    template <class T>
    slot_list<T>& slots() {
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "scratch_pool holds float or double");
        if constexpr (std::is_same_v<T, float>)
            return m_float;
        else
            return m_double;
    }
    slot_list<float> m_float;
    slot_list<double> m_double;
};

template <Backend B>
struct context {
    bool training = true;  ///< train mode: batch statistics in batch_norm, active dropout
    rng gen{0};            ///< the stream stochastic layers (dropout) draw from
    scratch_pool<B> scratch{};  ///< gradient buffers lent by containers during backward
};

/// A scratch tensor from ctx.scratch, returned to the pool when the lease goes out of scope.
template <class T, Backend B>
class scratch_lease {
public:
    explicit scratch_lease(context<B>& ctx) : m_pool(ctx.scratch), m_t(ctx.scratch.template acquire<T>()) {}
    ~scratch_lease() { m_pool.release(m_t); }
    scratch_lease(const scratch_lease&) = delete;
    scratch_lease& operator=(const scratch_lease&) = delete;
    tensor<T, B>& get() noexcept { return m_t; }

private:
    scratch_pool<B>& m_pool;
    tensor<T, B>& m_t;
};

/// A trainable tensor and its gradient, owned by a layer. backward() overwrites grad.
template <class T, Backend B>
struct parameter_ref {
    tensor<T, B>* value = nullptr;
    tensor<T, B>* grad = nullptr;
    std::string_view name;  ///< e.g. "weight", "bias", "gamma"
};

template <class T, Backend B>
using parameter_list = std::vector<parameter_ref<T, B>>;

/// Appends every parameter of `from` to `to` (for containers of layers).
template <class T, Backend B>
void append_parameters(parameter_list<T, B>& to, const parameter_list<T, B>& from) {
    to.insert(to.end(), from.begin(), from.end());
}

/// Total number of trainable scalars.
template <class T, Backend B>
index_t count_parameters(const parameter_list<T, B>& params) {
    index_t n = 0;
    for (const auto& p : params) n += p.value->numel();
    return n;
}

}  // namespace tessel::nn
