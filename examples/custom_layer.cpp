// custom_layer: writing a block of your own and checking its gradient, as tessel's own blocks are.
//
// A block is a backend-free spec (here `swish`, y = x * sigmoid(beta * x)) with an aggregate
// config and a bound form bind<B, T>. The loop bodies are TESSEL_HD functors run through
// tessel::parallel_for, so the same code serves cpu_serial, cpu_omp and (from a .cu file) cuda.
// check_gradients compares its backward with finite differences in double precision.
#include <cmath>
#include <cstdio>

#include <tessel/autograd/check_gradients.hpp>
#include <tessel/backend/parallel.hpp>
#include <tessel/nn/concepts.hpp>
#include <tessel/nn/relu.hpp>
#include <tessel/nn/sequential.hpp>

namespace ts = tessel;

struct swish {
    struct config {
        double beta = 1.0;
    };
    template <ts::Backend B, class T = float>
    class bind {
    public:
        bind(const config& cfg, ts::rng&) : m_beta(static_cast<T>(cfg.beta)) {}
        const ts::tensor<T, B>& forward(ts::nn::context<B>&, const ts::tensor<T, B>& x) {
            m_x = &x;
            m_y.resize(x.shape());
            ts::parallel_for(B{}, x.numel(), fwd{x.data(), m_y.data(), m_beta});
            return m_y;
        }
        const ts::tensor<T, B>& backward(ts::nn::context<B>&, const ts::tensor<T, B>& dy) {
            m_dx.resize(dy.shape());
            ts::parallel_for(B{}, dy.numel(), bwd{m_x->data(), dy.data(), m_dx.data(), m_beta});
            return m_dx;
        }
        ts::nn::parameter_list<T, B> parameters() { return {}; }

    private:
        struct fwd {
            const T* x;
            T* y;
            T beta;
            TESSEL_HD void operator()(ts::index_t i) const { y[i] = x[i] / (T(1) + std::exp(-beta * x[i])); }
        };
        struct bwd {
            const T* x;
            const T* dy;
            T* dx;
            T beta;
            TESSEL_HD void operator()(ts::index_t i) const {
                const T s = T(1) / (T(1) + std::exp(-beta * x[i]));
                dx[i] = dy[i] * (s + beta * x[i] * s * (T(1) - s));
            }
        };
        const ts::tensor<T, B>* m_x = nullptr;
        ts::tensor<T, B> m_y, m_dx;
        T m_beta;
    };
};

static_assert(ts::nn::LayerSpec<swish> && ts::nn::Layer<swish::bind<ts::cpu_omp>, ts::cpu_omp>);

int main() {
    const auto alone = ts::autograd::check_gradients<swish>({.beta = 1.5}, ts::shape{2, 3, 5, 5});
    std::printf("swish gradient check: input error %.2e over %lld coordinates: %s\n", alone.input_error,
                static_cast<long long>(alone.coords_checked), alone.passed ? "passed" : "FAILED");

    using net = ts::nn::sequential<swish, ts::nn::relu, swish>;
    const auto chained = ts::autograd::check_gradients<net>({{.beta = 0.5}, {}, {.beta = 2.0}}, ts::shape{1, 4, 6, 6});
    std::printf("swish-relu-swish chain: input error %.2e: %s\n", chained.input_error,
                chained.passed ? "passed" : "FAILED");
    return alone.passed && chained.passed ? 0 : 1;
}
