// tessel/nn/repeat.hpp: N copies of a block, N chosen at run time (dlib's repeat).
//
// Kim 2020's network repeats conv-relu-bn M-1 times; M is a user option, so it cannot be a
// template argument without recompiling. repeat<Block> stores a std::vector of bound blocks, each
// built from the same config with its own weights drawn in order from the init stream. With
// count = 0 it is the identity.
#pragma once
#include <vector>

#include "tessel/nn/concepts.hpp"
#include "tessel/nn/detail/chain.hpp"

namespace tessel::nn {

template <LayerSpec Block>
struct repeat {
    struct config {
        index_t count = 1;
        typename Block::config block{};
    };

    template <Backend B, class T = float>
    class bind {
        static constexpr bool releases = ReleasesOutput<typename Block::template bind<B, T>, B, T>;

    public:
        bind(const config& cfg, rng& init) {
            expects(cfg.count >= 0, "tessel::nn::repeat", "count must be >= 0, got ", cfg.count);
            m_blocks.reserve(static_cast<std::size_t>(cfg.count));
            for (index_t i = 0; i < cfg.count; ++i) m_blocks.emplace_back(cfg.block, init);
        }
        const tensor<T, B>& forward(context<B>& ctx, const tensor<T, B>& x) {
            const tensor<T, B>* cur = &x;
            for (std::size_t i = 0; i < m_blocks.size(); ++i) {
                const tensor<T, B>* y = &m_blocks[i].forward(ctx, *cur);
                if constexpr (releases)
                    if (i > 0 && y != cur) m_blocks[i - 1].release_output(ctx);  // as sequential does
                cur = y;
            }
            return *cur;
        }
        /// The last block's output (see nn::ReleasesOutput), when the blocks can recompute theirs.
        void release_output(context<B>& ctx)
            requires releases
        {
            if (!m_blocks.empty()) m_blocks.back().release_output(ctx);
        }
        void restore_output(context<B>& ctx)
            requires releases
        {
            if (!m_blocks.empty()) m_blocks.back().restore_output(ctx);
        }
        const tensor<T, B>& backward(context<B>& ctx, const tensor<T, B>& dy) {
            if (m_blocks.empty()) return dy;
            backward_into(ctx, dy, m_dx);
            return m_dx;
        }
        /// Input gradient into dx; intermediate gradients are borrowed from ctx.scratch.
        void backward_into(context<B>& ctx, const tensor<T, B>& dy, tensor<T, B>& dx) {
            detail::chain_backward<T, B> chain(ctx, dy, dx);
            for (std::size_t i = m_blocks.size(); i-- > 0;) {
                if constexpr (releases)
                    if (i > 0) m_blocks[i - 1].restore_output(ctx);
                chain.step(m_blocks[i], static_cast<index_t>(i));
                if constexpr (releases)
                    if (i > 0) m_blocks[i - 1].release_output(ctx);
            }
            chain.finish(true);
        }
        parameter_list<T, B> parameters() {
            parameter_list<T, B> all;
            for (auto& b : m_blocks) append_parameters(all, b.parameters());
            return all;
        }
        buffer_list<T, B> buffers() {
            buffer_list<T, B> all;
            for (auto& b : m_blocks) append_buffers(all, buffers_of<T, B>(b));
            return all;
        }
        [[nodiscard]] std::size_t size() const noexcept { return m_blocks.size(); }
        typename Block::template bind<B, T>& operator[](std::size_t i) { return m_blocks[i]; }

    private:
        std::vector<typename Block::template bind<B, T>> m_blocks;
        tensor<T, B> m_dx;
    };
};

}  // namespace tessel::nn
