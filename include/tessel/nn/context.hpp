// tessel/nn/context.hpp: the run-time state a layer sees, and how layers expose their parameters.
//
// context<B> carries what changes between calls but is not a layer's own state: train/eval mode
// (batch norm statistics, dropout), the random stream for stochastic layers, and a pool of
// scratch tensors that containers lend to their layers for gradients that live only during one
// backward call. parameter_ref points at one trainable tensor of a layer and its gradient;
// optimizers work on spans of them.
#pragma once
#include <deque>
#include <utility>
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
    /// A free slot for about min_numel elements: the free slot with the smallest capacity that
    /// holds min_numel, else the largest free one (which then grows), else a new slot. Layers
    /// that park saved activations here between forward and backward (nn::conv_bn_relu) ask by
    /// size, so that memory released in backward is reused by gradients of similar size. With
    /// long_lived (a saved activation, held until backward), a slot more than a quarter larger
    /// than the request is emptied first, so that it is not pinned at its old size all that time
    /// (with "more than twice", azad2025's pool held 1360 channel maps for at most 944 live ones;
    /// with a quarter, 1184: peak 975 -> 867 MiB, for about 5% more time per iteration, spent on
    /// page faults as emptied slots are allocated again).
    /// Short uses may borrow a large slot. The same requests every iteration make the same
    /// choices, so the pool's size is fixed after the first iterations (taking a fresh slot
    /// instead of emptying a large one was tried: the pool then grows every iteration).
    template <class T>
    tensor<T, B>& acquire(index_t min_numel, bool long_lived = false) {
        auto& s = slots<T>();
        const auto want = static_cast<std::size_t>(min_numel);
        const std::size_t none = s.used.size();
        std::size_t fit = none, big = none;
        for (std::size_t i = 0; i < s.used.size(); ++i) {
            if (s.used[i]) continue;
            const std::size_t cap = s.bufs[i].storage().capacity();
            if (cap >= want && (fit == none || cap < s.bufs[fit].storage().capacity())) fit = i;
            if (big == none || cap > s.bufs[big].storage().capacity()) big = i;
        }
        const std::size_t pick = fit != none ? fit : big;
        if (pick == none) {
            s.bufs.emplace_back();
            s.used.push_back(true);
            return s.bufs.back();
        }
        s.used[pick] = true;
        if (long_lived && s.bufs[pick].storage().capacity() > want + want / 4 + 4096) s.bufs[pick] = tensor<T, B>();
        return s.bufs[pick];
    }
    template <class T>
    void release(const tensor<T, B>& t) {
        auto& s = slots<T>();
        for (std::size_t i = 0; i < s.used.size(); ++i)
            if (&s.bufs[i] == &t) s.used[i] = false;
    }
    /// Parks t's memory in a free slot (an empty one if there is one, else a new one) and leaves
    /// t empty: a layer that drops its output until it is needed again (nn::ReleasesOutput)
    /// lends the memory to the pool meanwhile.
    template <class T>
    void donate(tensor<T, B>& t) {
        auto& s = slots<T>();
        std::size_t i = 0;
        while (i < s.used.size() && (s.used[i] || s.bufs[i].storage().capacity() != 0)) ++i;
        if (i == s.used.size()) {
            s.bufs.emplace_back();
            s.used.push_back(false);
        }
        std::swap(s.bufs[i], t);
        t = tensor<T, B>();
    }
    /// The reverse of donate: t takes the memory of a free slot chosen for numel elements
    /// (acquire(numel, true)) and leaves that slot empty; t's contents are unspecified.
    template <class T>
    void take(tensor<T, B>& t, index_t numel) {
        tensor<T, B>& slot = acquire<T>(numel, true);
        std::swap(slot, t);
        slot = tensor<T, B>();
        release(slot);
    }
    /// One buffer of at least numel elements, shared by every caller: for workspaces that live
    /// only inside one leaf call (a convolution's column buffer), so calls that never nest can
    /// share it. It only grows, so steady-state calls neither allocate nor refill it.
    template <class T>
    T* workspace(index_t numel) {
        auto& w = slots<T>().workspace;
        if (w.numel() < numel) w.resize(shape{numel});
        return w.data();
    }
    /// Number of slots ever created for T (for tests: bounded by the deepest nesting, not by
    /// the number of layers or iterations).
    template <class T>
    [[nodiscard]] std::size_t size() const {
        return const_cast<scratch_pool*>(this)->slots<T>().bufs.size();
    }
    /// Elements held by all slots of T, in use or not (for tests and memory reports).
    template <class T>
    [[nodiscard]] std::size_t capacity() const {
        std::size_t n = 0;
        for (const auto& b : const_cast<scratch_pool*>(this)->slots<T>().bufs) n += b.storage().capacity();
        return n;
    }

private:
    template <class T>
    struct slot_list {
        std::deque<tensor<T, B>> bufs;
        std::vector<bool> used;
        tensor<T, B> workspace;
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
    /// A slot chosen for about min_numel elements (scratch_pool::acquire(min_numel)).
    scratch_lease(context<B>& ctx, index_t min_numel)
        : m_pool(ctx.scratch), m_t(ctx.scratch.template acquire<T>(min_numel)) {}
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

/// A non-trainable tensor a layer keeps between calls and reads in forward (batch norm's running
/// statistics): no gradient, but part of the layer's state, so tools that set a layer to an
/// arbitrary state (autograd::check_gradients) reach it. `positive` marks a buffer whose
/// values must stay > 0 (a running variance).
template <class T, Backend B>
struct buffer_ref {
    tensor<T, B>* value = nullptr;
    std::string_view name;  ///< e.g. "running_mean"
    bool positive = false;
};

template <class T, Backend B>
using buffer_list = std::vector<buffer_ref<T, B>>;

/// Appends every buffer of `from` to `to` (for containers of layers).
template <class T, Backend B>
void append_buffers(buffer_list<T, B>& to, const buffer_list<T, B>& from) {
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
