// tessel/nn/linear.hpp: fully connected layer (PyTorch's Linear) on [N, F] tensors.
//
// y = x W^T + b with W of shape [out_features, in_features]; the three products (forward, dW =
// dy^T x, dx = dy W) are ops::gemm calls, the bias add and its gradient TESSEL_HD functors.
#pragma once
#include "tessel/nn/concepts.hpp"
#include "tessel/nn/init.hpp"
#include "tessel/ops/gemm.hpp"

namespace tessel::nn {

namespace detail {
template <class T>
struct row_bias_fn {  // y[n, :] = b
    const T* b;
    T* y;
    index_t features;
    TESSEL_HD void operator()(index_t i) const { y[i] = b[i % features]; }
};
template <class T>
struct column_sum_fn {  // db[f] = sum_n dy[n, f]
    const T* dy;
    T* db;
    index_t rows, features;
    TESSEL_HD void operator()(index_t f) const {
        T s = T(0);
        for (index_t n = 0; n < rows; ++n) s += dy[n * features + f];
        db[f] = s;
    }
};
}  // namespace detail

struct linear {
    struct config {
        index_t in_features = 0;
        index_t out_features = 0;
        bool bias = true;
        init::scheme init = init::scheme::pytorch_default;
    };

    template <Backend B, class T = float>
    class bind {
    public:
        bind(const config& cfg, rng& init) : m_cfg(cfg) {
            constexpr const char* where = "tessel::nn::linear";
            expects(cfg.in_features > 0, where, "in_features must be positive, got ", cfg.in_features);
            expects(cfg.out_features > 0, where, "out_features must be positive, got ", cfg.out_features);
            init::weight_and_bias(m_w, m_dw, m_b, m_db, shape{cfg.out_features, cfg.in_features},
                                  cfg.out_features, cfg.bias, cfg.in_features, cfg.out_features, cfg.init, init);
        }

        const tensor<T, B>& forward(context<B>&, const tensor<T, B>& x) {
            constexpr const char* where = "tessel::nn::linear::forward";
            expects(x.rank() == 2, where, "expects an [N, F] tensor, got shape ", x.shape().str());
            expects(x.numel() > 0, where, "empty input of shape ", x.shape().str());
            expects(x.dim(1) == m_cfg.in_features, where, "input has ", x.dim(1), " features, the layer expects ",
                    m_cfg.in_features, " (input shape ", x.shape().str(), ")");
            const index_t N = x.dim(0), I = m_cfg.in_features, O = m_cfg.out_features;
            m_y.resize(shape{N, O});
            if (m_cfg.bias) parallel_for(B{}, N * O, detail::row_bias_fn<T>{m_b.data(), m_y.data(), O});
            ops::gemm(B{}, ops::gemm_args<T>{.trans_b = ops::op::trans, .m = N, .n = O, .k = I, .a = x.data(),
                                             .lda = I, .b = m_w.data(), .ldb = I, .beta = m_cfg.bias ? T(1) : T(0),
                                             .c = m_y.data(), .ldc = O});
            m_x = &x;
            return m_y;
        }

        const tensor<T, B>& backward(context<B>&, const tensor<T, B>& dy) {
            constexpr const char* where = "tessel::nn::linear::backward";
            expects(m_x != nullptr, where, "backward called before forward");
            expect_same_shape(where, dy, m_y);
            const index_t N = dy.dim(0), I = m_cfg.in_features, O = m_cfg.out_features;
            ops::gemm(B{}, ops::gemm_args<T>{.trans_a = ops::op::trans, .m = O, .n = I, .k = N, .a = dy.data(),
                                             .lda = O, .b = m_x->data(), .ldb = I, .c = m_dw.data(), .ldc = I});
            if (m_cfg.bias) parallel_for(B{}, O, detail::column_sum_fn<T>{dy.data(), m_db.data(), N, O});
            if (m_input_grad) {
                m_dx.resize(m_x->shape());
                ops::gemm(B{}, ops::gemm_args<T>{.m = N, .n = I, .k = O, .a = dy.data(), .lda = O, .b = m_w.data(),
                                                 .ldb = I, .c = m_dx.data(), .ldc = I});
            }
            return m_dx;
        }

        parameter_list<T, B> parameters() {
            parameter_list<T, B> p{{&m_w, &m_dw, "weight"}};
            if (m_cfg.bias) p.push_back({&m_b, &m_db, "bias"});
            return p;
        }
        void set_input_grad_needed(bool needed) noexcept { m_input_grad = needed; }
        tensor<T, B>& weight() noexcept { return m_w; }
        tensor<T, B>& bias() noexcept { return m_b; }

    private:
        config m_cfg;
        tensor<T, B> m_w, m_dw, m_b, m_db, m_y, m_dx;
        const tensor<T, B>* m_x = nullptr;
        bool m_input_grad = true;
    };
};

static_assert(LayerSpec<linear>);
static_assert(Layer<linear::bind<cpu_serial>, cpu_serial>);

}  // namespace tessel::nn
