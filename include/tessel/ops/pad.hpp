// tessel/ops/pad.hpp: reflect padding of NCHW maps on the bottom and right edges.
//
// Networks that halve the resolution and double it back (the SuperAE of Deep Superpixel Cut)
// reproduce their input size only for sizes that are multiples of 2^levels; METHODS.md §7.2
// reflect-pads the image up to the next multiple and crops the output back. Reflection is
// PyTorch's "reflect" (the edge row is not repeated: ..., 2, 1, [0, 1, 2, ...]); a pad longer than
// the extent reflects again (period 2 (n - 1)), and an extent of 1 repeats its only row, so any
// size can be padded.
#pragma once
#include "tessel/backend/parallel.hpp"
#include "tessel/core/tensor.hpp"

namespace tessel::ops {

namespace detail {
TESSEL_HD inline index_t reflect_index(index_t i, index_t n) {
    if (n == 1) return 0;
    const index_t period = 2 * (n - 1);
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
}
template <class T>
struct reflect_pad_fn {
    const T* x;
    T* y;
    index_t H, W, OH, OW;
    TESSEL_HD void operator()(index_t e) const {
        const index_t ox = e % OW, oy = (e / OW) % OH, plane = e / (OW * OH);
        y[e] = x[plane * H * W + reflect_index(oy, H) * W + reflect_index(ox, W)];
    }
};
template <class T>
struct crop_fn {
    const T* x;
    T* y;
    index_t H, W, OH, OW;  // source H x W, output OH x OW (top-left corner)
    TESSEL_HD void operator()(index_t e) const {
        const index_t ox = e % OW, oy = (e / OW) % OH, plane = e / (OW * OH);
        y[e] = x[plane * H * W + oy * W + ox];
    }
};
}  // namespace detail

/// x [N, C, H, W] padded by reflection to [N, C, H + bottom, W + right].
template <class T, Backend B>
void reflect_pad(const tensor<T, B>& x, index_t bottom, index_t right, tensor<T, B>& y) {
    expects(x.rank() == 4 && x.numel() > 0, "tessel::ops::reflect_pad", "expects a non-empty NCHW tensor, got ",
            x.shape().str());
    expects(bottom >= 0 && right >= 0, "tessel::ops::reflect_pad", "pads must be >= 0, got ", bottom, " and ", right);
    const index_t H = x.dim(2), W = x.dim(3);
    y.resize(shape{x.dim(0), x.dim(1), H + bottom, W + right});
    parallel_for(B{}, y.numel(), detail::reflect_pad_fn<T>{x.data(), y.data(), H, W, H + bottom, W + right});
}

/// The top-left OH x OW window of x [N, C, H, W].
template <class T, Backend B>
void crop(const tensor<T, B>& x, index_t OH, index_t OW, tensor<T, B>& y) {
    expects(x.rank() == 4 && OH > 0 && OW > 0 && OH <= x.dim(2) && OW <= x.dim(3), "tessel::ops::crop", "cannot crop ",
            x.shape().str(), " to ", OH, "x", OW);
    y.resize(shape{x.dim(0), x.dim(1), OH, OW});
    parallel_for(B{}, y.numel(), detail::crop_fn<T>{x.data(), y.data(), x.dim(2), x.dim(3), OH, OW});
}

/// The smallest multiple of m that is >= n.
constexpr index_t round_up(index_t n, index_t m) { return (n + m - 1) / m * m; }

}  // namespace tessel::ops
