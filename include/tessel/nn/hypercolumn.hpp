// tessel/nn/hypercolumn.hpp: a chain of blocks whose every output, resized back to the input's
// size, is concatenated with the input (hypercolumn features, Hariharan et al. 2015).
//
// Deep Superpixel Cut's deep embedding (METHODS.md §7.1) is the image concatenated with the
// bilinearly upsampled outputs of the three SuperAE encoder modules: 3 + 64 + 128 + 256 = 451
// channels. hypercolumn<S1, ..., Sn> runs a_0 = x, a_k = S_k(a_{k-1}) and returns
//     y = concat_channels(x, up(a_1), ..., up(a_n)),   up = nn::upsample (bilinear by default,
//     align_corners = false, output size = the input's H x W),
// so stages may change resolution freely (strided convs) and the output always has the input's
// size. Backward sends each slice of dy through its upsample, adds it to the gradient flowing
// down the chain, and adds the first slice to dx. Parameters and buffers are the stages', in
// chain order, so a hypercolumn over S1..Sn loads the same saved tensors as
// nn::sequential<S1, ..., Sn> (io/model_file.hpp).
#pragma once
#include <array>
#include <optional>
#include <tuple>
#include <utility>

#include "tessel/backend/parallel.hpp"
#include "tessel/nn/concepts.hpp"
#include "tessel/nn/detail/channel_ops.hpp"
#include "tessel/nn/upsample.hpp"

namespace tessel::nn {

namespace detail {
template <class T>
struct add_into_fn {
    const T* a;
    T* y;
    TESSEL_HD void operator()(index_t i) const { y[i] += a[i]; }
};
}  // namespace detail

template <LayerSpec... Specs>
struct hypercolumn {
    static_assert(sizeof...(Specs) > 0, "tessel::nn::hypercolumn needs at least one stage");
    static constexpr const char* name = "tessel::nn::hypercolumn";
    static constexpr std::size_t stages = sizeof...(Specs);
    struct config {
        std::tuple<typename Specs::config...> parts{};
        upsample_mode mode = upsample_mode::bilinear;
    };

    template <Backend B, class T = float>
    class bind {
    public:
        using layers_type = std::tuple<typename Specs::template bind<B, T>...>;

        bind(const config& cfg, rng& init)
            : m_mode(cfg.mode), m_layers(make(cfg.parts, init, std::index_sequence_for<Specs...>{})) {}

        const tensor<T, B>& forward(context<B>& ctx, const tensor<T, B>& x) {
            expects(x.rank() == 4 && x.numel() > 0, name, "expects a non-empty NCHW tensor, got ", x.shape().str());
            const index_t N = x.dim(0), H = x.dim(2), W = x.dim(3);
            if (!(x.shape() == m_in)) {
                rng unused(0);
                for (auto& u : m_up) u.emplace(upsample::config{.mode = m_mode, .output_h = H, .output_w = W}, unused);
                m_in = x.shape();
            }
            m_x = &x;
            forward_stages<0>(ctx, x);
            index_t C = x.dim(1);
            for (std::size_t k = 0; k < stages; ++k) C += m_out[k]->dim(1);
            m_y.resize(shape{N, C, H, W});
            const index_t plane = H * W;
            index_t c0 = 0;
            auto put = [&](const tensor<T, B>& part) {
                parallel_for(B{}, N * part.dim(1),
                             detail::channel_slice_fn<T>{part.data(), m_y.data(), part.dim(1), C, c0, plane, false});
                c0 += part.dim(1);
            };
            put(x);
            for (std::size_t k = 0; k < stages; ++k) put(m_up[k]->forward(ctx, *m_out[k]));
            return m_y;
        }

        const tensor<T, B>& backward(context<B>& ctx, const tensor<T, B>& dy) {
            expects(m_x != nullptr, name, "backward called before forward");
            expect_same_shape(name, dy, m_y);
            const index_t N = dy.dim(0), C = dy.dim(1), plane = dy.dim(2) * dy.dim(3);
            index_t c0 = m_x->dim(1);
            for (std::size_t k = 0; k < stages; ++k) {
                const index_t ck = m_out[k]->dim(1);
                m_slice[k].resize(shape{N, ck, dy.dim(2), dy.dim(3)});
                parallel_for(B{}, N * ck, detail::channel_slice_fn<T>{dy.data(), m_slice[k].data(), ck, C, c0, plane, true});
                c0 += ck;
            }
            const tensor<T, B>* g = backward_stages<stages - 1>(ctx, nullptr);
            if (m_input_grad) {
                m_dx.resize(m_x->shape());
                parallel_for(B{}, N * m_x->dim(1),
                             detail::channel_slice_fn<T>{dy.data(), m_dx.data(), m_x->dim(1), C, 0, plane, true});
                parallel_for(B{}, m_dx.numel(), detail::add_into_fn<T>{g->data(), m_dx.data()});
            }
            return m_dx;
        }

        parameter_list<T, B> parameters() {
            parameter_list<T, B> all;
            std::apply([&](auto&... l) { (append_parameters(all, l.parameters()), ...); }, m_layers);
            return all;
        }
        buffer_list<T, B> buffers() {
            buffer_list<T, B> all;
            std::apply([&](auto&... l) { (append_buffers(all, buffers_of<T, B>(l)), ...); }, m_layers);
            return all;
        }
        /// The first stage skips its input gradient when the hypercolumn's is not needed.
        void set_input_grad_needed(bool needed) {
            m_input_grad = needed;
            if constexpr (SkipsInputGrad<std::tuple_element_t<0, layers_type>>)
                std::get<0>(m_layers).set_input_grad_needed(needed);
        }
        template <std::size_t I>
        auto& layer() noexcept { return std::get<I>(m_layers); }
        /// The output of stage k of the last forward (before upsampling).
        const tensor<T, B>& stage_output(std::size_t k) const { return *m_out[k]; }

    private:
        template <std::size_t... I>
        static layers_type make(const std::tuple<typename Specs::config...>& cfg, rng& init, std::index_sequence<I...>) {
            return layers_type{typename Specs::template bind<B, T>(std::get<I>(cfg), init)...};
        }
        template <std::size_t I>
        void forward_stages(context<B>& ctx, const tensor<T, B>& a) {
            m_out[I] = &std::get<I>(m_layers).forward(ctx, a);
            if constexpr (I + 1 < stages) forward_stages<I + 1>(ctx, *m_out[I]);
        }
        // g: the gradient reaching stage I's output from stage I + 1 (nullptr for the last stage).
        template <std::size_t I>
        const tensor<T, B>* backward_stages(context<B>& ctx, const tensor<T, B>* g) {
            const tensor<T, B>& from_up = m_up[I]->backward(ctx, m_slice[I]);
            const tensor<T, B>* total = &from_up;
            if (g != nullptr) {
                m_sum[I] = from_up;
                parallel_for(B{}, m_sum[I].numel(), detail::add_into_fn<T>{g->data(), m_sum[I].data()});
                total = &m_sum[I];
            }
            if constexpr (I == 0) {
                if (!m_input_grad) {
                    (void)std::get<0>(m_layers).backward(ctx, *total);
                    return total;  // unused
                }
                return &std::get<0>(m_layers).backward(ctx, *total);
            } else {
                return backward_stages<I - 1>(ctx, &std::get<I>(m_layers).backward(ctx, *total));
            }
        }

        upsample_mode m_mode;
        layers_type m_layers;
        std::array<std::optional<typename upsample::template bind<B, T>>, stages> m_up{};
        std::array<const tensor<T, B>*, stages> m_out{};
        std::array<tensor<T, B>, stages> m_slice{}, m_sum{};
        tensor<T, B> m_y, m_dx;
        shape m_in{};
        const tensor<T, B>* m_x = nullptr;
        bool m_input_grad = true;
    };
};

}  // namespace tessel::nn
