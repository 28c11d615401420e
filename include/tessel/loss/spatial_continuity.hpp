// tessel/loss/spatial_continuity.hpp: the spatial continuity loss of Kim, Kanezaki, Tanaka 2020.
//
// For a response map r of shape [N, q, H, W] (NCHW; a batch counts every image):
//   L = mean |r[n,k,y+1,x] - r[n,k,y,x]|  +  mean |r[n,k,y,x+1] - r[n,k,y,x]|
// the first mean over N (H-1) W q vertical differences, the second over N H (W-1) q horizontal
// ones: PyTorch's L1Loss of the shifted maps against zero, as in the authors' demo.py
// (METHODS.md §2.3). The subgradient of |d| at d = 0 is 0 (PyTorch's sign(0) = 0). Each element
// gathers the signs of its up to four differences, so the gradient needs no atomics and is
// deterministic; the element also contributes its two forward differences to the value.
#pragma once
#include <cmath>
#include <string_view>

#include "tessel/autograd/functions.hpp"
#include "tessel/backend/parallel.hpp"
#include "tessel/loss/concepts.hpp"

namespace tessel::loss {

namespace detail {
template <class T>
TESSEL_HD inline T sign_of(T d) {
    return d > T(0) ? T(1) : (d < T(0) ? T(-1) : T(0));
}

/// One image row per call: the value of its differences to the row below and the pixel to the
/// right, and the (sub)gradient of every pixel of the row. Rows keep the inner loop free of
/// index divisions, which dominated a per-pixel formulation.
template <class T>
struct continuity_fn {
    const T* r;
    autograd::grad_target<T> g;
    index_t H, W;
    double wy, wx;  // 1 / (number of vertical / horizontal differences)
    T gy, gx;       // weight * wy, weight * wx in T, for the gradient
    TESSEL_HD double operator()(index_t row) const {
        const index_t y = row % H;
        const T* cur = r + row * W;
        const T* below = y + 1 < H ? cur + W : nullptr;
        const T* above = y > 0 ? cur - W : nullptr;
        // Row sums in T over at most a few thousand terms, then double: keeps the loops
        // branch-free so that they vectorise.
        T sum_y = 0, sum_x = 0;
        if (below)
            for (index_t x = 0; x < W; ++x) {
                const T d = below[x] - cur[x];
                sum_y += d < T(0) ? -d : d;
            }
        for (index_t x = 0; x + 1 < W; ++x) {
            const T d = cur[x + 1] - cur[x];
            sum_x += d < T(0) ? -d : d;
        }
        if (g.data) {
            T* out = g.data + row * W;
            for (index_t x = 0; x < W; ++x) {
                T grad = 0;
                if (below) grad -= sign_of(below[x] - cur[x]) * gy;
                if (above) grad += sign_of(cur[x] - above[x]) * gy;
                if (x + 1 < W) grad -= sign_of(cur[x + 1] - cur[x]) * gx;
                if (x > 0) grad += sign_of(cur[x] - cur[x - 1]) * gx;
                out[x] = g.accumulate ? out[x] + grad : grad;
            }
        }
        return static_cast<double>(sum_y) * wy + static_cast<double>(sum_x) * wx;
    }
};

template <class T, class B>
double continuity_impl(const tensor<T, B>& r, autograd::grad_target<T> g, double weight) {
    constexpr std::string_view where = "tessel::loss::spatial_continuity";
    expects(r.rank() == 4, where, "the response map must be NCHW (rank 4), got shape ", r.shape().str());
    expects(r.numel() > 0, where, "empty response map (shape ", r.shape().str(), ")");
    const index_t H = r.dim(2), W = r.dim(3);
    expects(H >= 2 && W >= 2, where, "needs at least 2 rows and 2 columns, got H = ", H, ", W = ", W,
            " (shape ", r.shape().str(), ")");
    const index_t planes = r.dim(0) * r.dim(1);
    const double wy = 1.0 / static_cast<double>(planes * (H - 1) * W);
    const double wx = 1.0 / static_cast<double>(planes * H * (W - 1));
    return parallel_sum(B{}, planes * H, 0.0,
                        continuity_fn<T>{r.data(), g, H, W, wy, wx, static_cast<T>(weight * wy),
                                         static_cast<T>(weight * wx)});
}

struct continuity_op : autograd::function<continuity_op> {
    static constexpr std::string_view name = "tessel::loss::spatial_continuity";
    template <class B, class T>
    static void forward(autograd::function_context<B, T>& ctx, tensor<T, B>& out, const tensor<T, B>& r) {
        autograd::grad_target<T> g{};
        if (ctx.needs_input_grad(0)) {
            ctx.workspace(0).resize(r.shape());
            g.data = ctx.workspace(0).data();
        }
        out.resize(shape{});
        parallel_for(B{}, 1, autograd::detail::fill_fn<T>{out.data(), static_cast<T>(continuity_impl(r, g, 1.0))});
    }
    template <class B, class T>
    static void backward(autograd::function_context<B, T>& ctx, const tensor<T, B>& dy, autograd::input_grads<B, T>& dx) {
        const auto& g = ctx.workspace(0);
        parallel_for(B{}, g.numel(), chain_saved_grad_fn<T>{dx.target(0), g.data(), dy.data()});
    }
};
}  // namespace detail

/// The continuity term L_y + L_x of Kim 2020 (weight it with grad_options or autograd::scale).
/// @code
/// loss::spatial_continuity con{};
/// double l = ce.value_and_grad(r, labels, dr) + mu * con.value_and_grad(r, dr, {.weight = mu, .accumulate = true});
/// @endcode
struct spatial_continuity {
    template <Backend B, class T>
    using target_type = no_target;

    template <class T, Backend B>
    double value(const tensor<T, B>& r, no_target = {}) const {
        return detail::continuity_impl(r, autograd::grad_target<T>{}, 1.0);
    }
    template <class T, Backend B>
    double value_and_grad(const tensor<T, B>& r, tensor<T, B>& dr, const grad_options& o = {}) const {
        const auto g = detail::prepare_grad("tessel::loss::spatial_continuity", r, dr, o);
        return detail::continuity_impl(r, g, o.weight);
    }
    template <class T, Backend B>
    double value_and_grad(const tensor<T, B>& r, no_target, tensor<T, B>& dr, const grad_options& o = {}) const {
        return value_and_grad(r, dr, o);
    }
    template <Backend B, class T>
    autograd::var<B, T> operator()(const autograd::var<B, T>& r, no_target = {}) const {
        return detail::continuity_op::apply(r);
    }
};

static_assert(Loss<spatial_continuity, cpu_serial, float> && Loss<spatial_continuity, cpu_omp, double>);

}  // namespace tessel::loss
