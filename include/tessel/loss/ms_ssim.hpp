// tessel/loss/ms_ssim.hpp: multi-scale structural similarity (Wang, Simoncelli & Bovik 2003) as a
// differentiable loss, with the semantics of the `pytorch_msssim` package (PyPI, 1.0).
//
// PiCNet's reconstruction loss is MS-SSIM + L2 (METHODS.md §8.2, L_rec). For images x (the
// prediction) and y (the target), both [N, C, H, W] with values in [0, data_range]:
//   at each scale l = 0..L-1, with an 11x11 Gaussian window (sigma 1.5, normalised, applied as a
//   separable *valid* correlation), mu, sigma^2 and the covariance give per-pixel maps
//     cs   = (2 s_xy + C2) / (s_xx + s_yy + C2),   ssim = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1) * cs
//   with C1 = (K1 R)^2, C2 = (K2 R)^2; the maps are averaged per (n, c) plane; between scales both
//   images go through 2x2 average pooling, padded by (H mod 2, W mod 2) zeros on each side and
//   divided by 4 (F.avg_pool2d with count_include_pad, as pytorch_msssim does);
//   MS-SSIM(n, c) = prod_{l < L-1} relu(cs_l)^w_l * relu(ssim_{L-1})^w_{L-1}, averaged over planes.
// The loss is 1 - MS-SSIM (value_and_grad's weight scales the gradient). Only the prediction gets a gradient: the target is a
// constant (the input image in L_rec). Standard settings: L = 5, w = (0.0448, 0.2856, 0.3001,
// 0.2363, 0.1333), K1 = 0.01, K2 = 0.03. With levels = 0 (the default) the number of scales is
// the largest L <= 5 at which the coarsest scale still holds a whole window (both sides >= 11
// there; with the ceil halving of the padded pooling that is a smaller side > 160 px for L = 5,
// exactly the images pytorch_msssim accepts, which refuses smaller ones); the first L weights are
// then renormalised to sum 1 (PROPOSAL: METHODS.md §8.2 says only "fewer scales"; with one scale
// this is SSIM). The gradient of relu(c)^w at
// c = 0 is taken as 0 (PyTorch would give inf or NaN there).
#pragma once
#include <array>
#include <cmath>
#include <string_view>
#include <vector>

#include "tessel/autograd/functions.hpp"
#include "tessel/backend/parallel.hpp"
#include "tessel/loss/concepts.hpp"

namespace tessel::loss {

/// MS-SSIM settings; the loss is 1 - MS-SSIM(x, y).
struct ms_ssim {
    index_t levels = 0;        ///< scales L in 1..5; 0: automatic from the image size (see above)
    index_t window = 11;       ///< odd Gaussian window size
    double sigma = 1.5;        ///< Gaussian standard deviation in pixels
    double k1 = 0.01, k2 = 0.03;
    double data_range = 1.0;   ///< R: the value range of the images
    std::array<double, 5> weights{0.0448, 0.2856, 0.3001, 0.2363, 0.1333};
    bool renormalize = true;   ///< with L < 5 scales, rescale the first L weights to sum 1

    template <Backend B, class T>
    using target_type = tensor<T, B>;

    static constexpr std::string_view name = "tessel::loss::ms_ssim";

    /// Checks the settings (throws tessel::error naming the bad one).
    void validate() const {
        expects(levels >= 0 && levels <= 5, name, "levels must lie in 0..5 (0: automatic), got ", levels);
        expects(window >= 1 && window % 2 == 1, name, "window must be a positive odd size, got ", window);
        expects(std::isfinite(sigma) && sigma > 0, name, "sigma must be positive and finite, got ", sigma);
        expects(std::isfinite(k1) && k1 > 0 && std::isfinite(k2) && k2 > 0, name, "K1 and K2 must be positive, got ",
                k1, " and ", k2);
        expects(std::isfinite(data_range) && data_range > 0, name, "data_range must be positive, got ", data_range);
        for (double w : weights)
            expects(std::isfinite(w) && w >= 0, name, "scale weights must be finite and >= 0, got ", w);
    }

    /// The side of scale l for a first-scale side n: pytorch_msssim's padded pooling gives ceil halving.
    static index_t scale_side(index_t n, index_t l) {
        for (index_t k = 0; k < l; ++k) n = (n + 1) / 2;
        return n;
    }
    /// The number of scales used on an H x W image (throws when even one scale does not fit).
    [[nodiscard]] index_t levels_for(index_t h, index_t w) const {
        const index_t side = h < w ? h : w;
        expects(side >= window, name, "the image (", h, " x ", w, ") is smaller than the ", window, "x", window,
                " window");
        if (levels > 0) {
            expects(scale_side(side, levels - 1) >= window, name, levels, " scales need a smaller side of at least ",
                    window, " px at the coarsest scale; the image is ", h, " x ", w, " (set levels = 0 for automatic)");
            return levels;
        }
        index_t l = 5;
        while (l > 1 && scale_side(side, l - 1) < window) --l;
        return l;
    }
    /// The scale weights in use for L scales.
    [[nodiscard]] std::array<double, 5> weights_for(index_t L) const {
        std::array<double, 5> w{};
        double sum = 0;
        for (index_t l = 0; l < L; ++l) sum += weights[static_cast<std::size_t>(l)];
        for (index_t l = 0; l < L; ++l)
            w[static_cast<std::size_t>(l)] =
                (renormalize && L < 5 && sum > 0) ? weights[static_cast<std::size_t>(l)] / sum : weights[static_cast<std::size_t>(l)];
        return w;
    }

    template <class T, Backend B>
    class workspace;

    /// MS-SSIM(x, y) itself (1 is identical images).
    template <class T, Backend B>
    double index(const tensor<T, B>& x, const tensor<T, B>& y) const;
    template <class T, Backend B>
    double value(const tensor<T, B>& x, const tensor<T, B>& y) const;
    template <class T, Backend B>
    double value_and_grad(const tensor<T, B>& x, const tensor<T, B>& y, tensor<T, B>& dx,
                          const grad_options& o = {}) const;
    /// As above with caller-owned buffers: no allocation once the shapes repeat.
    template <class T, Backend B>
    double value_and_grad(const tensor<T, B>& x, const tensor<T, B>& y, tensor<T, B>& dx, const grad_options& o,
                          workspace<T, B>& ws) const;
    /// Tape form against a constant target (kept alive until backward).
    template <Backend B, class T>
    autograd::var<B, T> operator()(const autograd::var<B, T>& x, const tensor<T, B>& y) const;
};

namespace detail {

/// Per-plane geometry of one scale: input h x w, valid-filtered output oh x ow.
struct ssim_plane {
    index_t h, w, oh, ow, win;
};

/// Separable valid correlation of one plane with the 1-D window g along W then H; tmp holds
/// h x ow values.
template <class T>
TESSEL_HD inline void gauss_valid(const ssim_plane& d, const T* g, const T* in, T* tmp, T* out) {
    for (index_t i = 0; i < d.h; ++i)
        for (index_t j = 0; j < d.ow; ++j) {
            T s = 0;
            for (index_t k = 0; k < d.win; ++k) s += g[k] * in[i * d.w + j + k];
            tmp[i * d.ow + j] = s;
        }
    for (index_t i = 0; i < d.oh; ++i)
        for (index_t j = 0; j < d.ow; ++j) {
            T s = 0;
            for (index_t k = 0; k < d.win; ++k) s += g[k] * tmp[(i + k) * d.ow + j];
            out[i * d.ow + j] = s;
        }
}
/// The adjoint of gauss_valid: out (h x w) = G^T in (oh x ow); tmp holds h x ow values.
template <class T>
TESSEL_HD inline void gauss_valid_adjoint(const ssim_plane& d, const T* g, const T* in, T* tmp, T* out) {
    for (index_t i = 0; i < d.h; ++i)
        for (index_t j = 0; j < d.ow; ++j) {
            T s = 0;
            const index_t k0 = i - d.oh + 1 > 0 ? i - d.oh + 1 : 0, k1 = i < d.win - 1 ? i : d.win - 1;
            for (index_t k = k0; k <= k1; ++k) s += g[k] * in[(i - k) * d.ow + j];
            tmp[i * d.ow + j] = s;
        }
    for (index_t i = 0; i < d.h; ++i)
        for (index_t j = 0; j < d.w; ++j) {
            T s = 0;
            const index_t k0 = j - d.ow + 1 > 0 ? j - d.ow + 1 : 0, k1 = j < d.win - 1 ? j : d.win - 1;
            for (index_t k = k0; k <= k1; ++k) s += g[k] * tmp[i * d.ow + j - k];
            out[i * d.w + j] = s;
        }
}

/// One scale of one plane: the five filtered moments (kept for backward) and the means of the cs
/// and ssim maps. Work item = one (n, c) plane.
template <class T>
struct ssim_scale_forward_fn {
    ssim_plane d;
    const T* g;
    const T* x;
    const T* y;
    T* prod;     // planes x h x w scratch for the products
    T* tmp;      // planes x h x ow scratch
    T* moments;  // planes x 5 x oh x ow: mu_x, mu_y, E[xx], E[yy], E[xy]
    double* cs_mean;
    double* ssim_mean;
    T c1, c2;
    TESSEL_HD void operator()(index_t p) const {
        const index_t n = d.h * d.w, m = d.oh * d.ow;
        const T* xp = x + p * n;
        const T* yp = y + p * n;
        T* pr = prod + p * n;
        T* tp = tmp + p * d.h * d.ow;
        T* mo = moments + p * 5 * m;
        gauss_valid(d, g, xp, tp, mo);
        gauss_valid(d, g, yp, tp, mo + m);
        for (index_t i = 0; i < n; ++i) pr[i] = xp[i] * xp[i];
        gauss_valid(d, g, pr, tp, mo + 2 * m);
        for (index_t i = 0; i < n; ++i) pr[i] = yp[i] * yp[i];
        gauss_valid(d, g, pr, tp, mo + 3 * m);
        for (index_t i = 0; i < n; ++i) pr[i] = xp[i] * yp[i];
        gauss_valid(d, g, pr, tp, mo + 4 * m);
        double cs = 0, ss = 0;
        for (index_t i = 0; i < m; ++i) {
            const T mx = mo[i], my = mo[m + i];
            const T sxx = mo[2 * m + i] - mx * mx, syy = mo[3 * m + i] - my * my, sxy = mo[4 * m + i] - mx * my;
            const T c = (T(2) * sxy + c2) / (sxx + syy + c2);
            const T l = (T(2) * mx * my + c1) / (mx * mx + my * my + c1);
            cs += static_cast<double>(c);
            ss += static_cast<double>(l * c);
        }
        cs_mean[p] = cs / static_cast<double>(m);
        ssim_mean[p] = ss / static_cast<double>(m);
    }
};

/// The gradient of a * mean(cs) + b * mean(ssim) of one plane with respect to x, written to dx
/// (h x w). a, b are per plane.
template <class T>
struct ssim_scale_backward_fn {
    ssim_plane d;
    const T* g;
    const T* x;
    const T* y;
    const T* moments;
    const double* a;
    const double* b;
    T* gm;   // planes x 3 x oh x ow: coefficient maps of mu_x, E[xx], E[xy]
    T* tmp;  // planes x h x ow
    T* back; // planes x h x w scratch
    T* dx;
    T c1, c2;
    TESSEL_HD void operator()(index_t p) const {
        const index_t n = d.h * d.w, m = d.oh * d.ow;
        const T* mo = moments + p * 5 * m;
        T* gp = gm + p * 3 * m;
        const T ap = static_cast<T>(a[p] / static_cast<double>(m)), bp = static_cast<T>(b[p] / static_cast<double>(m));
        for (index_t i = 0; i < m; ++i) {
            const T mx = mo[i], my = mo[m + i];
            const T sxx = mo[2 * m + i] - mx * mx, syy = mo[3 * m + i] - my * my, sxy = mo[4 * m + i] - mx * my;
            const T num = T(2) * sxy + c2, den = sxx + syy + c2;
            const T c = num / den;
            const T ln = T(2) * mx * my + c1, ld = mx * mx + my * my + c1;
            const T l = ln / ld;
            // d(cs)/d(s_xy) = 2 / den, d(cs)/d(s_xx) = -cs / den; ssim = l * cs.
            const T dc = ap + bp * l;  // weight of d(cs)
            const T dl = bp * c;       // weight of d(l)
            const T dc_dsxy = T(2) / den, dc_dsxx = -c / den;
            const T dl_dmx = (T(2) * my - T(2) * mx * l) / ld;
            // s_xx = E[xx] - mx^2, s_xy = E[xy] - mx my.
            gp[i] = dc * (dc_dsxx * (-T(2) * mx) + dc_dsxy * (-my)) + dl * dl_dmx;  // mu_x
            gp[m + i] = dc * dc_dsxx;                                              // E[xx]
            gp[2 * m + i] = dc * dc_dsxy;                                          // E[xy]
        }
        const T* xp = x + p * n;
        const T* yp = y + p * n;
        T* tp = tmp + p * d.h * d.ow;
        T* bk = back + p * n;
        T* out = dx + p * n;
        gauss_valid_adjoint(d, g, gp, tp, out);
        gauss_valid_adjoint(d, g, gp + m, tp, bk);
        for (index_t i = 0; i < n; ++i) out[i] += T(2) * xp[i] * bk[i];
        gauss_valid_adjoint(d, g, gp + 2 * m, tp, bk);
        for (index_t i = 0; i < n; ++i) out[i] += yp[i] * bk[i];
    }
};

/// pytorch_msssim's pooling between scales: 2x2 windows with (h mod 2, w mod 2) zero padding on
/// each side, divided by 4. Work item = one output element.
template <class T>
struct ssim_pool_fn {
    index_t h, w, oh, ow, ph, pw;
    const T* in;
    T* out;
    TESSEL_HD void operator()(index_t o) const {
        const index_t p = o / (oh * ow), r = o % (oh * ow), i = r / ow, j = r % ow;
        const T* ip = in + p * h * w;
        T s = 0;
        for (index_t di = 0; di < 2; ++di)
            for (index_t dj = 0; dj < 2; ++dj) {
                const index_t ii = 2 * i + di - ph, jj = 2 * j + dj - pw;
                if (ii >= 0 && ii < h && jj >= 0 && jj < w) s += ip[ii * w + jj];
            }
        out[o] = s * T(0.25);
    }
};
/// Its adjoint, accumulated: din += pool^T dout. Work item = one input element.
template <class T>
struct ssim_unpool_add_fn {
    index_t h, w, oh, ow, ph, pw;
    const T* dout;
    T* din;
    TESSEL_HD void operator()(index_t q) const {
        const index_t p = q / (h * w), r = q % (h * w), i = r / w, j = r % w;
        const index_t oi = (i + ph) / 2, oj = (j + pw) / 2;
        din[q] += T(0.25) * dout[p * oh * ow + oi * ow + oj];
    }
};

template <class T>
struct scaled_write_fn {
    autograd::grad_target<T> g;
    const T* src;
    T s;
    TESSEL_HD void operator()(index_t i) const { g.write(i, s * src[i]); }
};

}  // namespace detail

/// Buffers of one MS-SSIM evaluation, reused across calls with the same shapes.
template <class T, Backend B>
class ms_ssim::workspace {
public:
    /// Runs the forward pass; returns MS-SSIM averaged over planes. With grad, also leaves
    /// dMS-SSIM/dx (summed over planes, not averaged) for backward().
    double forward(const ms_ssim& s, const tensor<T, B>& x, const tensor<T, B>& y) {
        s.validate();
        expects(x.rank() == 4 && x.shape() == y.shape(), name, "expects prediction and target of equal shape [N, C, H, W], got ",
                x.shape().str(), " and ", y.shape().str());
        expects(x.numel() > 0, name, "empty input (shape ", x.shape().str(), ")");
        m_planes = x.dim(0) * x.dim(1);
        const index_t H = x.dim(2), W = x.dim(3);
        m_levels = s.levels_for(H, W);
        m_w = s.weights_for(m_levels);
        m_c1 = static_cast<T>((s.k1 * s.data_range) * (s.k1 * s.data_range));
        m_c2 = static_cast<T>((s.k2 * s.data_range) * (s.k2 * s.data_range));
        build_window(s);
        m_x0 = &x;
        m_y0 = &y;
        m_geo.resize(static_cast<std::size_t>(m_levels));
        m_xs.resize(static_cast<std::size_t>(m_levels));
        m_ys.resize(static_cast<std::size_t>(m_levels));
        m_moments.resize(static_cast<std::size_t>(m_levels));
        m_cs.assign(static_cast<std::size_t>(m_levels * m_planes), 0.0);
        m_ss.assign(static_cast<std::size_t>(m_levels * m_planes), 0.0);
        index_t h = H, w = W;
        for (index_t l = 0; l < m_levels; ++l) {
            const auto L = static_cast<std::size_t>(l);
            if (l > 0) {
                const index_t ph = h % 2, pw = w % 2, oh = (h + 2 * ph - 2) / 2 + 1, ow = (w + 2 * pw - 2) / 2 + 1;
                m_xs[L].resize(shape{m_planes, oh, ow});
                m_ys[L].resize(shape{m_planes, oh, ow});
                parallel_for(B{}, m_planes * oh * ow,
                             detail::ssim_pool_fn<T>{h, w, oh, ow, ph, pw, level_x(l - 1), m_xs[L].data()});
                parallel_for(B{}, m_planes * oh * ow,
                             detail::ssim_pool_fn<T>{h, w, oh, ow, ph, pw, level_y(l - 1), m_ys[L].data()});
                h = oh;
                w = ow;
            }
            const detail::ssim_plane d{h, w, h - m_win + 1, w - m_win + 1, m_win};
            m_geo[L] = d;
            m_prod.resize(shape{m_planes * h * w});
            m_tmp.resize(shape{m_planes * h * d.ow});
            m_moments[L].resize(shape{m_planes * 5 * d.oh * d.ow});
            run_scale_forward(d, l);
        }
        double total = 0;
        m_value.assign(static_cast<std::size_t>(m_planes), 0.0);
        for (index_t p = 0; p < m_planes; ++p) {
            double v = 1;
            for (index_t l = 0; l < m_levels; ++l) v *= std::pow(std::max(0.0, factor(l, p)), m_w[static_cast<std::size_t>(l)]);
            m_value[static_cast<std::size_t>(p)] = v;
            total += v;
        }
        return total / static_cast<double>(m_planes);
    }

    /// Writes dx = coeff * d(mean MS-SSIM)/dx as grad_target says (after forward).
    void backward(double coeff, autograd::grad_target<T> dx) {
        const auto P = static_cast<std::size_t>(m_planes);
        m_a.assign(P, 0.0);
        m_b.assign(P, 0.0);
        for (index_t l = m_levels - 1; l >= 0; --l) {
            const auto L = static_cast<std::size_t>(l);
            const detail::ssim_plane& d = m_geo[L];
            // The scale's own term: d value / d factor_l, through relu.
            for (index_t p = 0; p < m_planes; ++p) {
                const double f = factor(l, p), v = m_value[static_cast<std::size_t>(p)];
                const double g = f > 0 ? coeff / static_cast<double>(m_planes) * v * m_w[L] / f : 0.0;
                m_a[static_cast<std::size_t>(p)] = l < m_levels - 1 ? g : 0.0;
                m_b[static_cast<std::size_t>(p)] = l < m_levels - 1 ? 0.0 : g;
            }
            m_gm.resize(shape{m_planes * 3 * d.oh * d.ow});
            m_tmp.resize(shape{m_planes * d.h * d.ow});
            m_back.resize(shape{m_planes * d.h * d.w});
            tensor<T, B>& out = level_grad(l, d);
            parallel_for(B{}, m_planes,
                         detail::ssim_scale_backward_fn<T>{d, m_window.data(), level_x(l), level_y(l),
                                                           m_moments[L].data(), m_a.data(), m_b.data(), m_gm.data(),
                                                           m_tmp.data(), m_back.data(), out.data(), m_c1, m_c2});
            if (l + 1 < m_levels) {
                const detail::ssim_plane& c = m_geo[L + 1];
                parallel_for(B{}, m_planes * d.h * d.w,
                             detail::ssim_unpool_add_fn<T>{d.h, d.w, c.h, c.w, d.h % 2, d.w % 2,
                                                           m_dlevel[L + 1].data(), out.data()});
            }
        }
        parallel_for(B{}, m_x0->numel(), detail::scaled_write_fn<T>{dx, m_dlevel[0].data(), T(1)});
    }

    [[nodiscard]] index_t levels() const noexcept { return m_levels; }
    /// Mean cs (l < L-1) or ssim (l = L-1) of scale l, plane p, before relu (after forward).
    [[nodiscard]] double factor(index_t l, index_t p) const {
        const auto k = static_cast<std::size_t>(l * m_planes + p);
        return l < m_levels - 1 ? m_cs[k] : m_ss[k];
    }
    /// The mean SSIM map of scale l, plane p (after forward; the SSIM of scale 0 is plain SSIM).
    [[nodiscard]] double ssim_at(index_t l, index_t p) const { return m_ss[static_cast<std::size_t>(l * m_planes + p)]; }

private:
    void build_window(const ms_ssim& s) {
        m_win = s.window;
        std::vector<T> g(static_cast<std::size_t>(m_win));
        double sum = 0;
        std::vector<double> gd(g.size());
        for (index_t k = 0; k < m_win; ++k) {
            const double c = static_cast<double>(k - m_win / 2);
            gd[static_cast<std::size_t>(k)] = std::exp(-(c * c) / (2 * s.sigma * s.sigma));
            sum += gd[static_cast<std::size_t>(k)];
        }
        for (std::size_t k = 0; k < g.size(); ++k) g[k] = static_cast<T>(gd[k] / sum);
        m_window.assign(shape{m_win}, g.begin(), g.end());
    }
    void run_scale_forward(const detail::ssim_plane& d, index_t l) {
        const auto L = static_cast<std::size_t>(l);
        m_cs_tmp.resize(shape{m_planes});
        m_ss_tmp.resize(shape{m_planes});
        parallel_for(B{}, m_planes,
                     detail::ssim_scale_forward_fn<T>{d, m_window.data(), level_x(l), level_y(l), m_prod.data(),
                                                      m_tmp.data(), m_moments[L].data(), m_cs_tmp.data(),
                                                      m_ss_tmp.data(), m_c1, m_c2});
        const std::vector<double> cs = m_cs_tmp.to_vector(), ss = m_ss_tmp.to_vector();
        for (index_t p = 0; p < m_planes; ++p) {
            m_cs[static_cast<std::size_t>(l * m_planes + p)] = cs[static_cast<std::size_t>(p)];
            m_ss[static_cast<std::size_t>(l * m_planes + p)] = ss[static_cast<std::size_t>(p)];
        }
    }
    const T* level_x(index_t l) const { return l == 0 ? m_x0->data() : m_xs[static_cast<std::size_t>(l)].data(); }
    const T* level_y(index_t l) const { return l == 0 ? m_y0->data() : m_ys[static_cast<std::size_t>(l)].data(); }
    tensor<T, B>& level_grad(index_t l, const detail::ssim_plane& d) {
        if (m_dlevel.size() < static_cast<std::size_t>(m_levels)) m_dlevel.resize(static_cast<std::size_t>(m_levels));
        tensor<T, B>& t = m_dlevel[static_cast<std::size_t>(l)];
        t.resize(shape{m_planes * d.h * d.w});
        return t;
    }

    index_t m_planes = 0, m_levels = 0, m_win = 0;
    std::array<double, 5> m_w{};
    T m_c1 = 0, m_c2 = 0;
    const tensor<T, B>* m_x0 = nullptr;
    const tensor<T, B>* m_y0 = nullptr;
    tensor<T, B> m_window, m_prod, m_tmp, m_gm, m_back;
    tensor<double, B> m_cs_tmp, m_ss_tmp;
    std::vector<detail::ssim_plane> m_geo;
    std::vector<tensor<T, B>> m_xs, m_ys, m_moments, m_dlevel;
    std::vector<double> m_cs, m_ss, m_value, m_a, m_b;
};

template <class T, Backend B>
double ms_ssim::index(const tensor<T, B>& x, const tensor<T, B>& y) const {
    workspace<T, B> ws;
    return ws.forward(*this, x, y);
}
template <class T, Backend B>
double ms_ssim::value(const tensor<T, B>& x, const tensor<T, B>& y) const {
    return 1.0 - index(x, y);
}
template <class T, Backend B>
double ms_ssim::value_and_grad(const tensor<T, B>& x, const tensor<T, B>& y, tensor<T, B>& dx, const grad_options& o,
                               workspace<T, B>& ws) const {
    const auto g = detail::prepare_grad(name, x, dx, o);
    const double v = ws.forward(*this, x, y);
    ws.backward(-o.weight, g);
    return 1.0 - v;  // the value unweighted, as every loss's value_and_grad (the weight scales dx)
}
template <class T, Backend B>
double ms_ssim::value_and_grad(const tensor<T, B>& x, const tensor<T, B>& y, tensor<T, B>& dx,
                               const grad_options& o) const {
    workspace<T, B> ws;
    return value_and_grad(x, y, dx, o, ws);
}

namespace detail {
struct ms_ssim_op : autograd::function<ms_ssim_op> {
    static constexpr std::string_view name = "tessel::loss::ms_ssim";
    template <class B, class T>
    static void forward(autograd::function_context<B, T>& ctx, tensor<T, B>& out, const tensor<T, B>& x,
                        const tensor<T, B>& y, const ms_ssim& s) {
        tensor<T, B>& g = ctx.workspace(0);
        const double v = s.value_and_grad(x, y, g);
        out.resize(shape{});
        parallel_for(B{}, 1, autograd::detail::fill_fn<T>{out.data(), static_cast<T>(v)});
    }
    template <class B, class T>
    static void backward(autograd::function_context<B, T>& ctx, const tensor<T, B>& dy, autograd::input_grads<B, T>& dx) {
        if (!dx.needed(0)) return;
        const tensor<T, B>& g = ctx.workspace(0);
        parallel_for(B{}, g.numel(), chain_saved_grad_fn<T>{dx.target(0), g.data(), dy.data()});
    }
};
}  // namespace detail

template <Backend B, class T>
autograd::var<B, T> ms_ssim::operator()(const autograd::var<B, T>& x, const tensor<T, B>& y) const {
    return detail::ms_ssim_op::apply(x, x.owner().constant(y), *this);
}

static_assert(Loss<ms_ssim, cpu_serial, float> && Loss<ms_ssim, cpu_omp, double>);

}  // namespace tessel::loss
