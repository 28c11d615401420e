// tessel/methods/picnet_network.hpp: the PiCNet network (Hoang & Kang, EAAI 2024): four feature
// embedding modules fused across two scales, the cluster head R and two reconstruction heads.
//
// The summary (papers/000_ea1617b28a568a4f.txt) gives the wiring; METHODS.md §8.2 the numbers
// (all PROPOSALs):
//   F1 = FEM(3 -> C) on x                      (full resolution)
//   F2 = FEM(3 -> C) on avgpool2(x)            (half resolution)
//   F3 = FEM(2C -> C) on [avgpool2(F1), F2]    (half resolution)
//   F4 = FEM(2C -> C) on [up2(F3), F1]         (full resolution; bilinear, to F1's exact size)
//   R  = BN(conv1x1(F4, C -> q))               the response whose argmax is the segmentation
//   G1 = sigmoid(conv3x3(F4, C -> 3))          reconstructs x
//   G2 = sigmoid(conv3x3(F3, C -> 3))          reconstructs avgpool2(x)
// with C = 64 and q = 100. forward() returns R, so the network is an nn::Layer a self-training
// loop drives like the DFC network; the extra outputs (F4, G1, G2, avgpool2(x)) are read through
// accessors, and a loss that trains the reconstruction heads (picnet_loss) sets their gradients
// with reconstruction_grad() before backward(); unset ones count as zero. Odd sizes: pooling
// floors (F2 and F3 are floor(H/2) x floor(W/2)), the upsampling goes to H x W exactly.
#pragma once
#include <array>
#include <optional>

#include "tessel/nn/activation.hpp"
#include "tessel/nn/batch_norm.hpp"
#include "tessel/nn/conv2d.hpp"
#include "tessel/nn/detail/channel_ops.hpp"
#include "tessel/nn/feature_embedding.hpp"
#include "tessel/nn/pool.hpp"
#include "tessel/nn/sequential.hpp"
#include "tessel/nn/upsample.hpp"

namespace tessel::methods {

struct picnet_network {
    static constexpr const char* name = "tessel::methods::picnet_network";
    struct config {
        index_t channels = 64;   ///< C, the width of every FEM
        index_t classes = 100;   ///< q, the response channels (upper bound on the segment count)
        nn::fused_relu_tanh::config activation{};  ///< every FEM's fused activation
        index_t eca_kernel = 0;  ///< 0: ECA's adaptive rule (3 for C = 64)
        nn::init::scheme init = nn::init::scheme::pytorch_default;
    };

    using head_type = nn::sequential<nn::conv2d, nn::batch_norm>;
    using reconstruction_type = nn::sequential<nn::conv2d, nn::sigmoid>;

    template <Backend B, class T = float>
    class bind {
    public:
        bind(const config& cfg, rng& init)
            : m_cfg(validated(cfg)),
              m_f1(fem(3, cfg.channels, cfg), init),
              m_f2(fem(3, cfg.channels, cfg), init),
              m_f3(fem(2 * cfg.channels, cfg.channels, cfg), init),
              m_f4(fem(2 * cfg.channels, cfg.channels, cfg), init),
              m_head(head_type::config{nn::conv2d::config{.in_channels = cfg.channels, .out_channels = cfg.classes,
                                                          .kernel = 1, .padding = 0, .init = cfg.init},
                                       nn::batch_norm::config{.channels = cfg.classes}},
                     init),
              m_g1(reconstruction(cfg), init),
              m_g2(reconstruction(cfg), init) {}

        const tensor<T, B>& forward(nn::context<B>& ctx, const tensor<T, B>& x) {
            nn::detail::expect_nchw(name, x);
            expects(x.dim(1) == 3, name, "expects an RGB input [N, 3, H, W], got shape ", x.shape().str());
            expects(x.dim(2) >= 2 && x.dim(3) >= 2, name, "the input (", x.shape().str(),
                    ") must be at least 2 x 2 for the half-resolution branch");
            m_rec_grad_set = {false, false};
            const tensor<T, B>& y1 = m_f1.forward(ctx, x);
            m_xh = &m_pool_x.forward(ctx, x);
            const tensor<T, B>& y2 = m_f2.forward(ctx, *m_xh);
            const tensor<T, B>& y1d = m_pool_f.forward(ctx, y1);
            concat(y1d, y2, m_c3);
            m_y3 = &m_f3.forward(ctx, m_c3);
            const tensor<T, B>& u = upsampler(x.dim(2), x.dim(3)).forward(ctx, *m_y3);
            concat(u, y1, m_c4);
            m_up->discard_output(ctx);  // read only by the concatenation (40 MB at 481 x 321)
            m_y4 = &m_f4.forward(ctx, m_c4);
            m_rec1 = &m_g1.forward(ctx, *m_y4);
            m_rec2 = &m_g2.forward(ctx, *m_y3);
            return m_head.forward(ctx, *m_y4);
        }

        const tensor<T, B>& backward(nn::context<B>& ctx, const tensor<T, B>& dr) {
            expects(m_y4 != nullptr, name, "backward called before forward");
            const index_t C = m_cfg.channels;
            // F4's output feeds R and G1. The concatenations' gradients are borrowed from
            // ctx.scratch (the 2C-channel full-resolution one is 79 MB at 481 x 321).
            m_head.backward_into(ctx, dr, m_d4);
            add_reconstruction_grad(m_d4, 0, m_g1, ctx);
            {
                nn::scratch_lease<T, B> dc4(ctx, 2 * m_d4.numel());
                m_f4.backward_into(ctx, m_d4, dc4.get());
                split(dc4.get(), m_du, m_dy1, C);
            }
            // F3's output feeds the upsampling (into F4) and G2.
            nn::detail::copy_into(m_up->backward(ctx, m_du), m_d3);
            add_reconstruction_grad(m_d3, 1, m_g2, ctx);
            {
                nn::scratch_lease<T, B> dc3(ctx, 2 * m_d3.numel());
                m_f3.backward_into(ctx, m_d3, dc3.get());
                split(dc3.get(), m_dy1d, m_dy2, C);
            }
            const tensor<T, B>& dy1_pool = m_pool_f.backward(ctx, m_dy1d);
            parallel_for(B{}, m_dy1.numel(), nn::detail::elementwise_sum_fn<T>{m_dy1.data(), dy1_pool.data(), m_dy1.data()});
            const tensor<T, B>& dxh = m_f2.backward(ctx, m_dy2);
            const tensor<T, B>& dx1 = m_f1.backward(ctx, m_dy1);
            if (m_input_grad) {
                const tensor<T, B>& dx2 = m_pool_x.backward(ctx, dxh);
                m_dx.resize(dx1.shape());
                parallel_for(B{}, m_dx.numel(), nn::detail::elementwise_sum_fn<T>{dx1.data(), dx2.data(), m_dx.data()});
            }
            return m_dx;
        }

        nn::parameter_list<T, B> parameters() {
            nn::parameter_list<T, B> all = m_f1.parameters();
            nn::append_parameters(all, m_f2.parameters());
            nn::append_parameters(all, m_f3.parameters());
            nn::append_parameters(all, m_f4.parameters());
            nn::append_parameters(all, m_head.parameters());
            nn::append_parameters(all, m_g1.parameters());
            nn::append_parameters(all, m_g2.parameters());
            return all;
        }
        nn::buffer_list<T, B> buffers() {
            nn::buffer_list<T, B> all = m_f1.buffers();
            nn::append_buffers(all, m_f2.buffers());
            nn::append_buffers(all, m_f3.buffers());
            nn::append_buffers(all, m_f4.buffers());
            nn::append_buffers(all, m_head.buffers());
            return all;
        }
        void set_input_grad_needed(bool needed) {
            m_input_grad = needed;
            m_f1.set_input_grad_needed(needed);
            m_f2.set_input_grad_needed(needed);
        }

        /// F4's output [N, C, H, W] of the last forward (the features of the statistics module).
        [[nodiscard]] const tensor<T, B>& features() const { return *checked(m_y4); }
        /// F3's output [N, C, H/2, W/2] of the last forward.
        [[nodiscard]] const tensor<T, B>& half_features() const { return *checked(m_y3); }
        /// G1 (k = 0, full resolution) or G2 (k = 1, half resolution) of the last forward.
        [[nodiscard]] const tensor<T, B>& reconstruction(index_t k) const { return *checked(k == 0 ? m_rec1 : m_rec2); }
        /// The target of G2: the 2x2-average-pooled input of the last forward.
        [[nodiscard]] const tensor<T, B>& half_input() const { return *checked(m_xh); }
        /// The gradient of the loss with respect to reconstruction k, for the next backward; the
        /// caller fills it with the reconstruction's shape (it counts as zero until requested
        /// after each forward).
        tensor<T, B>& reconstruction_grad(index_t k) {
            expects(k == 0 || k == 1, name, "reconstruction index must be 0 or 1, got ", k);
            m_rec_grad_set[static_cast<std::size_t>(k)] = true;
            return m_rec_grad[static_cast<std::size_t>(k)];
        }
        [[nodiscard]] const config& settings() const noexcept { return m_cfg; }
        nn::feature_embedding::bind<B, T>& module(index_t k) {
            expects(k >= 1 && k <= 4, name, "modules are F1..F4, got F", k);
            return k == 1 ? m_f1 : k == 2 ? m_f2 : k == 3 ? m_f3 : m_f4;
        }

    private:
        static const config& validated(const config& c) {
            expects(c.channels >= 1 && c.classes >= 2, name, "needs channels >= 1 and classes >= 2, got ", c.channels,
                    " and ", c.classes);
            return c;
        }
        static nn::feature_embedding::config fem(index_t in, index_t out, const config& c) {
            return {.in_channels = in, .out_channels = out, .activation = c.activation, .eca_kernel = c.eca_kernel,
                    .init = c.init};
        }
        static reconstruction_type::config reconstruction(const config& c) {
            return {nn::conv2d::config{.in_channels = c.channels, .out_channels = 3, .kernel = 3, .padding = 1,
                                       .init = c.init},
                    {}};
        }
        template <class P>
        static const P* checked(const P* p) {
            expects(p != nullptr, name, "no forward pass yet");
            return p;
        }
        nn::upsample::bind<B, T>& upsampler(index_t h, index_t w) {
            if (!m_up || m_up_h != h || m_up_w != w) {
                rng unused(0);
                m_up.emplace(nn::upsample::config{.mode = nn::upsample_mode::bilinear, .output_h = h, .output_w = w},
                             unused);
                m_up_h = h;
                m_up_w = w;
            }
            return *m_up;
        }
        /// out = [a, b] along channels.
        static void concat(const tensor<T, B>& a, const tensor<T, B>& b, tensor<T, B>& out) {
            const index_t N = a.dim(0), ca = a.dim(1), cb = b.dim(1), plane = a.dim(2) * a.dim(3);
            out.resize(shape{N, ca + cb, a.dim(2), a.dim(3)});
            parallel_for(B{}, N * ca, nn::detail::channel_slice_fn<T>{a.data(), out.data(), ca, ca + cb, 0, plane, false});
            parallel_for(B{}, N * cb, nn::detail::channel_slice_fn<T>{b.data(), out.data(), cb, ca + cb, ca, plane, false});
        }
        /// The reverse of concat: the first c channels to a, the rest to b.
        static void split(const tensor<T, B>& g, tensor<T, B>& a, tensor<T, B>& b, index_t c) {
            const index_t N = g.dim(0), cg = g.dim(1), plane = g.dim(2) * g.dim(3);
            a.resize(shape{N, c, g.dim(2), g.dim(3)});
            b.resize(shape{N, cg - c, g.dim(2), g.dim(3)});
            parallel_for(B{}, N * c, nn::detail::channel_slice_fn<T>{g.data(), a.data(), c, cg, 0, plane, true});
            parallel_for(B{}, N * (cg - c), nn::detail::channel_slice_fn<T>{g.data(), b.data(), cg - c, cg, c, plane, true});
        }
        /// out += reconstruction head k's backward of its gradient, when one was set.
        template <class Head>
        void add_reconstruction_grad(tensor<T, B>& out, index_t k, Head& head, nn::context<B>& ctx) {
            const auto K = static_cast<std::size_t>(k);
            if (!m_rec_grad_set[K]) return;
            const tensor<T, B>& target = k == 0 ? *m_rec1 : *m_rec2;
            expects(m_rec_grad[K].shape() == target.shape(), name, "the gradient of reconstruction ", k, " has shape ",
                    m_rec_grad[K].shape().str(), ", the reconstruction ", target.shape().str());
            nn::scratch_lease<T, B> dh(ctx, out.numel());
            head.backward_into(ctx, m_rec_grad[K], dh.get());
            parallel_for(B{}, out.numel(), nn::detail::elementwise_sum_fn<T>{out.data(), dh.get().data(), out.data()});
        }

        config m_cfg;
        nn::feature_embedding::bind<B, T> m_f1, m_f2, m_f3, m_f4;
        typename head_type::template bind<B, T> m_head;
        typename reconstruction_type::template bind<B, T> m_g1, m_g2;
        nn::avg_pool2d::bind<B, T> m_pool_x, m_pool_f;
        std::optional<nn::upsample::bind<B, T>> m_up;
        index_t m_up_h = 0, m_up_w = 0;
        const tensor<T, B>* m_xh = nullptr;
        const tensor<T, B>* m_y3 = nullptr;
        const tensor<T, B>* m_y4 = nullptr;
        const tensor<T, B>* m_rec1 = nullptr;
        const tensor<T, B>* m_rec2 = nullptr;
        tensor<T, B> m_c3, m_c4, m_d4, m_d3, m_du, m_dy1, m_dy1d, m_dy2, m_dx;
        std::array<tensor<T, B>, 2> m_rec_grad;
        std::array<bool, 2> m_rec_grad_set{false, false};
        bool m_input_grad = true;
    };
};

static_assert(nn::LayerSpec<picnet_network>);
static_assert(nn::Layer<picnet_network::bind<cpu_serial>, cpu_serial>);

}  // namespace tessel::methods
