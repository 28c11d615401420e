// tessel/nn/conv_bn_relu.hpp: front (conv2d or pool_projection) -> batch norm -> ReLU
// [-> batch norm] as one block that keeps only the front's output z (NCHW), for memory.
//
// Backward recomputes, element by element, what the composition sequential<conv2d, batch_norm,
// relu, ...> would keep: xhat, the ReLU mask and the second norm's input. z waits in the context's
// scratch pool and backward writes dz over it (one backward per forward); with recompute_front
// not even z is kept. Numerically the composition, up to rounding. docs/nn_blocks.md.
#pragma once
#include <algorithm>
#include <cmath>
#include <optional>

#include "tessel/nn/batch_norm.hpp"
#include "tessel/nn/conv2d.hpp"
#include "tessel/nn/pool_projection.hpp"

namespace tessel::nn {

namespace detail {

/// Per-channel affine coefficients and the elementwise maps of the unit:
///   pre = z * s1 + t1;  r = relu ? max(pre, 0) : pre;  y = post ? r * s2 + t2 : r,
/// with s = gamma * invstd and t = beta - mean * s, the expressions batch_norm's apply uses.
template <class T>
struct unit_maps {
    const T *mean1, *invstd1, *gamma1, *beta1;
    const T *mean2, *invstd2, *gamma2, *beta2;  // null unless post
    bool relu, post;
    TESSEL_HD void coeffs1(index_t c, T& s, T& t) const {
        s = gamma1[c] * invstd1[c];
        t = beta1[c] - mean1[c] * s;
    }
    TESSEL_HD void coeffs2(index_t c, T& s, T& t) const {
        s = gamma2[c] * invstd2[c];
        t = beta2[c] - mean2[c] * s;
    }
    TESSEL_HD T act(T pre) const { return relu ? (pre > T(0) ? pre : T(0)) : pre; }
};

/// Statistics of the second norm's input r (computed on the fly from z), as bn_stats_fn.
template <class T>
struct unit_post_stats_fn {
    unit_maps<T> m;
    const T* z;
    T *mean, *invstd, *running_mean, *running_var;
    index_t batch, channels, plane;
    double eps, momentum;
    TESSEL_HD void operator()(index_t c) const {
        T s1c, t1c;
        m.coeffs1(c, s1c, t1c);
        const double count = static_cast<double>(batch * plane);
        const double shift = static_cast<double>(m.act(z[c * plane] * s1c + t1c));
        double s1 = 0, s2 = 0;
        double l1[8] = {0, 0, 0, 0, 0, 0, 0, 0}, l2[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (index_t n = 0; n < batch; ++n) {
            const T* a = z + (n * channels + c) * plane;
            for (int j = 0; j < 8; ++j) l1[j] = l2[j] = 0;
            index_t i = 0;
            for (; i + 8 <= plane; i += 8)
                for (int j = 0; j < 8; ++j) {
                    const double d = static_cast<double>(m.act(a[i + j] * s1c + t1c)) - shift;
                    l1[j] += d;
                    l2[j] += d * d;
                }
            for (; i < plane; ++i) {
                const double d = static_cast<double>(m.act(a[i] * s1c + t1c)) - shift;
                l1[0] += d;
                l2[0] += d * d;
            }
            for (int j = 0; j < 8; ++j) {
                s1 += l1[j];
                s2 += l2[j];
            }
        }
        const double md = s1 / count, mu = shift + md;
        double ss = s2 - s1 * md;
        if (ss < 0) ss = 0;
        mean[c] = static_cast<T>(mu);
        invstd[c] = static_cast<T>(1.0 / std::sqrt(ss / count + eps));
        running_mean[c] = static_cast<T>((1 - momentum) * static_cast<double>(running_mean[c]) + momentum * mu);
        running_var[c] =
            static_cast<T>((1 - momentum) * static_cast<double>(running_var[c]) + momentum * ss / (count - 1));
    }
};

/// y = post(act(pre(z))) into channels [c0, c0 + C) of out (N x out_channels x plane).
template <class T>
struct unit_apply_fn {
    unit_maps<T> m;
    const T* z;
    T* out;
    index_t channels, out_channels, c0, plane;
    TESSEL_HD void operator()(index_t r) const {
        const index_t n = r / channels, c = r % channels;
        T s1, t1, s2 = T(1), t2 = T(0);
        m.coeffs1(c, s1, t1);
        if (m.post) m.coeffs2(c, s2, t2);
        const T* in = z + r * plane;
        T* o = out + (n * out_channels + c0 + c) * plane;
        if (m.post)
            for (index_t i = 0; i < plane; ++i) o[i] = m.act(in[i] * s1 + t1) * s2 + t2;
        else
            for (index_t i = 0; i < plane; ++i) o[i] = m.act(in[i] * s1 + t1);
    }
};

/// The gradient chain of one channel, from dy (the unit's output gradient) back to dz:
///   g2 = post ? BN2 backward(dy) : dy;  g1 = relu ? g2 [pre > 0] : g2;  dz = BN1 backward(g1).
/// Each BN backward needs sums over the channel first, so the pass structure is:
///   stage 0: sums of dy and dy (r - mean2)  -> dgamma2, dbeta2       (post only)
///   stage 1: sums of g1 and g1 (z - mean1)  -> dgamma1, dbeta1
///   stage 2: dz, written over z (z is read first at the same index).
template <class T>
struct unit_grad {
    unit_maps<T> m;
    const T* dy;  // channel c of image n at dy + (n * dy_channels + dy_c0 + c) * plane
    index_t dy_channels, dy_c0;
    const T *dgamma2, *dbeta2;
    T count;
    bool training;
    /// g1 at one element (post's sums must be final).
    TESSEL_HD T g1(index_t c, T zv, T g, T s1, T t1) const {
        const T pre = zv * s1 + t1;
        if (m.post) {
            const T is = m.invstd2[c], k = m.gamma2[c] * is;
            if (training) {
                const T r = m.act(pre), a = dgamma2[c] / count, b = dbeta2[c] / count;
                g = k * (g - b - (r - m.mean2[c]) * is * a);
            } else {
                g = k * g;
            }
        }
        return m.relu && !(pre > T(0)) ? T(0) : g;
    }
    TESSEL_HD const T* dy_plane(index_t n, index_t c, index_t plane) const {
        return dy + (n * dy_channels + dy_c0 + c) * plane;
    }
};

template <class T>
struct unit_grad_sums_fn {  // work item = one channel
    unit_grad<T> u;
    const T* z;
    T *dgamma, *dbeta;  // of BN2 (stage 0) or BN1 (stage 1)
    index_t batch, channels, plane;
    int stage;
    /// The (gradient, norm input) pair at one element.
    TESSEL_HD void term(index_t c, T zv, T g, T s1, T t1, double& gv, double& xv) const {
        if (stage == 0) {
            gv = static_cast<double>(g);
            xv = static_cast<double>(u.m.act(zv * s1 + t1));
        } else {
            gv = static_cast<double>(u.g1(c, zv, g, s1, t1));
            xv = static_cast<double>(zv);
        }
    }
    TESSEL_HD void operator()(index_t c) const {
        T s1, t1;
        u.m.coeffs1(c, s1, t1);
        const double mu = static_cast<double>(stage == 0 ? u.m.mean2[c] : u.m.mean1[c]);
        const double is = static_cast<double>(stage == 0 ? u.m.invstd2[c] : u.m.invstd1[c]);
        double sd = 0, sdx = 0;
        for (index_t n = 0; n < batch; ++n) {
            const T* a = z + (n * channels + c) * plane;
            const T* g = u.dy_plane(n, c, plane);
            // Eight independent lanes, as batch_norm's grad_sums.
            double l1[8] = {0, 0, 0, 0, 0, 0, 0, 0}, l2[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            double gv, xv;
            index_t i = 0;
            for (; i + 8 <= plane; i += 8)
                for (int j = 0; j < 8; ++j) {
                    term(c, a[i + j], g[i + j], s1, t1, gv, xv);
                    l1[j] += gv;
                    l2[j] += gv * (xv - mu);
                }
            for (; i < plane; ++i) {
                term(c, a[i], g[i], s1, t1, gv, xv);
                l1[0] += gv;
                l2[0] += gv * (xv - mu);
            }
            for (int j = 0; j < 8; ++j) {
                sd += l1[j];
                sdx += l2[j];
            }
        }
        dbeta[c] = static_cast<T>(sd);
        dgamma[c] = static_cast<T>(sdx * is);
    }
};

template <class T>
struct unit_input_grad_fn {  // work item = one (n, c) plane; dz overwrites z
    unit_grad<T> u;
    T* z;
    const T *dgamma1, *dbeta1;
    index_t channels, plane;
    TESSEL_HD void operator()(index_t r) const {
        const index_t n = r / channels, c = r % channels;
        T s1, t1;
        u.m.coeffs1(c, s1, t1);
        T* a = z + r * plane;
        const T* g = u.dy_plane(n, c, plane);
        const T is = u.m.invstd1[c], k = u.m.gamma1[c] * is;
        if (!u.training) {
            for (index_t i = 0; i < plane; ++i) a[i] = k * u.g1(c, a[i], g[i], s1, t1);
            return;
        }
        const T mu = u.m.mean1[c], ga = dgamma1[c] / u.count, gb = dbeta1[c] / u.count;
        for (index_t i = 0; i < plane; ++i) {
            const T zv = a[i];
            a[i] = k * (u.g1(c, zv, g[i], s1, t1) - gb - (zv - mu) * is * ga);
        }
    }
};

}  // namespace detail

/// Front -> batch_norm -> ReLU [-> batch_norm] keeping only the front's output (see the header
/// comment). Front is nn::conv2d or nn::pool_projection (anything with forward_into,
/// backward_into, backward_add_into, rebind_input and config::out_channels).
template <LayerSpec Front>
struct bn_relu_unit {
    struct config {
        typename Front::config conv{};
        double eps = 1e-5;       ///< both norms
        double momentum = 0.1;   ///< both norms
        bool relu = true;        ///< false: front -> batch_norm only (a network head)
        bool post_bn = false;    ///< a second batch_norm after the ReLU (Azad's block ReLU -> BN)
        bool recompute_front = false;  ///< keep no z: run the front again in backward
    };

    template <Backend B, class T = float>
    class bind {
    public:
        bind(const config& cfg, rng& init) : m_cfg(cfg), m_front(cfg.conv, init) {
            constexpr const char* where = "tessel::nn::conv_bn_relu";
            expects(cfg.eps > 0, where, "eps must be positive, got ", cfg.eps);
            expects(cfg.momentum >= 0 && cfg.momentum <= 1, where, "momentum must be in [0, 1], got ", cfg.momentum);
            const shape s{cfg.conv.out_channels};
            for (auto* t : {&m_gamma1, &m_gamma2, &m_var1, &m_var2}) *t = tensor<T, B>(s, T(1));
            for (auto* t : {&m_beta1, &m_beta2, &m_rmean1, &m_rmean2, &m_mean1, &m_mean2, &m_invstd1, &m_invstd2,
                            &m_dgamma1, &m_dbeta1, &m_dgamma2, &m_dbeta2})
                *t = tensor<T, B>(s, T(0));
        }

        const tensor<T, B>& forward(context<B>& ctx, const tensor<T, B>& x) {
            forward_into(ctx, x, m_y);
            return m_y;
        }
        /// The output into y (see nn::ForwardsInto): backward never reads it.
        void forward_into(context<B>& ctx, const tensor<T, B>& x, tensor<T, B>& y) {
            run_forward(ctx, x, [&](const shape& s) -> T* {
                y.resize(s);
                return y.data();
            }, 0, 0);
        }
        /// The output into channels [c0, c0 + out_channels) of out, an (N x out_total x OH x OW)
        /// tensor of the right spatial size (a concatenation: no copy of the branch needed).
        void forward_to(context<B>& ctx, const tensor<T, B>& x, tensor<T, B>& out, index_t c0) {
            const index_t total = out.rank() == 4 ? out.dim(1) : 0;
            run_forward(ctx, x, [&](const shape& s) -> T* {
                expects(out.rank() == 4 && out.dim(0) == s[0] && out.dim(2) == s[2] && out.dim(3) == s[3] &&
                            c0 >= 0 && c0 + s[1] <= total,
                        "tessel::nn::conv_bn_relu::forward_to", "cannot put ", s.str(), " at channel ", c0, " of ",
                        out.shape().str());
                return out.data();
            }, total, c0);
        }
        /// The last forward's output again, into y, from the saved z (or the input, with
        /// recompute_front) and statistics; before backward, which consumes them. For a caller
        /// that dropped this unit's output after using it and needs it once more.
        void recompute_output_into(context<B>& ctx, tensor<T, B>& y) {
            y.resize(m_out_shape);
            recompute(ctx, y.data(), m_out_shape[1], 0);
        }
        /// The same into channels [c0, c0 + out_channels) of out (see forward_to).
        void recompute_output_to(context<B>& ctx, tensor<T, B>& out, index_t c0) {
            expects(out.rank() == 4 && out.dim(0) == m_out_shape[0] && out.dim(2) == m_out_shape[2] &&
                        out.dim(3) == m_out_shape[3] && c0 >= 0 && c0 + m_out_shape[1] <= out.dim(1),
                    "tessel::nn::conv_bn_relu::recompute_output_to", "cannot put ", m_out_shape.str(),
                    " at channel ", c0, " of ", out.shape().str());
            recompute(ctx, out.data(), out.dim(1), c0);
        }
        /// Points backward at another copy of the input (see conv2d::rebind_input).
        void rebind_input(const tensor<T, B>& x) {
            m_front.rebind_input(x);
            m_x = &x;
        }

        const tensor<T, B>& backward(context<B>& ctx, const tensor<T, B>& dy) {
            backward_into(ctx, dy, m_dx);
            return m_dx;
        }
        static constexpr bool overwritable_output = true;
        /// Consumes the saved z (one backward per forward, as with PyTorch's default
        /// retain_graph = false); parameter gradients are overwritten.
        void backward_into(context<B>& ctx, const tensor<T, B>& dy, tensor<T, B>& dx) {
            expects(dy.shape() == m_out_shape, "tessel::nn::conv_bn_relu::backward", "output gradient of shape ",
                    dy.shape().str(), " does not match the forward output ", m_out_shape.str());
            backward_from(ctx, dy, 0, dx, false);
        }
        /// The output gradient is channels [c0, c0 + out_channels) of dy (see forward_to); with
        /// accumulate, dx += the input gradient (dx must have the input's shape).
        void backward_from(context<B>& ctx, const tensor<T, B>& dy, index_t c0, tensor<T, B>& dx, bool accumulate) {
            constexpr const char* where = "tessel::nn::conv_bn_relu::backward";
            const index_t N = m_out_shape[0], C = m_out_shape[1], P = m_out_shape[2] * m_out_shape[3];
            expects(m_z != nullptr || (m_cfg.recompute_front && m_x != nullptr), where,
                    "backward needs a forward first (and runs once per forward)");
            expects(dy.rank() == 4 && dy.dim(0) == N && dy.dim(2) == m_out_shape[2] && dy.dim(3) == m_out_shape[3] &&
                        c0 >= 0 && c0 + C <= dy.dim(1),
                    where, "output gradient of shape ", dy.shape().str(), " has no channels [", c0, ", ", c0 + C,
                    ") of the forward output ", m_out_shape.str());
            std::optional<scratch_lease<T, B>> fresh;
            tensor<T, B>* z = m_z;
            if (z == nullptr) {
                fresh.emplace(ctx, m_out_shape.numel());
                m_front.forward_into(ctx, *m_x, fresh->get());
                z = &fresh->get();
            }
            const detail::unit_grad<T> u{maps(), dy.data(), dy.dim(1), c0, m_dgamma2.data(), m_dbeta2.data(),
                                         static_cast<T>(N * P), m_training};
            if (m_cfg.post_bn)
                parallel_for(B{}, C, detail::unit_grad_sums_fn<T>{u, z->data(), m_dgamma2.data(), m_dbeta2.data(), N, C, P, 0});
            parallel_for(B{}, C, detail::unit_grad_sums_fn<T>{u, z->data(), m_dgamma1.data(), m_dbeta1.data(), N, C, P, 1});
            parallel_for(B{}, N * C, detail::unit_input_grad_fn<T>{u, z->data(), m_dgamma1.data(), m_dbeta1.data(), C, P});
            if (accumulate)
                m_front.backward_add_into(ctx, *z, dx);
            else
                m_front.backward_into(ctx, *z, dx);
            give_back();
        }

        parameter_list<T, B> parameters() {
            parameter_list<T, B> p = m_front.parameters();
            p.push_back({&m_gamma1, &m_dgamma1, "gamma"});
            p.push_back({&m_beta1, &m_dbeta1, "beta"});
            if (m_cfg.post_bn) {
                p.push_back({&m_gamma2, &m_dgamma2, "post_gamma"});
                p.push_back({&m_beta2, &m_dbeta2, "post_beta"});
            }
            return p;
        }
        buffer_list<T, B> buffers() {
            buffer_list<T, B> b = buffers_of<T, B>(m_front);
            b.push_back({&m_rmean1, "running_mean"});
            b.push_back({&m_var1, "running_var", true});
            if (m_cfg.post_bn) {
                b.push_back({&m_rmean2, "post_running_mean"});
                b.push_back({&m_var2, "post_running_var", true});
            }
            return b;
        }
        void set_input_grad_needed(bool needed) { m_front.set_input_grad_needed(needed); }

        [[nodiscard]] const config& cfg() const noexcept { return m_cfg; }
        typename Front::template bind<B, T>& front() noexcept { return m_front; }
        tensor<T, B>& gamma() noexcept { return m_gamma1; }
        tensor<T, B>& beta() noexcept { return m_beta1; }
        tensor<T, B>& post_gamma() noexcept { return m_gamma2; }
        tensor<T, B>& post_beta() noexcept { return m_beta2; }
        tensor<T, B>& running_mean() noexcept { return m_rmean1; }
        tensor<T, B>& running_var() noexcept { return m_var1; }
        tensor<T, B>& post_running_mean() noexcept { return m_rmean2; }
        tensor<T, B>& post_running_var() noexcept { return m_var2; }

    private:
        detail::unit_maps<T> maps() const {
            return {m_mean1.data(), m_invstd1.data(), m_gamma1.data(), m_beta1.data(),
                    m_mean2.data(), m_invstd2.data(), m_gamma2.data(), m_beta2.data(),
                    m_cfg.relu,     m_cfg.post_bn};
        }
        void recompute(context<B>& ctx, T* out, index_t out_total, index_t c0) {
            expects(m_z != nullptr || (m_cfg.recompute_front && m_x != nullptr),
                    "tessel::nn::conv_bn_relu::recompute_output", "needs a forward (and no backward) first");
            if (m_z != nullptr) {
                apply(*m_z, out, out_total, c0);
                return;
            }
            scratch_lease<T, B> z(ctx, m_out_shape.numel());
            m_front.forward_into(ctx, *m_x, z.get());
            apply(z.get(), out, out_total, c0);
        }
        void apply(const tensor<T, B>& z, T* out, index_t out_total, index_t c0) {
            const index_t N = z.dim(0), C = z.dim(1), P = z.dim(2) * z.dim(3);
            parallel_for(B{}, N * C, detail::unit_apply_fn<T>{maps(), z.data(), out, C, out_total, c0, P});
        }
        /// Returns the saved z's slot to the pool it came from.
        void give_back() {
            if (m_z != nullptr && m_pool != nullptr) m_pool->release(*m_z);
            m_z = nullptr;
        }

        template <class Out>
        void run_forward(context<B>& ctx, const tensor<T, B>& x, Out&& out_for, index_t out_total, index_t c0) {
            constexpr const char* where = "tessel::nn::conv_bn_relu::forward";
            give_back();  // a forward without backward (prediction) leaves the last z unused
            m_x = &x;
            // The slot is chosen by size; the exact size is known after the front has run, and
            // a mismatch only costs a resize on the first iteration.
            tensor<T, B>* z;
            std::optional<scratch_lease<T, B>> fresh;
            const index_t guess = x.numel() / std::max<index_t>(x.dim(1), 1) * m_cfg.conv.out_channels;
            if (m_cfg.recompute_front) {
                fresh.emplace(ctx, guess);
                z = &fresh->get();
            } else {
                m_pool = &ctx.scratch;
                m_z = &ctx.scratch.template acquire<T>(guess, true);
                z = m_z;
            }
            m_front.forward_into(ctx, x, *z);
            const index_t N = z->dim(0), C = z->dim(1), P = z->dim(2) * z->dim(3);
            m_out_shape = z->shape();
            m_training = ctx.training;
            if (m_training) {
                expects(N * P > 1, where, "train mode needs more than one value per channel, got ", z->shape().str());
                parallel_for(B{}, C,
                             detail::bn_stats_fn<T>{z->data(), m_mean1.data(), m_invstd1.data(), m_rmean1.data(),
                                                    m_var1.data(), N, C, P, m_cfg.eps, m_cfg.momentum});
                if (m_cfg.post_bn)
                    parallel_for(B{}, C,
                                 detail::unit_post_stats_fn<T>{maps(), z->data(), m_mean2.data(), m_invstd2.data(),
                                                               m_rmean2.data(), m_var2.data(), N, C, P, m_cfg.eps,
                                                               m_cfg.momentum});
            } else {
                parallel_for(B{}, C,
                             detail::bn_running_fn<T>{m_rmean1.data(), m_var1.data(), m_mean1.data(), m_invstd1.data(),
                                                      m_cfg.eps});
                if (m_cfg.post_bn)
                    parallel_for(B{}, C,
                                 detail::bn_running_fn<T>{m_rmean2.data(), m_var2.data(), m_mean2.data(),
                                                          m_invstd2.data(), m_cfg.eps});
            }
            T* out = out_for(m_out_shape);
            apply(*z, out, out_total == 0 ? C : out_total, c0);
        }

        config m_cfg;
        typename Front::template bind<B, T> m_front;
        tensor<T, B> m_gamma1, m_beta1, m_rmean1, m_var1, m_mean1, m_invstd1, m_dgamma1, m_dbeta1;
        tensor<T, B> m_gamma2, m_beta2, m_rmean2, m_var2, m_mean2, m_invstd2, m_dgamma2, m_dbeta2;
        tensor<T, B> m_y, m_dx;
        tensor<T, B>* m_z = nullptr;          ///< the saved front output, a slot of *m_pool
        scratch_pool<B>* m_pool = nullptr;
        const tensor<T, B>* m_x = nullptr;
        shape m_out_shape{};
        bool m_training = true;
    };
};

/// conv2d -> batch_norm -> ReLU [-> batch_norm].
using conv_bn_relu = bn_relu_unit<conv2d>;
/// max pool -> 1x1 conv -> batch_norm -> ReLU [-> batch_norm] (Inception's pool branch).
using pool_proj_bn_relu = bn_relu_unit<pool_projection>;

static_assert(LayerSpec<conv_bn_relu>);
static_assert(Layer<conv_bn_relu::bind<cpu_serial>, cpu_serial>);
static_assert(ForwardsInto<conv_bn_relu::bind<cpu_serial>, cpu_serial>);
static_assert(BackwardsInto<conv_bn_relu::bind<cpu_serial>, cpu_serial>);

}  // namespace tessel::nn
