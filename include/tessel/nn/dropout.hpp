// tessel/nn/dropout.hpp: inverted dropout (Srivastava et al. 2014, as torch.nn.Dropout).
//
// Training: each element is zeroed with probability p and the survivors are scaled by 1/(1-p),
// so eval needs no rescaling; eval (ctx.training == false): the identity, drawing nothing.
// The mask is a counter-based hash of (seed, element index), with one 64-bit seed drawn from
// ctx.gen per training forward. Every element's decision is thus independent of the thread that
// computes it: cpu_serial, cpu_omp and cuda produce the same mask for the same ctx.gen state, and
// a seed fixes the whole sequence of masks.
#pragma once
#include <cmath>
#include <cstdint>

#include "tessel/backend/parallel.hpp"
#include "tessel/nn/concepts.hpp"
#include "tessel/nn/detail/chain.hpp"
#include "tessel/nn/detail/checks.hpp"

namespace tessel::nn {

namespace detail {

/// Element i of the splitmix64 stream that starts at `seed`, as a uniform double in [0, 1).
/// splitmix64 is a counter-based generator, so any element can be computed on its own.
TESSEL_HD inline double counter_uniform01(std::uint64_t seed, std::uint64_t i) {
    std::uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;
}

template <class T>
struct dropout_forward_fn {
    std::uint64_t seed;
    double p;
    T scale;
    const T* x;
    T* mask;
    T* y;
    TESSEL_HD void operator()(index_t i) const {
        const T m = counter_uniform01(seed, static_cast<std::uint64_t>(i)) < p ? T(0) : scale;
        mask[i] = m;
        y[i] = x[i] * m;
    }
};
template <class T>
struct multiply_fn {
    const T* a;
    const T* b;
    T* out;
    TESSEL_HD void operator()(index_t i) const { out[i] = a[i] * b[i]; }
};

}  // namespace detail

struct dropout {
    static constexpr const char* name = "tessel::nn::dropout";
    struct config {
        double p = 0.5;  ///< probability of zeroing an element, in [0, 1)
    };

    template <Backend B, class T = float>
    class bind {
    public:
        bind() = default;
        bind(const config& cfg, rng&) : m_cfg(cfg) {
            expects(cfg.p >= 0 && cfg.p < 1, name, "p must lie in [0, 1), got ", cfg.p);
        }

        const tensor<T, B>& forward(context<B>& ctx, const tensor<T, B>& x) {
            detail::expect_nonempty(name, x);
            m_y.resize(x.shape());
            m_masked = ctx.training && m_cfg.p > 0;
            if (m_masked) {
                m_mask.resize(x.shape());
                const std::uint64_t seed = ctx.gen.next();
                parallel_for(B{}, x.numel(),
                             detail::dropout_forward_fn<T>{seed, m_cfg.p, static_cast<T>(1.0 / (1.0 - m_cfg.p)),
                                                           x.data(), m_mask.data(), m_y.data()});
            } else {
                detail::copy_into(x, m_y);
            }
            return m_y;
        }
        const tensor<T, B>& backward(context<B>&, const tensor<T, B>& dy) {
            expects(!m_y.empty(), name, "backward called before forward");
            expect_same_shape(name, dy, m_y);
            m_dx.resize(dy.shape());
            if (m_masked)
                parallel_for(B{}, dy.numel(), detail::multiply_fn<T>{dy.data(), m_mask.data(), m_dx.data()});
            else
                detail::copy_into(dy, m_dx);
            return m_dx;
        }
        parameter_list<T, B> parameters() { return {}; }

        /// The last training forward's mask: 0 for dropped elements, 1/(1-p) for kept ones.
        [[nodiscard]] const tensor<T, B>& mask() const noexcept { return m_mask; }

    private:
        config m_cfg{};
        bool m_masked = false;  // whether the last forward applied a mask (training with p > 0)
        tensor<T, B> m_mask, m_y, m_dx;
    };
};

static_assert(LayerSpec<dropout>);
static_assert(Layer<dropout::bind<cpu_serial>, cpu_serial>);

}  // namespace tessel::nn
