// tessel/loss/superpixel_reconstruction.hpp: the SuperAE reconstruction loss of Deep Superpixel
// Cut (Lin, Zhong & Lu 2020, Eq. 1-2; METHODS.md §7.1-7.2).
//
// For a reconstruction r of an image x (both [N, C, H, W]) and a template over-segmentation t
// ([N, H, W], region ids per image, any non-negative values):
//     L = mean_{n,c,i} (x - r)^2  +  lambda * mean_{n,c,i} (r_i - v_{t(i)})^2,
// the second term pulling every pixel of the reconstruction towards its template region's
// colour. v_j is the mean of the *input* x over region j, a constant (Eq. 2 as printed, the
// default), or with template_mean_of_reconstruction the mean of r itself (the within-region
// variance the text describes). Both reductions are means over pixels and channels, so lambda
// keeps the paper's ratio (§7.2). dL/dr is the same expression in both modes,
//     2/(NCHW) [ (r - x) + lambda (r - v) ],
// because the deviations from a region's own mean sum to zero over the region. Host backends
// only (the per-region sums are sequential scatters); the tape form is not provided.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "tessel/core/tensor.hpp"
#include "tessel/loss/concepts.hpp"

namespace tessel::loss {

struct superpixel_reconstruction {
    static constexpr const char* name = "tessel::loss::superpixel_reconstruction";
    double lambda = 1.0;                          ///< weight of the template term (paper: 1)
    bool template_mean_of_reconstruction = false; ///< v_j from r (with gradient) instead of x

    template <class T, HostBackend B>
    double value(const tensor<T, B>& r, const tensor<T, B>& x, const tensor<label_t, B>& tmpl) const {
        return impl(r, x, tmpl, static_cast<T*>(nullptr), {});
    }
    /// Writes dL/dr into dr as grad_options says.
    template <class T, HostBackend B>
    double value_and_grad(const tensor<T, B>& r, const tensor<T, B>& x, const tensor<label_t, B>& tmpl,
                          tensor<T, B>& dr, const grad_options& o = {}) const {
        const auto g = detail::prepare_grad(name, r, dr, o);
        return impl(r, x, tmpl, g.data, o);
    }

private:
    template <class T, class B>
    double impl(const tensor<T, B>& r, const tensor<T, B>& x, const tensor<label_t, B>& tmpl, T* g,
                const grad_options& o) const {
        expects(std::isfinite(lambda) && lambda >= 0, name, "lambda must be finite and >= 0, got ", lambda);
        expects(r.rank() == 4 && r.numel() > 0, name, "expects a non-empty NCHW reconstruction, got ", r.shape().str());
        expects(r.shape() == x.shape(), name, "reconstruction of shape ", r.shape().str(), " and image of shape ",
                x.shape().str(), " differ");
        const index_t N = r.dim(0), C = r.dim(1), P = r.dim(2) * r.dim(3);
        expects(tmpl.rank() == 3 && tmpl.dim(0) == N && tmpl.dim(1) * tmpl.dim(2) == P && tmpl.dim(1) == r.dim(2), name,
                "template of shape ", tmpl.shape().str(), " does not match the image ", r.shape().str());
        const double inv = 1.0 / static_cast<double>(r.numel());
        double total = 0;
        std::vector<double> sum;
        std::vector<index_t> count;
        for (index_t n = 0; n < N; ++n) {
            const label_t* t = tmpl.data() + n * P;
            label_t regions = 0;
            for (index_t i = 0; i < P; ++i) {
                expects(t[i] >= 0, name, "negative template label ", t[i], " at pixel ", i, " of image ", n);
                regions = std::max<label_t>(regions, t[i] + 1);
            }
            const T* src = template_mean_of_reconstruction ? r.data() : x.data();
            sum.assign(static_cast<std::size_t>(regions * C), 0.0);
            count.assign(static_cast<std::size_t>(regions), 0);
            for (index_t i = 0; i < P; ++i) ++count[static_cast<std::size_t>(t[i])];
            for (index_t c = 0; c < C; ++c) {
                const T* s = src + (n * C + c) * P;
                for (index_t i = 0; i < P; ++i) sum[static_cast<std::size_t>(t[i] * C + c)] += static_cast<double>(s[i]);
            }
            for (label_t j = 0; j < regions; ++j)
                for (index_t c = 0; c < C; ++c)
                    if (count[static_cast<std::size_t>(j)] > 0)
                        sum[static_cast<std::size_t>(j * C + c)] /= static_cast<double>(count[static_cast<std::size_t>(j)]);
            for (index_t c = 0; c < C; ++c) {
                const index_t off = (n * C + c) * P;
                for (index_t i = 0; i < P; ++i) {
                    const double rv = static_cast<double>(r.data()[off + i]);
                    const double d1 = rv - static_cast<double>(x.data()[off + i]);
                    const double d2 = rv - sum[static_cast<std::size_t>(t[i] * C + c)];
                    total += d1 * d1 + lambda * d2 * d2;
                    if (g != nullptr) {
                        const T gi = static_cast<T>(2.0 * o.weight * inv * (d1 + lambda * d2));
                        g[off + i] = o.accumulate ? g[off + i] + gi : gi;
                    }
                }
            }
        }
        return total * inv;
    }
};

}  // namespace tessel::loss
