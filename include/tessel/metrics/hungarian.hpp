// tessel/metrics/hungarian.hpp: the rectangular linear assignment problem (Kuhn-Munkres).
//
// Given an R x C cost matrix, finds a one-to-one assignment of min(R, C) rows to distinct columns
// with the least (or, with maximize, the greatest) total cost; the surplus rows or columns stay
// unassigned. This is the matching step of the Hungarian-matched accuracy and mIoU (GraPL protocol,
// METRICS.md §7). Algorithm: shortest augmenting paths with row/column potentials (Kuhn 1955,
// Munkres 1957; the O(n^2 m) form of Jonker & Volgenant 1987), one row added per phase. Plain CPU
// code: each phase depends on the previous one.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

#include "tessel/core/error.hpp"
#include "tessel/core/shape.hpp"

namespace tessel::metrics {

/// The result of solve_assignment.
///   ensures: row_to_col[i] is the column of row i or -1; col_to_row is its inverse; exactly
///            min(R, C) rows are assigned; total is the sum of the assigned costs.
struct assignment {
    std::vector<index_t> row_to_col;
    std::vector<index_t> col_to_row;
    double total = 0;
};

namespace detail {
// Solves rows <= cols, minimising; cost(i, j) = c[i * stride_i + j * stride_j] * sign.
inline void solve_assignment_wide(const double* c, index_t rows, index_t cols, index_t stride_i, index_t stride_j,
                                  double sign, std::vector<index_t>& row_of_col) {
    const double inf = std::numeric_limits<double>::infinity();
    // 1-based with a virtual column 0 that holds the row being inserted.
    std::vector<double> u(static_cast<std::size_t>(rows + 1), 0.0), v(static_cast<std::size_t>(cols + 1), 0.0);
    std::vector<index_t> p(static_cast<std::size_t>(cols + 1), 0), way(static_cast<std::size_t>(cols + 1), 0);
    std::vector<double> min_slack(static_cast<std::size_t>(cols + 1));
    std::vector<char> used(static_cast<std::size_t>(cols + 1));
    auto at = [](auto& vec, index_t k) -> auto& { return vec[static_cast<std::size_t>(k)]; };
    for (index_t i = 1; i <= rows; ++i) {
        at(p, 0) = i;
        index_t j0 = 0;
        std::fill(min_slack.begin(), min_slack.end(), inf);
        std::fill(used.begin(), used.end(), 0);
        do {
            at(used, j0) = 1;
            const index_t i0 = at(p, j0);
            double delta = inf;
            index_t j1 = 0;
            for (index_t j = 1; j <= cols; ++j) {
                if (at(used, j)) continue;
                const double cost = sign * c[(i0 - 1) * stride_i + (j - 1) * stride_j];
                const double slack = cost - at(u, i0) - at(v, j);
                if (slack < at(min_slack, j)) {
                    at(min_slack, j) = slack;
                    at(way, j) = j0;
                }
                if (at(min_slack, j) < delta) {  // strict: the lowest column index wins ties
                    delta = at(min_slack, j);
                    j1 = j;
                }
            }
            for (index_t j = 0; j <= cols; ++j) {
                if (at(used, j)) {
                    at(u, at(p, j)) += delta;
                    at(v, j) -= delta;
                } else {
                    at(min_slack, j) -= delta;
                }
            }
            j0 = j1;
        } while (at(p, j0) != 0);
        do {  // flip the augmenting path back to the root
            const index_t j1 = at(way, j0);
            at(p, j0) = at(p, j1);
            j0 = j1;
        } while (j0 != 0);
    }
    row_of_col.assign(static_cast<std::size_t>(cols), -1);
    for (index_t j = 1; j <= cols; ++j)
        if (at(p, j) != 0) row_of_col[static_cast<std::size_t>(j - 1)] = at(p, j) - 1;
}
}  // namespace detail

/// Optimal one-to-one assignment for a row-major rows x cols cost matrix of any shape.
/// @pre cost.size() == rows * cols; every cost is finite.
/// @code auto a = tessel::metrics::solve_assignment(costs, 3, 5, true); // a.row_to_col[i] @endcode
[[nodiscard]] inline assignment solve_assignment(std::span<const double> cost, index_t rows, index_t cols,
                                                 bool maximize = false) {
    constexpr std::string_view where = "tessel::metrics::solve_assignment";
    expects(rows >= 0 && cols >= 0, where, "negative size ", rows, "x", cols);
    expects(static_cast<index_t>(cost.size()) == rows * cols, where, "cost has ", cost.size(), " entries, ", rows,
            "x", cols, " needs ", rows * cols);
    for (std::size_t k = 0; k < cost.size(); ++k)
        expects(std::isfinite(cost[k]), where, "cost entry (", static_cast<index_t>(k) / std::max<index_t>(cols, 1), ",",
                static_cast<index_t>(k) % std::max<index_t>(cols, 1), ") is not finite: ", cost[k]);
    assignment a;
    a.row_to_col.assign(static_cast<std::size_t>(rows), -1);
    a.col_to_row.assign(static_cast<std::size_t>(cols), -1);
    if (rows == 0 || cols == 0) return a;
    const double sign = maximize ? -1.0 : 1.0;
    std::vector<index_t> other_of;
    if (rows <= cols) {
        detail::solve_assignment_wide(cost.data(), rows, cols, cols, 1, sign, other_of);
        for (index_t j = 0; j < cols; ++j)
            if (const index_t i = other_of[static_cast<std::size_t>(j)]; i >= 0) {
                a.col_to_row[static_cast<std::size_t>(j)] = i;
                a.row_to_col[static_cast<std::size_t>(i)] = j;
            }
    } else {  // solve the transpose so the inner loop always runs over the longer side
        detail::solve_assignment_wide(cost.data(), cols, rows, 1, cols, sign, other_of);
        for (index_t i = 0; i < rows; ++i)
            if (const index_t j = other_of[static_cast<std::size_t>(i)]; j >= 0) {
                a.row_to_col[static_cast<std::size_t>(i)] = j;
                a.col_to_row[static_cast<std::size_t>(j)] = i;
            }
    }
    for (index_t i = 0; i < rows; ++i)
        if (const index_t j = a.row_to_col[static_cast<std::size_t>(i)]; j >= 0)
            a.total += cost[static_cast<std::size_t>(i * cols + j)];
    return a;
}

}  // namespace tessel::metrics
