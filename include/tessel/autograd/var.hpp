// tessel/autograd/var.hpp: the handle to one value (and its gradient) recorded on a tape.
//
// A var is two words plus a generation stamp: the tape it lives on and the value's index there.
// It is cheap to copy and does not own anything; the tape owns the tensors. A var becomes stale
// when its tape is reset (the next iteration), and using a stale var throws tessel::error.
// Arithmetic on vars (a + b, a - b, a * b, s * a) records ops; see autograd/functions.hpp.
#pragma once
#include <cstdint>

#include "tessel/backend/concepts.hpp"
#include "tessel/core/tensor.hpp"

namespace tessel::autograd {

template <Backend B, class T>
class tape;

/// A value on a tape<B, T>. Default-constructed vars refer to nothing (valid() is false).
template <Backend B, class T = float>
class var {
public:
    using backend_type = B;
    using value_type = T;
    using tensor_type = tensor<T, B>;

    var() = default;
    var(tape<B, T>* owner, index_t id, std::uint64_t generation) noexcept
        : m_tape(owner), m_id(id), m_generation(generation) {}

    [[nodiscard]] bool valid() const noexcept { return m_tape != nullptr; }
    [[nodiscard]] index_t id() const noexcept { return m_id; }
    [[nodiscard]] std::uint64_t generation() const noexcept { return m_generation; }
    [[nodiscard]] tape<B, T>& owner() const noexcept { return *m_tape; }

    /// The forward value; valid until the tape is reset.
    [[nodiscard]] const tensor_type& value() const { return m_tape->value(*this); }
    /// The gradient of the last backward() with respect to this value.
    [[nodiscard]] const tensor_type& grad() const { return m_tape->grad(*this); }
    [[nodiscard]] const tessel::shape& shape() const { return value().shape(); }
    [[nodiscard]] bool requires_grad() const { return m_tape->requires_grad(*this); }

private:
    tape<B, T>* m_tape = nullptr;
    index_t m_id = -1;
    std::uint64_t m_generation = 0;
};

}  // namespace tessel::autograd
