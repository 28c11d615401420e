// tessel/solver/maxflow_bk.hpp: Boykov-Kolmogorov max-flow / min-cut, for graph-cut moves.
//
// Implemented from Y. Boykov and V. Kolmogorov, "An Experimental Comparison of Min-Cut/Max-Flow
// Algorithms for Energy Minimization in Vision", IEEE TPAMI 26(9), 2004. Two search trees, S from
// the source and T from the sink, grow over non-saturated arcs until they touch (growth); the
// path found is saturated (augmentation); nodes cut off from their tree look for a new parent in
// the same tree or become free (adoption). The trees are kept between augmentations instead of
// being rebuilt, which is what makes the method fast on the short-path graphs of vision.
// Sequential CPU code: alpha_expansion and alpha_beta_swap build one of these per move.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "tessel/core/error.hpp"
#include "tessel/core/shape.hpp"

namespace tessel {

/// Which side of the minimum cut a node lies on.
enum class cut_side : std::uint8_t { source, sink };

/// Boykov-Kolmogorov max-flow on a graph with terminal links (t-links) and pairs of opposite arcs
/// between nodes (n-links). Build with add_nodes / add_tlink / add_nlink, then call solve() once;
/// reset() starts a new problem and keeps the allocated memory, so one object can serve every
/// move of a graph-cut solver.
/// Cap: a signed arithmetic type (int, long, float, double). With floating point capacities each
/// augmentation still saturates its bottleneck exactly (x - x == 0), so the algorithm terminates.
template <class Cap = double>
class bk_maxflow {
    static_assert(std::is_arithmetic_v<Cap> && std::is_signed_v<Cap>,
                  "tessel::bk_maxflow: the capacity type must be a signed arithmetic type");

public:
    using capacity_type = Cap;

    bk_maxflow() = default;
    explicit bk_maxflow(index_t num_nodes, index_t expected_nlinks = 0) { reset(num_nodes, expected_nlinks); }

    /// Starts a new problem with num_nodes nodes and no links; keeps the memory of earlier ones.
    void reset(index_t num_nodes, index_t expected_nlinks = 0) {
        expects(num_nodes >= 0 && num_nodes < max_index, "tessel::bk_maxflow::reset", "node count ", num_nodes,
                " must be in [0, ", max_index, ")");
        m_tr.assign(static_cast<std::size_t>(num_nodes), Cap(0));
        m_offsets.assign(static_cast<std::size_t>(num_nodes) + 1, 0);  // degree counts until solve()
        m_input.clear();
        if (expected_nlinks > 0) m_input.reserve(static_cast<std::size_t>(expected_nlinks));
        m_flow = 0;
        m_solved = false;
    }
    /// Adds `count` nodes; returns the id of the first.
    index_t add_nodes(index_t count = 1) {
        expects_open("tessel::bk_maxflow::add_nodes");
        expects(count >= 0 && num_nodes() + count < max_index, "tessel::bk_maxflow::add_nodes", "cannot add ", count,
                " nodes to ", num_nodes());
        const index_t first = num_nodes();
        m_tr.resize(static_cast<std::size_t>(first + count), Cap(0));
        m_offsets.resize(static_cast<std::size_t>(first + count) + 1, 0);
        return first;
    }
    [[nodiscard]] index_t num_nodes() const noexcept { return static_cast<index_t>(m_tr.size()); }
    [[nodiscard]] index_t num_nlinks() const noexcept { return static_cast<index_t>(m_input.size()); }

    /// Adds capacity source -> v and v -> sink (accumulating over calls). Both must be >= 0.
    void add_tlink(index_t v, Cap source_cap, Cap sink_cap) {
        constexpr auto where = "tessel::bk_maxflow::add_tlink";
        expects_open(where);
        expects(v >= 0 && v < num_nodes(), where, "node ", v, " is outside [0, ", num_nodes(), ")");
        expects(valid(source_cap) && valid(sink_cap), where, "capacities of node ", v, " must be finite and >= 0, got ",
                source_cap, " (source) and ", sink_cap, " (sink)");
        // Flow min(source, sink) goes straight through s -> v -> t; only the net residual is kept
        // (> 0 towards the source, < 0 towards the sink), merged with what earlier calls left.
        Cap& tr = m_tr[static_cast<std::size_t>(v)];
        const Cap to_source = (tr > 0 ? tr : Cap(0)) + source_cap;
        const Cap to_sink = (tr < 0 ? static_cast<Cap>(-tr) : Cap(0)) + sink_cap;
        m_flow += std::min(to_source, to_sink);
        tr = to_source - to_sink;
    }
    /// Adds the arc u -> v with capacity cap and v -> u with rev_cap. Both must be >= 0; u == v is
    /// ignored (a self-loop is never cut).
    void add_nlink(index_t u, index_t v, Cap cap, Cap rev_cap) {
        const index_t n = num_nodes();
        // One combined test on the hot path; the cold path says what exactly is wrong.
        if (!(u >= 0 && u < n && v >= 0 && v < n && valid(cap) && valid(rev_cap)) || m_solved) [[unlikely]]
            nlink_error(u, v, cap, rev_cap);
        if (u == v || (cap == 0 && rev_cap == 0)) return;
        m_input.push_back({static_cast<std::int32_t>(u), static_cast<std::int32_t>(v), cap, rev_cap});
        ++m_offsets[static_cast<std::size_t>(u) + 1];
        ++m_offsets[static_cast<std::size_t>(v) + 1];
    }

    /// Computes the maximum flow (= the minimum cut capacity) and the cut. Later calls return the
    /// same value without recomputing.
    Cap solve() {
        if (m_solved) return m_flow;
        build();
        run();
        m_solved = true;
        return m_flow;
    }
    /// The flow value (after solve()).
    [[nodiscard]] Cap flow() const noexcept { return m_flow; }
    /// The side of v in the minimum cut found by solve(): source side = the nodes still reachable
    /// from the source through non-saturated arcs; every other node is on the sink side.
    [[nodiscard]] cut_side side(index_t v) const {
        expects(m_solved, "tessel::bk_maxflow::side", "call solve() first");
        expects(v >= 0 && v < num_nodes(), "tessel::bk_maxflow::side", "node ", v, " is outside [0, ", num_nodes(), ")");
        return m_nodes[static_cast<std::size_t>(v)].tree == source_tree ? cut_side::source : cut_side::sink;
    }
    [[nodiscard]] bool on_source_side(index_t v) const { return side(v) == cut_side::source; }

private:
    static constexpr index_t max_index = std::numeric_limits<std::int32_t>::max() / 2;
    // Parent values that are not arcs.
    static constexpr std::int32_t none = -1, terminal = -2, orphan = -3;
    static constexpr std::uint8_t free_node = 0, source_tree = 1, sink_tree = 2;

    struct input_link {
        std::int32_t u, v;
        Cap cap, rev_cap;
    };
    struct arc {
        std::int32_t head;
        std::int32_t sister;  // the opposite arc, head -> tail
        Cap cap;              // residual capacity
    };
    struct node {
        std::int32_t parent;  // arc from this node towards its parent, or none / terminal / orphan
        std::int32_t next;    // next active node; == itself for the last; none when not queued
        std::int32_t stamp;   // time at which dist was last known to be a valid distance to the root
        std::int32_t dist;    // distance to the terminal along parent arcs (root = 1)
        Cap tr;               // residual terminal capacity: > 0 towards the source, < 0 to the sink
        std::uint8_t tree;
    };

    // Finite and >= 0 (false for NaN and infinity).
    static bool valid(Cap c) noexcept { return c >= 0 && c <= std::numeric_limits<Cap>::max(); }

    [[noreturn]] void nlink_error(index_t u, index_t v, Cap cap, Cap rev_cap) const {
        constexpr auto where = "tessel::bk_maxflow::add_nlink";
        expects_open(where);
        expects(u >= 0 && u < num_nodes() && v >= 0 && v < num_nodes(), where, "link (", u, ", ", v,
                ") has an end outside [0, ", num_nodes(), ")");
        fail(where, "capacities of link (", u, ", ", v, ") must be finite and >= 0, got ", cap, " and ", rev_cap);
    }
    void expects_open(const char* where) const {
        expects(!m_solved, where, "the problem is already solved; call reset() to build a new one");
    }

    // Arcs are laid out in CSR order (all arcs leaving a node are contiguous), which keeps the
    // growth and adoption scans sequential in memory.
    void build() {
        const auto n = static_cast<std::size_t>(num_nodes());
        expects(m_input.size() < static_cast<std::size_t>(max_index / 2), "tessel::bk_maxflow::solve", "too many links (",
                m_input.size(), ")");
        for (std::size_t v = 0; v < n; ++v) m_offsets[v + 1] += m_offsets[v];  // degrees -> offsets
        m_arcs.resize(2 * m_input.size());
        m_fill.assign(m_offsets.begin(), m_offsets.end() - 1);
        for (const auto& l : m_input) {
            const std::int32_t a = m_fill[static_cast<std::size_t>(l.u)]++;
            const std::int32_t b = m_fill[static_cast<std::size_t>(l.v)]++;
            m_arcs[static_cast<std::size_t>(a)] = {l.v, b, l.cap};
            m_arcs[static_cast<std::size_t>(b)] = {l.u, a, l.rev_cap};
        }
        m_nodes.resize(n);
        m_first_active = m_last_active = none;
        m_time = 0;
        for (std::size_t v = 0; v < n; ++v) {
            node& x = m_nodes[v];
            x.tr = m_tr[v];
            x.next = none;
            x.stamp = 0;
            if (x.tr != 0) {
                x.tree = x.tr > 0 ? source_tree : sink_tree;
                x.parent = terminal;
                x.dist = 1;
                push_active(static_cast<std::int32_t>(v));
            } else {
                x.tree = free_node;
                x.parent = none;
                x.dist = 0;
            }
        }
        m_orphans.clear();
    }

    void push_active(std::int32_t v) {
        node& x = m_nodes[static_cast<std::size_t>(v)];
        if (x.next != none) return;
        x.next = v;
        if (m_last_active != none)
            m_nodes[static_cast<std::size_t>(m_last_active)].next = v;
        else
            m_first_active = v;
        m_last_active = v;
    }
    // Pops the first active node that still belongs to a tree (free nodes are dropped lazily).
    std::int32_t pop_active() {
        while (m_first_active != none) {
            const std::int32_t v = m_first_active;
            node& x = m_nodes[static_cast<std::size_t>(v)];
            if (x.next == v)
                m_first_active = m_last_active = none;
            else
                m_first_active = x.next;
            x.next = none;
            if (x.tree != free_node) return v;
        }
        return none;
    }

    void make_orphan(std::int32_t v) {
        m_nodes[static_cast<std::size_t>(v)].parent = orphan;
        m_orphans.push_back(v);
    }

    void run() {
        std::int32_t current = none;
        for (;;) {
            std::int32_t p = current;
            if (p == none || m_nodes[static_cast<std::size_t>(p)].tree == free_node) {
                p = pop_active();
                if (p == none) break;
            }
            current = none;
            const std::int32_t middle = grow(p);
            if (middle == none) continue;
            // p may have more arcs into the other tree: keep growing from it next time.
            current = p;
            ++m_time;
            augment(middle);
            adopt();
        }
    }

    // Growth: expands the tree of p over its non-saturated arcs. Returns an arc from the S tree to
    // the T tree when the trees touch, else none.
    std::int32_t grow(std::int32_t p) {
        const node& np = m_nodes[static_cast<std::size_t>(p)];
        const std::int32_t end = m_offsets[static_cast<std::size_t>(p) + 1];
        if (np.tree == source_tree) {
            for (std::int32_t a = m_offsets[static_cast<std::size_t>(p)]; a < end; ++a) {
                const arc& ar = m_arcs[static_cast<std::size_t>(a)];
                if (!(ar.cap > 0)) continue;
                node& q = m_nodes[static_cast<std::size_t>(ar.head)];
                if (q.tree == free_node) {
                    q.tree = source_tree;
                    q.parent = ar.sister;
                    q.stamp = np.stamp;
                    q.dist = np.dist + 1;
                    push_active(ar.head);
                } else if (q.tree == sink_tree) {
                    return a;
                }
            }
        } else {
            for (std::int32_t a = m_offsets[static_cast<std::size_t>(p)]; a < end; ++a) {
                const arc& ar = m_arcs[static_cast<std::size_t>(a)];
                if (!(m_arcs[static_cast<std::size_t>(ar.sister)].cap > 0)) continue;
                node& q = m_nodes[static_cast<std::size_t>(ar.head)];
                if (q.tree == free_node) {
                    q.tree = sink_tree;
                    q.parent = ar.sister;
                    q.stamp = np.stamp;
                    q.dist = np.dist + 1;
                    push_active(ar.head);
                } else if (q.tree == source_tree) {
                    return ar.sister;
                }
            }
        }
        return none;
    }

    // Augmentation: pushes the bottleneck capacity along source -> ... -> u -> v -> ... -> sink,
    // where `middle` is the arc u -> v. Nodes whose parent link saturates become orphans.
    void augment(std::int32_t middle) {
        const arc& mid = m_arcs[static_cast<std::size_t>(middle)];
        const std::int32_t u = m_arcs[static_cast<std::size_t>(mid.sister)].head, v = mid.head;
        Cap f = mid.cap;
        for (std::int32_t x = u;;) {
            const node& nx = m_nodes[static_cast<std::size_t>(x)];
            if (nx.parent == terminal) {
                f = std::min(f, nx.tr);
                break;
            }
            const arc& pa = m_arcs[static_cast<std::size_t>(nx.parent)];
            f = std::min(f, m_arcs[static_cast<std::size_t>(pa.sister)].cap);
            x = pa.head;
        }
        for (std::int32_t x = v;;) {
            const node& nx = m_nodes[static_cast<std::size_t>(x)];
            if (nx.parent == terminal) {
                f = std::min(f, static_cast<Cap>(-nx.tr));
                break;
            }
            const arc& pa = m_arcs[static_cast<std::size_t>(nx.parent)];
            f = std::min(f, pa.cap);
            x = pa.head;
        }

        m_arcs[static_cast<std::size_t>(middle)].cap -= f;
        m_arcs[static_cast<std::size_t>(mid.sister)].cap += f;
        for (std::int32_t x = u;;) {
            node& nx = m_nodes[static_cast<std::size_t>(x)];
            if (nx.parent == terminal) {
                nx.tr -= f;
                if (nx.tr == 0) make_orphan(x);
                break;
            }
            arc& pa = m_arcs[static_cast<std::size_t>(nx.parent)];
            arc& down = m_arcs[static_cast<std::size_t>(pa.sister)];  // parent -> x, carries the flow
            down.cap -= f;
            pa.cap += f;
            const std::int32_t next = pa.head;
            if (down.cap == 0) make_orphan(x);
            x = next;
        }
        for (std::int32_t x = v;;) {
            node& nx = m_nodes[static_cast<std::size_t>(x)];
            if (nx.parent == terminal) {
                nx.tr += f;
                if (nx.tr == 0) make_orphan(x);
                break;
            }
            arc& pa = m_arcs[static_cast<std::size_t>(nx.parent)];  // x -> parent, carries the flow
            pa.cap -= f;
            m_arcs[static_cast<std::size_t>(pa.sister)].cap += f;
            const std::int32_t next = pa.head;
            if (pa.cap == 0) make_orphan(x);
            x = next;
        }
        m_flow += f;
    }

    // Adoption: every orphan either finds a new parent in its tree whose chain of parents still
    // reaches the terminal, or becomes free, turning its children into orphans and its tree
    // neighbours with capacity towards it into active nodes. Stamps (m_time) cache, within one
    // adoption phase, which nodes were verified to reach the terminal and at what distance; among
    // valid parents the one closest to the terminal is taken, which keeps the trees shallow.
    void adopt() {
        for (std::size_t head = 0; head < m_orphans.size(); ++head) process_orphan(m_orphans[head]);
        m_orphans.clear();
    }

    void process_orphan(std::int32_t x) {
        node& nx = m_nodes[static_cast<std::size_t>(x)];
        const std::uint8_t tree = nx.tree;
        const std::int32_t begin = m_offsets[static_cast<std::size_t>(x)];
        const std::int32_t end = m_offsets[static_cast<std::size_t>(x) + 1];
        std::int32_t best = none;
        std::int32_t best_dist = std::numeric_limits<std::int32_t>::max();
        for (std::int32_t a = begin; a < end; ++a) {
            const arc& ar = m_arcs[static_cast<std::size_t>(a)];
            node& q = m_nodes[static_cast<std::size_t>(ar.head)];
            if (q.tree != tree) continue;
            const Cap towards_x = tree == source_tree ? m_arcs[static_cast<std::size_t>(ar.sister)].cap : ar.cap;
            if (!(towards_x > 0)) continue;
            // Walk up from q until a node verified in this phase, the terminal, or an orphan.
            std::int32_t steps = 0;
            std::int32_t j = ar.head;
            std::int32_t d = -1;
            for (;;) {
                node& nj = m_nodes[static_cast<std::size_t>(j)];
                if (nj.stamp == m_time) {
                    d = steps + nj.dist;
                    break;
                }
                if (nj.parent == terminal) {
                    nj.stamp = m_time;
                    nj.dist = 1;
                    d = steps + 1;
                    break;
                }
                if (nj.parent < 0) break;  // an orphan: q's chain no longer reaches the terminal
                ++steps;
                j = m_arcs[static_cast<std::size_t>(nj.parent)].head;
            }
            if (d < 0) continue;
            if (d < best_dist) {
                best_dist = d;
                best = a;
            }
            for (std::int32_t k = ar.head; m_nodes[static_cast<std::size_t>(k)].stamp != m_time;) {
                node& nk = m_nodes[static_cast<std::size_t>(k)];
                nk.stamp = m_time;
                nk.dist = d--;
                k = m_arcs[static_cast<std::size_t>(nk.parent)].head;
            }
        }
        if (best != none) {
            nx.parent = best;
            nx.stamp = m_time;
            nx.dist = best_dist + 1;
            return;
        }
        for (std::int32_t a = begin; a < end; ++a) {
            const arc& ar = m_arcs[static_cast<std::size_t>(a)];
            node& q = m_nodes[static_cast<std::size_t>(ar.head)];
            if (q.tree != tree) continue;
            const Cap towards_x = tree == source_tree ? m_arcs[static_cast<std::size_t>(ar.sister)].cap : ar.cap;
            if (towards_x > 0) push_active(ar.head);
            if (q.parent >= 0 && m_arcs[static_cast<std::size_t>(q.parent)].head == x) make_orphan(ar.head);
        }
        nx.tree = free_node;
        nx.parent = none;
    }

    std::vector<Cap> m_tr;
    std::vector<input_link> m_input;
    std::vector<std::int32_t> m_offsets, m_fill, m_orphans;
    std::vector<arc> m_arcs;
    std::vector<node> m_nodes;
    std::int32_t m_first_active = none, m_last_active = none;
    std::int32_t m_time = 0;
    Cap m_flow = 0;
    bool m_solved = false;
};

}  // namespace tessel
