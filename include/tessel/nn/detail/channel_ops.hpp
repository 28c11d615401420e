// tessel/nn/detail/channel_ops.hpp: per-channel loops shared by the NCHW layers (bias add, bias
// gradient, channel-slice copies). Each is a TESSEL_HD functor run through parallel_for.
#pragma once
#include "tessel/backend/parallel.hpp"

namespace tessel::nn::detail {

/// y[n, c, :] = b[c] (work item = one (n, c) plane of `plane` elements).
template <class T>
struct broadcast_bias_fn {
    const T* b;
    T* y;
    index_t channels, plane;
    TESSEL_HD void operator()(index_t r) const {
        const T v = b[r % channels];
        T* row = y + r * plane;
        for (index_t i = 0; i < plane; ++i) row[i] = v;
    }
};

/// db[c] = sum over n and the plane of dy[n, c, :] (work item = one channel).
template <class T>
struct channel_sum_fn {
    const T* dy;
    T* db;
    index_t batch, channels, plane;
    TESSEL_HD void operator()(index_t c) const {
        T s = T(0);
        for (index_t n = 0; n < batch; ++n) {
            const T* row = dy + (n * channels + c) * plane;
            T part = T(0);
            for (index_t i = 0; i < plane; ++i) part += row[i];
            s += part;
        }
        db[c] = s;
    }
};

/// Copies channels [0, cs) of src (N x cs x plane) to channels [c0, c0 + cs) of dst
/// (N x cd x plane), or the reverse when `gather` is set. Work item = one (n, c) plane.
template <class T>
struct channel_slice_fn {
    const T* src;
    T* dst;
    index_t cs, cd, c0, plane;
    bool gather;
    TESSEL_HD void operator()(index_t r) const {
        const index_t n = r / cs, c = r % cs;
        const index_t small = (n * cs + c) * plane, big = (n * cd + c0 + c) * plane;
        const T* from = src + (gather ? big : small);
        T* to = dst + (gather ? small : big);
        for (index_t i = 0; i < plane; ++i) to[i] = from[i];
    }
};

}  // namespace tessel::nn::detail
