// tessel/ops/argmax.hpp: per-sample argmax over the channel axis, and the count of distinct labels.
//
// Kim 2020 and Kanezaki 2018 take the pseudo-label of each pixel as the argmax of its response
// over the q channels, and stop training once the number of distinct labels drops to minLabels
// (METHODS.md §2.3-2.4). For x of shape [N, C, d1, ...] the labels have shape [N, d1, ...]. Ties go
// to the smallest channel index (torch.argmax returns the first maximal index). Pure math: no
// tape, no gradient.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "tessel/backend/parallel.hpp"
#include "tessel/core/tensor.hpp"

namespace tessel::ops {

namespace detail {
template <class T>
struct argmax_channels_fn {
    const T* x;
    label_t* labels;
    index_t C, S;
    TESSEL_HD void operator()(index_t s) const {
        const T* xs = x + (s / S) * C * S + s % S;
        index_t best = 0;
        T m = xs[0];
        for (index_t k = 1; k < C; ++k)
            if (xs[k * S] > m) {
                m = xs[k * S];
                best = k;
            }
        labels[s] = static_cast<label_t>(best);
    }
};
struct mark_seen_fn {  // every writer stores the same value, on the device only
    const label_t* labels;
    int* seen;
    TESSEL_HD void operator()(index_t i) const { seen[labels[i]] = 1; }
};
struct read_int_fn {
    const int* v;
    TESSEL_HD index_t operator()(index_t i) const { return v[i]; }
};
}  // namespace detail

/// labels[n, d...] = argmax_k x[n, k, d...]; returns the number of distinct labels.
/// @param seen host scratch of C flags, reused across calls so the steady state does not allocate.
/// @code
/// tensor<label_t> labels; std::vector<std::uint8_t> seen;
/// index_t n_labels = ops::argmax_channels(response, labels, seen);   // response [1,q,H,W]
/// @endcode
template <class T, Backend B>
index_t argmax_channels(const tensor<T, B>& x, tensor<label_t, B>& labels, std::vector<std::uint8_t>& seen) {
    constexpr std::string_view where = "tessel::ops::argmax_channels";
    expects(x.rank() >= 2, where, "input must be [N,C,...] with channels along axis 1, got shape ", x.shape().str());
    expects(x.numel() > 0, where, "empty input (shape ", x.shape().str(), ")");
    const index_t C = x.dim(1);
    const index_t S = x.numel() / (x.dim(0) * C);
    shape ls;
    ls.rank = x.rank() - 1;
    ls[0] = x.dim(0);
    for (int a = 2; a < x.rank(); ++a) ls[a - 1] = x.dim(a);
    labels.resize(ls);
    parallel_for(B{}, ls.numel(), detail::argmax_channels_fn<T>{x.data(), labels.data(), C, S});
    if constexpr (HostBackend<B>) {
        // One pass over the labels on one core: tiny next to the argmax itself, and race-free.
        seen.assign(static_cast<std::size_t>(C), 0);
        index_t distinct = 0;
        const label_t* l = labels.data();
        for (index_t i = 0; i < ls.numel(); ++i) {
            auto& f = seen[static_cast<std::size_t>(l[i])];
            distinct += f == 0;
            f = 1;
        }
        return distinct;
    } else {
        tensor<int, B> flags(shape{C}, 0);
        parallel_for(B{}, ls.numel(), detail::mark_seen_fn{labels.data(), flags.data()});
        return parallel_sum(B{}, C, index_t(0), detail::read_int_fn{flags.data()});
    }
}

/// As above, with its own scratch (allocates C bytes per call).
template <class T, Backend B>
index_t argmax_channels(const tensor<T, B>& x, tensor<label_t, B>& labels) {
    std::vector<std::uint8_t> seen;
    return argmax_channels(x, labels, seen);
}

}  // namespace tessel::ops
