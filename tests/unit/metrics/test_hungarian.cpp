// The assignment solver against brute force over all injective maps on small random matrices of
// every shape (wide, tall, square, empty), for minimisation and maximisation.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "tessel/core/random.hpp"
#include "tessel/metrics/hungarian.hpp"
#include "tessel/metrics/matched_iou.hpp"

namespace mt = tessel::metrics;
using tessel::index_t;

namespace {
// Best total over every injective assignment of the smaller side into the larger one.
double brute_force(const std::vector<double>& c, index_t rows, index_t cols, bool maximize) {
    const bool wide = rows <= cols;
    const index_t small = wide ? rows : cols, large = wide ? cols : rows;
    std::vector<index_t> perm(static_cast<std::size_t>(large));
    std::iota(perm.begin(), perm.end(), 0);
    double best = maximize ? -1e300 : 1e300;
    do {  // the first `small` entries of each permutation give every injective map (with repeats)
        double s = 0;
        for (index_t k = 0; k < small; ++k) {
            const index_t i = wide ? k : perm[static_cast<std::size_t>(k)];
            const index_t j = wide ? perm[static_cast<std::size_t>(k)] : k;
            s += c[static_cast<std::size_t>(i * cols + j)];
        }
        best = maximize ? std::max(best, s) : std::min(best, s);
    } while (std::next_permutation(perm.begin(), perm.end()));
    return best;
}
}  // namespace

TEST_CASE("hungarian: optimal on random matrices of every shape up to 6x6 (brute force)") {
    tessel::rng g(2024);
    int cases = 0;
    for (index_t rows = 1; rows <= 6; ++rows)
        for (index_t cols = 1; cols <= 6; ++cols)
            for (int rep = 0; rep < 6; ++rep) {
                std::vector<double> c(static_cast<std::size_t>(rows * cols));
                // Small integers make ties frequent; reals make them rare.
                for (auto& v : c)
                    v = rep % 2 ? static_cast<double>(g.below(4)) : g.uniform(-30.0, 70.0);
                for (bool maximize : {false, true}) {
                    const auto a = mt::solve_assignment(c, rows, cols, maximize);
                    CHECK(a.total == doctest::Approx(brute_force(c, rows, cols, maximize)).epsilon(1e-12));
                    // A valid injective assignment covering the smaller side.
                    index_t assigned = 0;
                    std::vector<int> used(static_cast<std::size_t>(cols), 0);
                    for (index_t i = 0; i < rows; ++i) {
                        const index_t j = a.row_to_col[static_cast<std::size_t>(i)];
                        if (j < 0) continue;
                        ++assigned;
                        CHECK(used[static_cast<std::size_t>(j)]++ == 0);
                        CHECK(a.col_to_row[static_cast<std::size_t>(j)] == i);
                    }
                    CHECK(assigned == std::min(rows, cols));
                    ++cases;
                }
            }
    CHECK(cases == 432);
}

TEST_CASE("hungarian: empty and degenerate inputs") {
    const std::vector<double> none;
    const auto a = mt::solve_assignment(none, 0, 5);
    CHECK(a.col_to_row.size() == 5);
    CHECK(a.total == 0.0);
    const std::vector<double> bad = {1.0, std::nan("")};
    CHECK_THROWS_AS(mt::solve_assignment(bad, 1, 2), tessel::error);
    CHECK_THROWS_AS(mt::solve_assignment(bad, 2, 2), tessel::error);
}

TEST_CASE("hungarian: matched accuracy equals the brute-force best one-to-one overlap") {
    tessel::rng g(7);
    for (int rep = 0; rep < 20; ++rep) {
        const int ks = 1 + static_cast<int>(g.below(5)), kg = 1 + static_cast<int>(g.below(5));
        tessel::label_map s(8, 6), t(8, 6);
        for (auto& v : s.values()) v = static_cast<tessel::label_t>(g.below(static_cast<std::uint64_t>(ks)));
        for (auto& v : t.values()) v = static_cast<tessel::label_t>(g.below(static_cast<std::uint64_t>(kg)));
        const auto table = mt::contingency(s, t);
        const auto d = table.dense();
        const std::vector<double> c(d.begin(), d.end());
        const double best = brute_force(c, table.rows(), table.cols(), true);
        CHECK(mt::hungarian_scores(table).accuracy == doctest::Approx(best / 48.0).epsilon(1e-12));
    }
}

TEST_CASE("hungarian: a matching too large to solve in bounded time and memory is refused up front") {
    // 256 x 256 single-pixel regions against themselves: a 65536 x 65536 dense table (34 GB) and
    // about 2.8e14 solver steps. Refused by label counts, before anything is allocated.
    tessel::label_map every_pixel(256, 256);
    for (tessel::index_t i = 0; i < every_pixel.size(); ++i)
        every_pixel.values()[static_cast<std::size_t>(i)] = static_cast<tessel::label_t>(i);
    const auto huge = mt::contingency(every_pixel, every_pixel);
    CHECK_THROWS_WITH_AS((void)mt::hungarian_scores(huge),
                         doctest::Contains("one-to-one matching of 65536 segments to 65536 ground-truth labels is too large"),
                         tessel::error);
    // The limit is on min(R, C)^2 max(R, C): 2048 labels on each side are solved (a near-identity
    // table, so the run is short), 2100 are not.
    const auto blocks = [](tessel::index_t k, tessel::index_t shift) {
        tessel::label_map m(64, 128);
        for (tessel::index_t i = 0; i < m.size(); ++i)
            m.values()[static_cast<std::size_t>(i)] = static_cast<tessel::label_t>(((i + shift) * k / m.size()) % k);
        return m;
    };
    const auto at_limit = mt::contingency(blocks(2048, 1), blocks(2048, 0));
    REQUIRE(at_limit.rows() == 2048);
    REQUIRE(at_limit.cols() == 2048);
    // Each segment is its GT region shifted by one pixel (the last pixel wraps to segment 0): 3 of
    // its 4 pixels overlap its partner and 1 the neighbour, so the best overlap is 3 * 2048 pixels.
    CHECK(mt::hungarian_scores(at_limit).accuracy == doctest::Approx(3.0 * 2048 / 8192).epsilon(1e-12));
    CHECK_THROWS_WITH_AS((void)mt::hungarian_scores(mt::contingency(blocks(2100, 1), blocks(2100, 0))),
                         doctest::Contains("2100 segments to 2100 ground-truth labels is too large"), tessel::error);
    // The table size bounds a thin matching too: 700000 segments against 100 labels is cheap to
    // solve but would hold 7e7 cells.
    tessel::label_map fine(1000, 700), coarse(1000, 700);
    for (tessel::index_t i = 0; i < fine.size(); ++i) {
        fine.values()[static_cast<std::size_t>(i)] = static_cast<tessel::label_t>(i);
        coarse.values()[static_cast<std::size_t>(i)] = static_cast<tessel::label_t>(i % 100);
    }
    CHECK_THROWS_WITH_AS((void)mt::hungarian_scores(mt::contingency(fine, coarse)),
                         doctest::Contains("700000 segments to 100 ground-truth labels is too large"), tessel::error);
}
