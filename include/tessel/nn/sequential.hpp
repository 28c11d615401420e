// tessel/nn/sequential.hpp: a chain of blocks whose structure is a type and whose sizes are values.
//
//   using body = nn::sequential<nn::conv2d, nn::relu, nn::batch_norm>;
//   body::bind<cpu_omp> net({{.in_channels = 3, .out_channels = 100, .kernel = 3, .padding = 1},
//                            {}, {.channels = 100}}, init_rng);
// The bound form is a flat std::tuple of bound layers: forward is a left fold, backward walks the
// tuple in reverse, with no virtual calls and no template recursion (so nesting depth and error
// messages stay small whatever the length). A sequential is itself a LayerSpec, so it nests.
// Memory: intermediate input gradients come from the context's scratch pool (detail/chain.hpp),
// and a layer with forward_inplace (ReLU) runs in place on the output of a layer whose backward
// does not read its output (OverwritableOutput), so the pair holds one activation, not two. A
// layer that can recompute its output (ReleasesOutput) drops it between the next layer's forward
// and that layer's backward.
#pragma once
#include <tuple>
#include <utility>

#include "tessel/nn/concepts.hpp"
#include "tessel/nn/detail/chain.hpp"

namespace tessel::nn {

template <LayerSpec... Specs>
struct sequential {
    static_assert(sizeof...(Specs) > 0, "tessel::nn::sequential needs at least one layer");
    using config = std::tuple<typename Specs::config...>;

    template <Backend B, class T = float>
    class bind {
    public:
        using layers_type = std::tuple<typename Specs::template bind<B, T>...>;

        explicit bind(const config& cfg, rng& init) : m_layers(make(cfg, init, std::index_sequence_for<Specs...>{})) {}

        const tensor<T, B>& forward(context<B>& ctx, const tensor<T, B>& x) {
            return forward_from<0>(ctx, x, nullptr);
        }
        /// The last layer writes into y (only when it has forward_into, see nn::ForwardsInto).
        void forward_into(context<B>& ctx, const tensor<T, B>& x, tensor<T, B>& y)
            requires ForwardsInto<std::tuple_element_t<sizeof...(Specs) - 1, layers_type>, B, T>
        {
            forward_from<0>(ctx, x, &y);
        }
        const tensor<T, B>& backward(context<B>& ctx, const tensor<T, B>& dy) {
            if (!m_input_grad) {
                // Nobody reads the result (a network's first layer): the chain's even-numbered
                // gradients go to a borrowed buffer, not to a member held for the whole run.
                scratch_lease<T, B> out(ctx, dy.numel());
                backward_into(ctx, dy, out.get());
                return m_dx;
            }
            backward_into(ctx, dy, m_dx);
            return m_dx;
        }
        /// Input gradient into dx (not aliasing dy); intermediate gradients are borrowed from
        /// ctx.scratch for the duration of the call.
        void backward_into(context<B>& ctx, const tensor<T, B>& dy, tensor<T, B>& dx) {
            detail::chain_backward<T, B> chain(ctx, dy, dx);
            backward_from<sizeof...(Specs) - 1>(chain);
            chain.finish(m_input_grad);
        }
        /// The output may be overwritten in place when the last layer's may.
        static constexpr bool overwritable_output = OverwritableOutput<std::tuple_element_t<sizeof...(Specs) - 1, layers_type>>;
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
        /// The first layer need not compute its input gradient unless this sequential's caller
        /// needs it (nested sequentials forward the request).
        void set_input_grad_needed(bool needed) {
            m_input_grad = needed;
            if constexpr (SkipsInputGrad<std::tuple_element_t<0, layers_type>>)
                std::get<0>(m_layers).set_input_grad_needed(needed);
        }
        template <std::size_t I>
        auto& layer() noexcept { return std::get<I>(m_layers); }
        layers_type& layers() noexcept { return m_layers; }

    private:
        template <std::size_t... I>
        static layers_type make(const config& cfg, rng& init, std::index_sequence<I...>) {
            // Braced initialisation evaluates left to right, so layers draw their weights from
            // `init` in order and a seed fixes the whole network.
            return layers_type{typename Specs::template bind<B, T>(std::get<I>(cfg), init)...};
        }
        template <std::size_t I>
        const tensor<T, B>& forward_from(context<B>& ctx, const tensor<T, B>& x, tensor<T, B>* out) {
            using layer_t = std::tuple_element_t<I, layers_type>;
            const tensor<T, B>* y;
            if constexpr (I + 1 == sizeof...(Specs) && ForwardsInto<layer_t, B, T>) {
                if (out != nullptr) {
                    std::get<I>(m_layers).forward_into(ctx, x, *out);
                    return *out;
                }
            }
            using prev_t = std::tuple_element_t<(I > 0 ? I - 1 : 0), layers_type>;
            if constexpr (I > 0 && InPlace<layer_t, B, T> &&
                          (OverwritableOutput<prev_t> ||
                           (NonnegativeOutput<prev_t> && IdentityOnNonnegative<layer_t>))) {
                // x is the previous layer's own output buffer (a non-const member), which its
                // backward never reads, or which this layer leaves unchanged: safe to overwrite.
                tensor<T, B>& own = const_cast<tensor<T, B>&>(x);
                std::get<I>(m_layers).forward_inplace(ctx, own);
                y = &own;
            } else {
                y = &std::get<I>(m_layers).forward(ctx, x);
                // x is the previous layer's output; this layer has read it (and keeps what its
                // backward needs), so a previous layer that can recompute it may drop it.
                if constexpr (I > 0 && ReleasesOutput<prev_t, B, T>)
                    if (y != &x) std::get<I - 1>(m_layers).release_output(ctx);
            }
            if constexpr (I + 1 < sizeof...(Specs))
                return forward_from<I + 1>(ctx, *y, out);
            else
                return *y;
        }
        template <std::size_t I>
        void backward_from(detail::chain_backward<T, B>& chain) {
            using prev_t = std::tuple_element_t<(I > 0 ? I - 1 : 0), layers_type>;
            // Layer I reads its input (layer I - 1's output) only during its own backward.
            if constexpr (I > 0 && ReleasesOutput<prev_t, B, T>) std::get<I - 1>(m_layers).restore_output(chain.ctx());
            chain.step(std::get<I>(m_layers), static_cast<index_t>(I));
            if constexpr (I > 0 && ReleasesOutput<prev_t, B, T>) std::get<I - 1>(m_layers).release_output(chain.ctx());
            if constexpr (I > 0) backward_from<I - 1>(chain);
        }

        layers_type m_layers;
        tensor<T, B> m_dx;
        bool m_input_grad = true;
    };
};

}  // namespace tessel::nn
