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
    // (d > 0) - (d < 0) rather than nested ?: so that loops over it vectorise (same values).
    return static_cast<T>(static_cast<int>(d > T(0)) - static_cast<int>(d < T(0)));
}

/// sum_x |a[x] - b[x]| over x < n. Eight partial sums: one running float sum is a chain of
/// dependent adds that the compiler may not reorder (no -ffast-math), about 4 cycles per element;
/// eight independent chains vectorise into one 8-float add.
template <class T>
TESSEL_HD inline T sum_abs_diff(const T* a, const T* b, index_t n) {
    T part[8] = {};
    index_t x = 0;
    for (; x + 8 <= n; x += 8)
        for (int j = 0; j < 8; ++j) {
            const T d = a[x + j] - b[x + j];
            part[j] += d < T(0) ? -d : d;
        }
    T tail = 0;
    for (; x < n; ++x) {
        const T d = a[x] - b[x];
        tail += d < T(0) ? -d : d;
    }
    return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7])) + tail;
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
        // Row sums in T over at most a few thousand terms, then double.
        const T sum_y = below ? sum_abs_diff(below, cur, W) : T(0);
        const T sum_x = sum_abs_diff(cur + 1, cur, W - 1);
        if (g.data) {
            // A missing neighbour row is replaced by the row itself (difference 0, sign 0), and the
            // first and last pixels are done apart, so the inner loop has no branches and
            // vectorises; the terms are added in the same order as in a per-pixel form.
            const T* b = below ? below : cur;
            const T* a = above ? above : cur;
            auto grad = [&](index_t x, bool has_left, bool has_right) {
                T v = 0;
                v -= sign_of(b[x] - cur[x]) * gy;
                v += sign_of(cur[x] - a[x]) * gy;
                if (has_right) v -= sign_of(cur[x + 1] - cur[x]) * gx;
                if (has_left) v += sign_of(cur[x] - cur[x - 1]) * gx;
                return v;
            };
            T* out = g.data + row * W;
            const T first = grad(0, false, true), last = grad(W - 1, true, false);
            if (g.accumulate) {
                out[0] += first;
                for (index_t x = 1; x + 1 < W; ++x) out[x] += grad(x, true, true);
                out[W - 1] += last;
            } else {
                out[0] = first;
                for (index_t x = 1; x + 1 < W; ++x) out[x] = grad(x, true, true);
                out[W - 1] = last;
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
