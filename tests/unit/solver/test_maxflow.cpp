// Boykov-Kolmogorov max-flow against brute-force minimum cuts and an independent Edmonds-Karp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <queue>
#include <vector>

#include "tessel/core/random.hpp"
#include "tessel/solver/maxflow_bk.hpp"

namespace ts = tessel;

namespace {

template <class Cap>
struct flow_problem {
    int n = 0;
    std::vector<Cap> source, sink;  // t-link capacities
    struct link {
        int u, v;
        Cap cap, rev;
    };
    std::vector<link> links;
};

// Random problem; about a third of all capacities are zero, and links are asymmetric.
template <class Cap>
flow_problem<Cap> random_problem(ts::rng& g, int n, double density) {
    auto cap = [&]() -> Cap {
        if (g.uniform01() < 0.33) return Cap(0);
        if constexpr (std::is_integral_v<Cap>)
            return static_cast<Cap>(g.below(20));
        else
            return static_cast<Cap>(g.uniform(0.0, 10.0));
    };
    flow_problem<Cap> p;
    p.n = n;
    for (int v = 0; v < n; ++v) {
        p.source.push_back(cap());
        p.sink.push_back(cap());
    }
    for (int u = 0; u < n; ++u)
        for (int v = u + 1; v < n; ++v)
            if (g.uniform01() < density) {
                if (g.below(2))
                    p.links.push_back({u, v, cap(), cap()});
                else
                    p.links.push_back({v, u, cap(), cap()});
            }
    // A few parallel links and a self-loop, which must be handled (summed, ignored).
    if (n >= 2 && g.below(2)) p.links.push_back({0, 1, cap(), cap()});
    if (g.below(2)) p.links.push_back({n - 1, n - 1, cap(), cap()});
    return p;
}

// Cut capacity when node v is on the source side iff bit v of mask is set.
template <class Cap>
double cut_value(const flow_problem<Cap>& p, std::uint32_t mask) {
    double c = 0;
    auto in_s = [&](int v) { return ((mask >> v) & 1u) != 0; };
    for (int v = 0; v < p.n; ++v) c += in_s(v) ? static_cast<double>(p.sink[v]) : static_cast<double>(p.source[v]);
    for (const auto& l : p.links) {
        if (l.u == l.v) continue;
        if (in_s(l.u) && !in_s(l.v)) c += static_cast<double>(l.cap);
        if (in_s(l.v) && !in_s(l.u)) c += static_cast<double>(l.rev);
    }
    return c;
}

template <class Cap>
double brute_force_min_cut(const flow_problem<Cap>& p) {
    double best = std::numeric_limits<double>::infinity();
    for (std::uint32_t mask = 0; mask < (1u << p.n); ++mask) best = std::min(best, cut_value(p, mask));
    return best;
}

// split_tlinks: each node's t-links arrive in two calls (source first, then sink, then the rest),
// which exercises the accumulation of t-link capacities.
template <class Cap>
Cap solve_bk(ts::bk_maxflow<Cap>& mf, const flow_problem<Cap>& p, bool split_tlinks = false) {
    mf.reset(p.n);
    for (int v = 0; v < p.n; ++v) {
        if (split_tlinks) {
            const Cap hs = p.source[v] / 2, ht = p.sink[v] / 3;
            mf.add_tlink(v, hs, Cap(0));
            mf.add_tlink(v, Cap(0), ht);
            mf.add_tlink(v, p.source[v] - hs, p.sink[v] - ht);
        } else {
            mf.add_tlink(v, p.source[v], p.sink[v]);
        }
    }
    for (const auto& l : p.links) mf.add_nlink(l.u, l.v, l.cap, l.rev);
    return mf.solve();
}

template <class Cap>
std::uint32_t cut_mask(const ts::bk_maxflow<Cap>& mf, int n) {
    std::uint32_t mask = 0;
    for (int v = 0; v < n; ++v)
        if (mf.side(v) == ts::cut_side::source) mask |= 1u << v;
    return mask;
}

// Edmonds-Karp on a dense capacity matrix with s = n, t = n + 1: an independent reference.
double edmonds_karp(const flow_problem<double>& p) {
    const int N = p.n + 2, s = p.n, t = p.n + 1;
    std::vector<double> c(static_cast<std::size_t>(N * N), 0.0);
    auto at = [&](int a, int b) -> double& { return c[static_cast<std::size_t>(a * N + b)]; };
    for (int v = 0; v < p.n; ++v) {
        at(s, v) += p.source[v];
        at(v, t) += p.sink[v];
    }
    for (const auto& l : p.links)
        if (l.u != l.v) {
            at(l.u, l.v) += l.cap;
            at(l.v, l.u) += l.rev;
        }
    double flow = 0;
    for (;;) {
        std::vector<int> prev(static_cast<std::size_t>(N), -1);
        prev[s] = s;
        std::queue<int> q;
        q.push(s);
        while (!q.empty() && prev[t] < 0) {
            const int a = q.front();
            q.pop();
            for (int b = 0; b < N; ++b)
                if (prev[b] < 0 && at(a, b) > 1e-12) {
                    prev[b] = a;
                    q.push(b);
                }
        }
        if (prev[t] < 0) break;
        double f = std::numeric_limits<double>::infinity();
        for (int b = t; b != s; b = prev[b]) f = std::min(f, at(prev[b], b));
        for (int b = t; b != s; b = prev[b]) {
            at(prev[b], b) -= f;
            at(b, prev[b]) += f;
        }
        flow += f;
    }
    return flow;
}

}  // namespace

TEST_CASE("bk_maxflow: integer flow equals the brute-force minimum cut on 600 random graphs") {
    ts::rng g(11);
    ts::bk_maxflow<int> mf;  // one object for all problems: reset() must fully reinitialise
    for (int trial = 0; trial < 600; ++trial) {
        const int n = 1 + static_cast<int>(g.below(10));
        const double density = g.uniform(0.1, 1.0);
        const auto p = random_problem<int>(g, n, density);
        const int flow = solve_bk(mf, p, trial % 2 == 1);
        const double best = brute_force_min_cut(p);
        REQUIRE(static_cast<double>(flow) == best);
        // The returned partition is a minimum cut: its capacity equals the flow.
        REQUIRE(cut_value(p, cut_mask(mf, n)) == best);
    }
}

TEST_CASE("bk_maxflow: floating-point flow equals the brute-force minimum cut on 400 random graphs") {
    ts::rng g(12);
    ts::bk_maxflow<double> mf;
    for (int trial = 0; trial < 400; ++trial) {
        const int n = 1 + static_cast<int>(g.below(10));
        const auto p = random_problem<double>(g, n, g.uniform(0.1, 1.0));
        const double flow = solve_bk(mf, p);
        const double best = brute_force_min_cut(p);
        REQUIRE(flow == doctest::Approx(best).epsilon(1e-9));
        REQUIRE(cut_value(p, cut_mask(mf, n)) == doctest::Approx(best).epsilon(1e-9));
    }
}

TEST_CASE("bk_maxflow: all-zero, source-only and disconnected problems") {
    ts::bk_maxflow<int> mf(4);
    CHECK(mf.solve() == 0);
    for (int v = 0; v < 4; ++v) CHECK(mf.side(v) == ts::cut_side::sink);  // nothing reachable from s

    mf.reset(3);
    mf.add_tlink(0, 5, 0);
    mf.add_nlink(0, 1, 3, 0);
    mf.add_tlink(2, 0, 7);
    CHECK(mf.solve() == 0);  // no path from s to t
    CHECK(mf.side(0) == ts::cut_side::source);
    CHECK(mf.side(1) == ts::cut_side::source);
    CHECK(mf.side(2) == ts::cut_side::sink);

    // A hand-computed chain: s -4-> 0 -2-> 1 -9-> t, plus 0 -> t of 1: flow 3.
    mf.reset(2);
    mf.add_tlink(0, 4, 1);
    mf.add_nlink(0, 1, 2, 0);
    mf.add_tlink(1, 0, 9);
    CHECK(mf.solve() == 3);
    CHECK(mf.side(0) == ts::cut_side::source);
    CHECK(mf.side(1) == ts::cut_side::sink);
    // t-links accumulate, and both capacities of a node may be positive.
    mf.reset(1);
    mf.add_tlink(0, 2, 3);
    mf.add_tlink(0, 4, 1);
    CHECK(mf.solve() == 4);  // min(6, 4)
}

TEST_CASE("bk_maxflow: agrees with Edmonds-Karp on larger random sparse graphs") {
    ts::rng g(13);
    ts::bk_maxflow<double> mf;
    for (int trial = 0; trial < 40; ++trial) {
        const int n = 20 + static_cast<int>(g.below(60));
        const auto p = random_problem<double>(g, n, 4.0 / n);
        const double flow = solve_bk(mf, p);
        REQUIRE(flow == doctest::Approx(edmonds_karp(p)).epsilon(1e-9));
    }
}

TEST_CASE("bk_maxflow: a grid-shaped problem gives the same flow twice and a consistent cut") {
    // Grid with integer capacities; the flow must equal the capacity of the cut it reports.
    const int W = 30, H = 20;
    ts::rng g(14);
    flow_problem<int> p;
    p.n = W * H;
    for (int v = 0; v < p.n; ++v) {
        const int x = v % W;
        p.source.push_back(x < W / 2 ? static_cast<int>(g.below(10)) : 0);
        p.sink.push_back(x >= W / 2 ? static_cast<int>(g.below(10)) : 0);
    }
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
            const int v = y * W + x;
            if (x + 1 < W) p.links.push_back({v, v + 1, static_cast<int>(g.below(6)), static_cast<int>(g.below(6))});
            if (y + 1 < H) p.links.push_back({v, v + W, static_cast<int>(g.below(6)), static_cast<int>(g.below(6))});
        }
    ts::bk_maxflow<int> a, b;
    const int fa = solve_bk(a, p), fb = solve_bk(b, p);
    CHECK(fa == fb);
    CHECK(fa > 0);
    // Cut capacity of the reported partition.
    double c = 0;
    for (int v = 0; v < p.n; ++v) c += a.on_source_side(v) ? p.sink[v] : p.source[v];
    for (const auto& l : p.links) {
        if (a.on_source_side(l.u) && !a.on_source_side(l.v)) c += l.cap;
        if (a.on_source_side(l.v) && !a.on_source_side(l.u)) c += l.rev;
    }
    CHECK(c == fa);
    for (int v = 0; v < p.n; ++v) CHECK(a.side(v) == b.side(v));
}

TEST_CASE("bk_maxflow: bad input throws tessel::error") {
    ts::bk_maxflow<double> mf(3);
    CHECK_THROWS_AS(mf.add_tlink(0, -1.0, 0.0), ts::error);
    CHECK_THROWS_AS(mf.add_tlink(0, 0.0, -2.0), ts::error);
    CHECK_THROWS_AS(mf.add_tlink(3, 1.0, 0.0), ts::error);
    CHECK_THROWS_AS(mf.add_tlink(-1, 1.0, 0.0), ts::error);
    CHECK_THROWS_AS(mf.add_tlink(0, std::nan(""), 0.0), ts::error);
    CHECK_THROWS_AS(mf.add_nlink(0, 1, -1.0, 0.0), ts::error);
    CHECK_THROWS_AS(mf.add_nlink(0, 1, 1.0, -0.5), ts::error);
    CHECK_THROWS_AS(mf.add_nlink(0, 5, 1.0, 1.0), ts::error);
    CHECK_THROWS_AS(mf.add_nlink(0, 1, std::numeric_limits<double>::infinity(), 1.0), ts::error);
    CHECK_THROWS_AS((void)mf.side(0), ts::error);  // not solved yet
    CHECK_THROWS_AS(ts::bk_maxflow<double>(-1), ts::error);
    mf.solve();
    CHECK_THROWS_AS(mf.add_tlink(0, 1.0, 0.0), ts::error);  // already solved
    CHECK_THROWS_AS((void)mf.side(7), ts::error);
    try {
        mf.reset(2);
        mf.add_nlink(0, 1, -3.0, 1.0);
    } catch (const ts::error& e) {
        CHECK(e.where() == "tessel::bk_maxflow::add_nlink");
        CHECK(std::string(e.what()).find("-3") != std::string::npos);
    }
}
