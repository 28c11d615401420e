// tessel/core/tensor.hpp: the owning n-d array of tessel, and its non-owning view.
//
// tensor<T, B> owns contiguous row-major storage on backend B (std::vector on the CPU backends,
// thrust::device_vector on cuda) plus a shape. Layers use rank-4 NCHW float tensors; gradient
// checks use double. tensor_view<T> is a raw pointer + shape + strides with TESSEL_HD accessors: it
// is what functors and kernels receive, never the container itself.
//
// Copies are deep (value semantics); moving is cheap. Element access with operator() exists only
// for host backends.
#pragma once
#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <span>
#include <utility>
#include <vector>

#include "tessel/backend/concepts.hpp"
#include "tessel/core/shape.hpp"

namespace tessel {

/// Element strides of a view (a C array, usable in device code).
struct strides_t {
    index_t v[max_rank]{};
    TESSEL_HD constexpr index_t operator[](int i) const { return v[i]; }
    TESSEL_HD constexpr index_t& operator[](int i) { return v[i]; }
};

/// A non-owning strided view; valid as long as the storage it points into.
template <class T>
struct tensor_view {
    T* ptr = nullptr;
    tessel::shape dims{};
    strides_t strides{};

    TESSEL_HD constexpr index_t numel() const { return dims.numel(); }
    TESSEL_HD constexpr T* data() const { return ptr; }
    template <class... I>
    TESSEL_HD constexpr T& operator()(I... idx) const {
        index_t offset = 0;
        int axis = 0;
        ((offset += static_cast<index_t>(idx) * strides[axis++]), ...);
        return ptr[offset];
    }
};

/// Row-major strides of a shape.
TESSEL_HD constexpr strides_t contiguous_strides(const shape& s) {
    strides_t st{};
    index_t acc = 1;
    for (int i = s.rank - 1; i >= 0; --i) {
        st[i] = acc;
        acc *= s.dims[i];
    }
    return st;
}

template <class T, Backend B = cpu_serial>
class tensor {
public:
    using value_type = T;
    using backend_type = B;
    using storage_type = typename backend_traits<B>::template vector<T>;

    tensor() = default;
    /// A tensor of the given shape, zero-initialised.
    explicit tensor(const tessel::shape& s) : m_shape(s), m_data(static_cast<std::size_t>(s.numel()), T{}) {}
    tensor(const tessel::shape& s, T value) : m_shape(s), m_data(static_cast<std::size_t>(s.numel()), value) {}
    /// A tensor holding a copy of host values; values.size() must equal s.numel().
    tensor(const tessel::shape& s, std::span<const T> values) : m_shape(s), m_data(values.begin(), values.end()) {
        expects(static_cast<index_t>(values.size()) == s.numel(), "tessel::tensor", "shape ", s.str(),
                " needs ", s.numel(), " values, got ", values.size());
    }
    tensor(const tessel::shape& s, std::initializer_list<T> values)
        : tensor(s, std::span<const T>(values.begin(), values.size())) {}

    [[nodiscard]] const tessel::shape& shape() const noexcept { return m_shape; }
    [[nodiscard]] int rank() const noexcept { return m_shape.rank; }
    [[nodiscard]] index_t dim(int axis) const noexcept { return m_shape[axis]; }
    /// Elements held: 0 for a default-constructed tensor (whose rank-0 shape alone would say 1,
    /// and which owns no storage), 1 for a rank-0 scalar made from shape{}.
    [[nodiscard]] index_t numel() const noexcept { return static_cast<index_t>(m_data.size()); }
    [[nodiscard]] bool empty() const noexcept { return numel() == 0; }

    [[nodiscard]] T* data() noexcept { return raw(m_data); }
    [[nodiscard]] const T* data() const noexcept { return raw(m_data); }
    [[nodiscard]] storage_type& storage() noexcept { return m_data; }
    [[nodiscard]] const storage_type& storage() const noexcept { return m_data; }

    [[nodiscard]] tensor_view<T> view() noexcept { return {data(), m_shape, contiguous_strides(m_shape)}; }
    [[nodiscard]] tensor_view<const T> view() const noexcept {
        return {data(), m_shape, contiguous_strides(m_shape)};
    }

    /// Changes the shape; the number of elements must not change.
    tensor& reshape(const tessel::shape& s) {
        expects(s.numel() == numel(), "tessel::tensor::reshape", "cannot reshape ", m_shape.str(), " to ",
                s.str(), " (element counts differ)");
        m_shape = s;
        return *this;
    }
    /// Reallocates (only if the element count changes) to the given shape; contents unspecified.
    /// Layers use this to reuse their workspaces across iterations without allocating.
    /// Growing past the capacity allocates exactly the new size (after freeing the old block)
    /// rather than the vector's geometric growth: workspaces lent to layers of different sizes
    /// (nn::scratch_pool) would otherwise hold up to twice their largest use.
    void resize(const tessel::shape& s) {
        const auto n = static_cast<std::size_t>(s.numel());
        if (n > m_data.capacity()) storage_type().swap(m_data);
        if (n != m_data.size()) m_data.resize(n);
        m_shape = s;
    }
    void fill(T value) { std::fill(m_data.begin(), m_data.end(), value); }

    /// Host element access (row-major), for tests and I/O; not for hot loops.
    template <class... I>
        requires(HostBackend<B> && (std::integral<I> && ...))
    [[nodiscard]] T& operator()(I... idx) { return view()(idx...); }
    template <class... I>
        requires(HostBackend<B> && (std::integral<I> && ...))
    [[nodiscard]] const T& operator()(I... idx) const { return view()(idx...); }
    [[nodiscard]] T& operator[](index_t i) requires HostBackend<B> { return m_data[static_cast<std::size_t>(i)]; }
    [[nodiscard]] const T& operator[](index_t i) const requires HostBackend<B> {
        return m_data[static_cast<std::size_t>(i)];
    }

    /// Copy of the values in host memory.
    [[nodiscard]] std::vector<T> to_vector() const { return std::vector<T>(m_data.begin(), m_data.end()); }

    /// The same values on another backend (a plain copy between the CPU backends).
    template <Backend B2>
    [[nodiscard]] tensor<T, B2> to() const {
        tensor<T, B2> out;
        out.assign(m_shape, m_data.begin(), m_data.end());
        return out;
    }
    /// The same values converted to another element type, on the same backend.
    template <class U>
    [[nodiscard]] tensor<U, B> cast() const requires HostBackend<B> {
        tensor<U, B> out(m_shape);
        std::transform(m_data.begin(), m_data.end(), out.data(), [](T v) { return static_cast<U>(v); });
        return out;
    }

    template <class It>
    void assign(const tessel::shape& s, It first, It last) {
        m_shape = s;
        m_data.assign(first, last);
        expects(static_cast<index_t>(m_data.size()) == s.numel(), "tessel::tensor::assign", "shape ", s.str(),
                " needs ", s.numel(), " values, got ", m_data.size());
    }

private:
    template <class V>
    static auto raw(V& v) noexcept { return backend_traits<B>::raw(v); }

    tessel::shape m_shape{};
    storage_type m_data{};
};

/// Throws tessel::error naming `where` unless a and b have the same shape.
template <class TA, class TB>
void expect_same_shape(std::string_view where, const TA& a, const TB& b) {
    expects(a.shape() == b.shape(), where, "shape mismatch: ", a.shape().str(), " vs ", b.shape().str());
}

}  // namespace tessel
