// Graph vocabulary and builders: CSR layout, region adjacency on a hand-made map, grid counts,
// k-NN against brute force, thresholded affinity graphs, input checks.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "support/backend_test.hpp"
#include "tessel/core/random.hpp"
#include "tessel/graph/csr_graph.hpp"
#include "tessel/graph/grid_graph.hpp"
#include "tessel/graph/region_adjacency.hpp"

namespace ts = tessel;

namespace {
std::vector<ts::index_t> row(const ts::csr_graph<double>& g, ts::index_t v) {
    const auto r = g.neighbors(v);
    return {r.begin(), r.end()};
}
template <class W>
bool is_symmetric(const ts::csr_graph<W>& g) {
    for (ts::index_t u = 0; u < g.num_nodes(); ++u) {
        const auto nb = g.neighbors(u);
        const auto wt = g.weights(u);
        for (std::size_t k = 0; k < nb.size(); ++k)
            if (g.weight_or(nb[k], u, W(-1)) != wt[k]) return false;
    }
    return true;
}
}  // namespace

TEST_CASE("csr_graph: rows sorted by head, undirected edges stored both ways, upper_edges once") {
    const std::vector<ts::weighted_edge<double>> edges = {{2, 0, 1.5}, {0, 1, 2.0}, {3, 1, 0.5}, {1, 2, 4.0}};
    const auto g = ts::csr_graph<double>::from_undirected_edges(4, edges);
    static_assert(ts::Graph<decltype(g)>);
    CHECK(g.num_nodes() == 4);
    CHECK(g.num_arcs() == 8);
    CHECK(row(g, 0) == std::vector<ts::index_t>{1, 2});
    CHECK(row(g, 1) == std::vector<ts::index_t>{0, 2, 3});
    CHECK(row(g, 2) == std::vector<ts::index_t>{0, 1});
    CHECK(row(g, 3) == std::vector<ts::index_t>{1});
    CHECK(g.weight_or(1, 3, -1.0) == 0.5);
    CHECK(g.weight_or(3, 1, -1.0) == 0.5);
    CHECK(g.weight_or(0, 3, -1.0) == -1.0);
    CHECK(is_symmetric(g));
    const auto up = g.upper_edges();
    REQUIRE(up.size() == 4);
    for (const auto& e : up) CHECK(e.source < e.target);

    // Directed arcs stay as given; an edge order permutation gives the same graph.
    const auto d = ts::csr_graph<double>::from_arcs(4, edges);
    CHECK(d.num_arcs() == 4);
    CHECK(row(d, 3) == std::vector<ts::index_t>{1});
    CHECK(d.degree(0) == 1);
    std::vector<ts::weighted_edge<double>> reversed(edges.rbegin(), edges.rend());
    const auto g2 = ts::csr_graph<double>::from_undirected_edges(4, reversed);
    CHECK(g2.targets() == g.targets());
    CHECK(g2.all_weights() == g.all_weights());

    // make_symmetric adds the missing reverse arcs of a directed graph.
    const auto s = ts::make_symmetric(d);
    CHECK(s.num_arcs() == 8);
    CHECK(is_symmetric(s));
}

TEST_CASE("csr_graph: bad input throws tessel::error naming the problem") {
    using E = ts::weighted_edge<double>;
    CHECK_THROWS_AS(ts::csr_graph<double>::from_undirected_edges(3, std::vector<E>{{0, 3, 1.0}}), ts::error);
    CHECK_THROWS_AS(ts::csr_graph<double>::from_undirected_edges(3, std::vector<E>{{-1, 0, 1.0}}), ts::error);
    CHECK_THROWS_AS(ts::csr_graph<double>::from_undirected_edges(3, std::vector<E>{{1, 1, 1.0}}), ts::error);
    CHECK_THROWS_AS(ts::csr_graph<double>::from_arcs(3, std::vector<E>{{0, 1, std::nan("")}}), ts::error);
    CHECK_THROWS_AS(ts::csr_graph<double>::from_arcs(-1, std::vector<E>{}), ts::error);
    CHECK_THROWS_AS(ts::csr_graph<double>::from_csr({0, 2, 1}, {1, 0}, {1.0, 1.0}), ts::error);  // decreasing
    CHECK_THROWS_AS(ts::csr_graph<double>::from_csr({0, 1, 2}, {1, 5}, {1.0, 1.0}), ts::error);  // head range
    CHECK_THROWS_AS(ts::csr_graph<double>::from_csr({0, 1, 2}, {1, 0}, {1.0}), ts::error);       // sizes
    try {
        (void)ts::csr_graph<double>::from_arcs(3, std::vector<E>{{0, 7, 1.0}});
    } catch (const ts::error& e) {
        CHECK(std::string(e.what()).find("(0, 7)") != std::string::npos);
    }
}

TEST_CASE("region_adjacency: boundary lengths and sizes on a hand-made label map") {
    // 0 0 1 1
    // 0 2 2 1
    // 3 3 2 1
    const ts::label_map m(4, 3, std::vector<ts::label_t>{0, 0, 1, 1, 0, 2, 2, 1, 3, 3, 2, 1});
    const auto rag = ts::region_adjacency(m);
    CHECK(rag.num_regions() == 4);
    CHECK(rag.sizes == std::vector<ts::index_t>{3, 4, 3, 2});
    const auto& g = rag.graph;
    // Counted by hand over horizontal and vertical pixel pairs.
    CHECK(g.weight_or(0, 1, 0) == 1);
    CHECK(g.weight_or(0, 2, 0) == 2);
    CHECK(g.weight_or(1, 2, 0) == 3);
    CHECK(g.weight_or(2, 3, 0) == 2);
    CHECK(g.weight_or(0, 3, 0) == 1);
    CHECK_FALSE(g.has_arc(1, 3));
    CHECK(g.num_arcs() == 10);
    CHECK(is_symmetric(g));

    // With diagonal neighbours as well.
    const auto rag8 = ts::region_adjacency(m, 8);
    CHECK(rag8.graph.weight_or(0, 1, 0) == 1);
    CHECK(rag8.graph.weight_or(0, 2, 0) == 4);
    CHECK(rag8.graph.weight_or(1, 2, 0) == 7);
    CHECK(rag8.graph.weight_or(2, 3, 0) == 4);
    CHECK(rag8.graph.weight_or(0, 3, 0) == 2);
    CHECK_FALSE(rag8.graph.has_arc(1, 3));

    // A missing label gives an isolated node of size 0.
    const ts::label_map gap(2, 1, std::vector<ts::label_t>{0, 2});
    const auto rg = ts::region_adjacency(gap);
    CHECK(rg.sizes == std::vector<ts::index_t>{1, 0, 1});
    CHECK(rg.graph.degree(1) == 0);
    CHECK(rg.graph.weight_or(0, 2, 0) == 1);

    CHECK_THROWS_AS(ts::region_adjacency(ts::label_map{}), ts::error);
    CHECK_THROWS_AS(ts::region_adjacency(m, 6), ts::error);
    CHECK_THROWS_AS(ts::region_adjacency(ts::label_map(2, 1, std::vector<ts::label_t>{0, -1})), ts::error);
}

TEST_CASE("region_mean_features: per-region channel means") {
    const ts::label_map m(3, 2, std::vector<ts::label_t>{0, 0, 1, 2, 2, 1});
    ts::image<std::uint8_t> img(3, 2, 2);
    // (x, y) -> channel 0 = 10 * x + y, channel 1 = 100 - x
    for (ts::index_t y = 0; y < 2; ++y)
        for (ts::index_t x = 0; x < 3; ++x) {
            img(x, y, 0) = static_cast<std::uint8_t>(10 * x + y);
            img(x, y, 1) = static_cast<std::uint8_t>(100 - x);
        }
    const auto f = ts::region_mean_features(m, img);
    REQUIRE(f.size() == 6);
    CHECK(f[0] == doctest::Approx(5.0));   // pixels (0,0), (1,0): 0, 10
    CHECK(f[1] == doctest::Approx(99.5));  // 100, 99
    CHECK(f[2] == doctest::Approx(20.5));  // (2,0), (2,1): 20, 21
    CHECK(f[3] == doctest::Approx(98.0));
    CHECK(f[4] == doctest::Approx(6.0));   // (0,1), (1,1): 1, 11
    CHECK(f[5] == doctest::Approx(99.5));
    CHECK_THROWS_AS(ts::region_mean_features(m, ts::image<std::uint8_t>(2, 2, 3)), ts::error);
}

TEST_CASE("grid_graph: edge counts, neighbours and weights for 4 and 8 connectivity") {
    const ts::index_t W = 5, H = 4;
    auto w = [](ts::index_t u, ts::index_t v) { return static_cast<double>(u * 1000 + v); };
    const auto g4 = ts::grid_graph(W, H, 4, w);
    CHECK(g4.num_nodes() == W * H);
    CHECK(g4.num_arcs() == 2 * ((W - 1) * H + W * (H - 1)));
    CHECK(row(g4, 0) == std::vector<ts::index_t>{1, 5});
    CHECK(row(g4, 6) == std::vector<ts::index_t>{1, 5, 7, 11});
    CHECK(g4.weight_or(6, 7, 0) == 6007.0);
    CHECK(g4.weight_or(7, 6, 0) == 6007.0);  // w called once with u < v, stored both ways
    const auto g8 = ts::grid_graph(W, H, 8, w);
    CHECK(g8.num_arcs() == 2 * ((W - 1) * H + W * (H - 1) + 2 * (W - 1) * (H - 1)));
    CHECK(row(g8, 6) == std::vector<ts::index_t>{0, 1, 2, 5, 7, 10, 11, 12});
    CHECK(row(g8, 4) == std::vector<ts::index_t>{3, 8, 9});
    CHECK(is_symmetric(g8));
    const auto unit = ts::grid_graph(3, 3);
    CHECK(unit.num_arcs() == 24);
    CHECK(unit.weights(4)[0] == 1.0f);
    CHECK_THROWS_AS(ts::grid_graph(0, 3), ts::error);
    CHECK_THROWS_AS(ts::grid_graph(3, 3, 6), ts::error);
}

TEST_CASE("fully connected and similarity-threshold graphs match a direct filter") {
    ts::rng g(31);
    const ts::index_t n = 40;
    std::vector<double> x;
    for (ts::index_t i = 0; i < n; ++i) x.push_back(g.uniform01());
    auto w = [&](ts::index_t u, ts::index_t v) { return std::exp(-std::abs(x[u] - x[v]) * 5.0); };
    const auto full = ts::fully_connected_graph(n, w);
    CHECK(full.num_arcs() == n * (n - 1));
    CHECK(is_symmetric(full));
    const auto pruned = ts::similarity_threshold_graph(n, w, 0.5);
    ts::index_t expected = 0;
    for (ts::index_t u = 0; u < n; ++u)
        for (ts::index_t v = 0; v < n; ++v)
            if (u != v) {
                const bool keep = w(std::min(u, v), std::max(u, v)) >= 0.5;
                expected += keep;
                CHECK(pruned.has_arc(u, v) == keep);
            }
    CHECK(pruned.num_arcs() == expected);
    CHECK(expected > 0);
    CHECK(expected < n * (n - 1));
    CHECK_THROWS_AS(ts::similarity_threshold_graph(n, w, std::nan("")), ts::error);
}

template <class B>
void knn_matches_brute_force() {
    ts::rng g(32);
    for (int trial = 0; trial < 6; ++trial) {
        const ts::index_t n = 30 + static_cast<ts::index_t>(g.below(50)), dim = 1 + static_cast<ts::index_t>(g.below(4));
        const ts::index_t k = 1 + static_cast<ts::index_t>(g.below(8));
        std::vector<double> f;
        // Small integer coordinates create many exact ties, which must go to the smaller index.
        for (ts::index_t i = 0; i < n * dim; ++i) f.push_back(static_cast<double>(g.below(4)));
        const auto knn = ts::knn_graph(std::span<const double>(f), n, dim, k, B{});
        REQUIRE(knn.num_arcs() == n * k);
        for (ts::index_t i = 0; i < n; ++i) {
            std::vector<std::pair<double, ts::index_t>> all;
            for (ts::index_t j = 0; j < n; ++j) {
                if (j == i) continue;
                double d = 0;
                for (ts::index_t c = 0; c < dim; ++c) d += (f[i * dim + c] - f[j * dim + c]) * (f[i * dim + c] - f[j * dim + c]);
                all.emplace_back(d, j);
            }
            std::sort(all.begin(), all.end());
            std::vector<ts::index_t> want;
            std::map<ts::index_t, double> dist;
            for (ts::index_t r = 0; r < k; ++r) {
                want.push_back(all[static_cast<std::size_t>(r)].second);
                dist[all[static_cast<std::size_t>(r)].second] = std::sqrt(all[static_cast<std::size_t>(r)].first);
            }
            std::sort(want.begin(), want.end());  // rows are sorted by head
            const auto nb = knn.neighbors(i);
            REQUIRE(std::vector<ts::index_t>(nb.begin(), nb.end()) == want);
            for (std::size_t r = 0; r < nb.size(); ++r) CHECK(knn.weights(i)[r] == doctest::Approx(dist[nb[r]]));
        }
        const auto sym = ts::make_symmetric(knn);
        CHECK(is_symmetric(sym));
        CHECK(sym.num_arcs() >= knn.num_arcs());
    }
    const std::vector<double> f = {0, 1, 2};
    CHECK_THROWS_AS(ts::knn_graph(std::span<const double>(f), 3, 1, 3, B{}), ts::error);  // k >= n
    CHECK_THROWS_AS(ts::knn_graph(std::span<const double>(f), 2, 1, 1, B{}), ts::error);  // size mismatch
    const std::vector<double> bad = {0, std::nan(""), 2};
    CHECK_THROWS_AS(ts::knn_graph(std::span<const double>(bad), 3, 1, 1, B{}), ts::error);
}
TESSEL_BACKEND_TEST("knn_graph: equals a brute-force sort, ties to the smaller index", knn_matches_brute_force)
