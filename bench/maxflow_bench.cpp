// maxflow_bench: Boykov-Kolmogorov max-flow, alpha-expansion and alpha-beta swap on two problems.
//
//  * grapl: GraPL's graph step (METHODS.md 5.5): a 32 x 32 grid of 16 x 16 patches of a 512 x 512
//    image, 14 labels, unaries -ln P from a synthetic patch classifier, Potts lambda = 64 and the
//    colour affinities w_ij = exp(-a_ij^2 / (2 sigma)) / |c_i - c_j| over all patch pairs, pruned
//    at 0.2. The max-flow comparison solves one binary expansion subproblem of it.
//  * grid: a 481 x 321 pixel grid (BSDS size), 4-connected, contrast-sensitive weights; a binary
//    foreground/background problem for max-flow, 8 colour labels for expansion and swap.
// Each line is JSON; times are medians. When Boost is found the same max-flow problems are solved
// by boost::boykov_kolmogorov_max_flow and the flows are compared (exit code 1 if they differ).
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "support/synthetic.hpp"
#include "tessel/core/random.hpp"
#include "tessel/graph/grid_graph.hpp"
#include "tessel/io/image.hpp"
#include "tessel/solver/alpha_beta_swap.hpp"
#include "tessel/solver/alpha_expansion.hpp"
#include "tessel/solver/maxflow_bk.hpp"

#if TESSEL_HAVE_BOOST
// g++ 12 reports a false -Wmaybe-uninitialized inside Boost's BK (an edge iterator in its
// constructor) at the point where it is inlined into this file; it is Boost's code, not ours.
#  pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#  include <boost/graph/adjacency_list.hpp>
#  include <boost/graph/boykov_kolmogorov_max_flow.hpp>
#endif

namespace ts = tessel;
using clock_type = std::chrono::steady_clock;

namespace {

template <class F>
double median_seconds(int runs, F&& f) {
    std::vector<double> t;
    for (int r = 0; r < runs; ++r) {
        const auto a = clock_type::now();
        f();
        t.push_back(std::chrono::duration<double>(clock_type::now() - a).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

// A binary max-flow problem as plain arrays, so that tessel and Boost solve exactly the same one.
struct binary_problem {
    ts::index_t n = 0;
    std::vector<double> source, sink;
    struct link {
        ts::index_t u, v;
        double cap, rev;
    };
    std::vector<link> links;
};

double solve_tessel(ts::bk_maxflow<double>& mf, const binary_problem& p) {
    mf.reset(p.n, static_cast<ts::index_t>(p.links.size()));
    for (ts::index_t v = 0; v < p.n; ++v) mf.add_tlink(v, p.source[static_cast<std::size_t>(v)], p.sink[static_cast<std::size_t>(v)]);
    for (const auto& l : p.links) mf.add_nlink(l.u, l.v, l.cap, l.rev);
    return mf.solve();
}

#if TESSEL_HAVE_BOOST
using boost_traits = boost::adjacency_list_traits<boost::vecS, boost::vecS, boost::directedS>;
using boost_graph = boost::adjacency_list<
    boost::vecS, boost::vecS, boost::directedS,
    boost::property<boost::vertex_color_t, boost::default_color_type,
                    boost::property<boost::vertex_distance_t, long,
                                    boost::property<boost::vertex_predecessor_t, boost_traits::edge_descriptor>>>,
    boost::property<boost::edge_capacity_t, double,
                    boost::property<boost::edge_residual_capacity_t, double,
                                    boost::property<boost::edge_reverse_t, boost_traits::edge_descriptor>>>>;

struct boost_problem {
    boost_graph g;
    boost_traits::vertex_descriptor s{}, t{};
};

void build_boost(boost_problem& bp, const binary_problem& p) {
    bp.g = boost_graph(static_cast<std::size_t>(p.n + 2));
    bp.s = static_cast<std::size_t>(p.n);
    bp.t = static_cast<std::size_t>(p.n + 1);
    auto cap = get(boost::edge_capacity, bp.g);
    auto rev = get(boost::edge_reverse, bp.g);
    auto add = [&](std::size_t a, std::size_t b, double c, double rc) {
        const auto e = add_edge(a, b, bp.g).first;
        const auto r = add_edge(b, a, bp.g).first;
        cap[e] = c;
        cap[r] = rc;
        rev[e] = r;
        rev[r] = e;
    };
    for (ts::index_t v = 0; v < p.n; ++v) {
        const double cs = p.source[static_cast<std::size_t>(v)], ct = p.sink[static_cast<std::size_t>(v)];
        if (cs > 0) add(bp.s, static_cast<std::size_t>(v), cs, 0);
        if (ct > 0) add(static_cast<std::size_t>(v), bp.t, ct, 0);
    }
    for (const auto& l : p.links) add(static_cast<std::size_t>(l.u), static_cast<std::size_t>(l.v), l.cap, l.rev);
}
#endif

// Times one max-flow problem on tessel (graph building + solve) and, with Boost, on Boost (solve
// on a prebuilt graph: Boost's building is slower and not what is being compared).
int compare_maxflow(const char* name, const binary_problem& p, int runs) {
    ts::bk_maxflow<double> mf;
    double flow = 0;
    const double seconds = median_seconds(runs, [&] { flow = solve_tessel(mf, p); });
    // The solve() call alone (CSR layout + max-flow), after the links have been added.
    std::vector<double> solve_only;
    for (int r = 0; r < runs; ++r) {
        mf.reset(p.n, static_cast<ts::index_t>(p.links.size()));
        for (ts::index_t v = 0; v < p.n; ++v) mf.add_tlink(v, p.source[static_cast<std::size_t>(v)], p.sink[static_cast<std::size_t>(v)]);
        for (const auto& l : p.links) mf.add_nlink(l.u, l.v, l.cap, l.rev);
        const auto a = clock_type::now();
        mf.solve();
        solve_only.push_back(std::chrono::duration<double>(clock_type::now() - a).count());
    }
    std::sort(solve_only.begin(), solve_only.end());
    std::printf("{\"bench\":\"%s\",\"seconds\":%.6g,\"solve_seconds\":%.6g,\"flow\":%.10g,\"nodes\":%ld,\"nlinks\":%zu",
                name, seconds, solve_only[solve_only.size() / 2], flow, static_cast<long>(p.n), p.links.size());
    int status = 0;
#if TESSEL_HAVE_BOOST
    boost_problem bp;
    build_boost(bp, p);
    double boost_flow = 0;
    const double boost_seconds =
        median_seconds(runs, [&] { boost_flow = boost::boykov_kolmogorov_max_flow(bp.g, bp.s, bp.t); });
    const bool same = std::abs(flow - boost_flow) <= 1e-9 * std::max(1.0, std::abs(boost_flow));
    std::printf(",\"boost_seconds\":%.6g,\"ratio_to_boost\":%.4g,\"boost_flow\":%.10g,\"flow_matches\":%s",
                boost_seconds, seconds / boost_seconds, boost_flow, same ? "true" : "false");
    if (!same) status = 1;
#endif
    std::printf("}\n");
    std::fflush(stdout);
    return status;
}

// ---- the GraPL-sized problem --------------------------------------------------------------------
struct labelling_problem {
    ts::index_t n = 0, L = 0;
    std::vector<double> unary;  // n x L
    ts::csr_graph<double> graph;
    double lambda = 0;
};

ts::image<std::uint8_t> grapl_image(std::string& source) {
    const std::filesystem::path dir = std::filesystem::path(TESSEL_BENCH_DATA_DIR) / "bsds500" / "val";
    std::error_code ec;
    if (std::filesystem::is_directory(dir, ec)) {
        std::vector<std::filesystem::path> jpgs;
        for (const auto& e : std::filesystem::directory_iterator(dir))
            if (e.path().extension() == ".jpg") jpgs.push_back(e.path());
        std::sort(jpgs.begin(), jpgs.end());
        if (!jpgs.empty()) {
            source = "bsds500/val/" + jpgs.front().filename().string();
            return ts::io::read_image(jpgs.front());
        }
    }
    source = "synthetic";
    return ts::testing::make_shapes(481, 321, 25, 3).img;
}

labelling_problem grapl_problem(std::string& source) {
    const auto img = grapl_image(source);
    const ts::index_t d = 32, S = 512, p = S / d, L = 14;
    // Nearest-neighbour resize to S x S and [-1, 1] scaling, then patch mean colours.
    std::vector<double> mean(static_cast<std::size_t>(d * d * 3), 0.0);
    for (ts::index_t y = 0; y < S; ++y)
        for (ts::index_t x = 0; x < S; ++x) {
            const ts::index_t sx = x * img.width() / S, sy = y * img.height() / S;
            const ts::index_t patch = (y / p) * d + x / p;
            for (int c = 0; c < 3; ++c)
                mean[static_cast<std::size_t>(patch * 3 + c)] += (img(sx, sy, c) / 127.5 - 1.0) / static_cast<double>(p * p);
        }
    const ts::index_t n = d * d;
    // Features scaled by 32 as GraPL does after its projection; sigma = std of all pair distances.
    std::vector<double> f(mean.size());
    for (std::size_t k = 0; k < f.size(); ++k) f[k] = 32.0 * mean[k];
    auto dist = [&](ts::index_t i, ts::index_t j) {
        double s = 0;
        for (int c = 0; c < 3; ++c) {
            const double t = f[static_cast<std::size_t>(i * 3 + c)] - f[static_cast<std::size_t>(j * 3 + c)];
            s += t * t;
        }
        return std::sqrt(s);
    };
    double sum = 0, sum2 = 0;
    for (ts::index_t i = 0; i < n; ++i)
        for (ts::index_t j = i + 1; j < n; ++j) {
            const double a = dist(i, j);
            sum += a;
            sum2 += a * a;
        }
    const double pairs = static_cast<double>(n * (n - 1) / 2);
    double sigma = std::sqrt(std::max(0.0, sum2 / pairs - (sum / pairs) * (sum / pairs)));
    if (sigma == 0) sigma = 1;
    auto affinity = [&](ts::index_t i, ts::index_t j) {
        const double a = dist(i, j);
        const double dy = static_cast<double>(i / d - j / d), dx = static_cast<double>(i % d - j % d);
        return std::exp(-a * a / (2 * sigma)) / std::sqrt(dx * dx + dy * dy);
    };
    labelling_problem lp;
    lp.n = n;
    lp.L = L;
    lp.lambda = 64;
    lp.graph = ts::similarity_threshold_graph(n, affinity, 0.2);
    // A synthetic patch classifier: logits from the distance to 14 random colour prototypes plus
    // noise, softmax, U = -ln max(P, 1e-10).
    ts::rng g(5);
    std::vector<double> proto(static_cast<std::size_t>(L * 3));
    for (auto& v : proto) v = g.uniform(-1, 1);
    lp.unary.resize(static_cast<std::size_t>(n * L));
    for (ts::index_t i = 0; i < n; ++i) {
        std::vector<double> z(static_cast<std::size_t>(L));
        double mx = -1e300;
        for (ts::index_t l = 0; l < L; ++l) {
            double s = 0;
            for (int c = 0; c < 3; ++c) {
                const double t = mean[static_cast<std::size_t>(i * 3 + c)] - proto[static_cast<std::size_t>(l * 3 + c)];
                s += t * t;
            }
            z[static_cast<std::size_t>(l)] = -4.0 * s + 1.5 * g.normal();
            mx = std::max(mx, z[static_cast<std::size_t>(l)]);
        }
        double den = 0;
        for (auto& v : z) den += std::exp(v - mx);
        for (ts::index_t l = 0; l < L; ++l) {
            const double pr = std::exp(z[static_cast<std::size_t>(l)] - mx) / den;
            lp.unary[static_cast<std::size_t>(i * L + l)] = -std::log(std::max(pr, 1e-10));
        }
    }
    return lp;
}

// Records the links a move construction adds, as a binary_problem.
struct link_recorder {
    binary_problem* p;
    void add_nlink(ts::index_t u, ts::index_t v, double cap, double rev) {
        if (cap > 0 || rev > 0) p->links.push_back({u, v, cap, rev});
    }
};

// The binary expansion subproblem of a Potts labelling problem at `labels` for label alpha, built
// with the same pairwise construction as alpha_expansion (Kolmogorov-Zabih).
binary_problem expansion_subproblem(const labelling_problem& lp, const std::vector<ts::label_t>& labels, ts::label_t alpha) {
    binary_problem p;
    p.n = lp.n;
    std::vector<double> keep(static_cast<std::size_t>(lp.n)), take(static_cast<std::size_t>(lp.n));
    for (ts::index_t i = 0; i < lp.n; ++i) {
        keep[static_cast<std::size_t>(i)] = lp.unary[static_cast<std::size_t>(i * lp.L + labels[static_cast<std::size_t>(i)])];
        take[static_cast<std::size_t>(i)] = lp.unary[static_cast<std::size_t>(i * lp.L + alpha)];
    }
    link_recorder rec{&p};
    for (const auto& e : lp.graph.upper_edges()) {
        const ts::label_t a = labels[static_cast<std::size_t>(e.source)], b = labels[static_cast<std::size_t>(e.target)];
        const double wl = e.weight * lp.lambda;
        if (a == alpha && b == alpha) continue;
        if (a == alpha) {
            keep[static_cast<std::size_t>(e.target)] += wl;
            continue;
        }
        if (b == alpha) {
            keep[static_cast<std::size_t>(e.source)] += wl;
            continue;
        }
        ts::detail::add_binary_term(rec, e.source, e.target, a == b ? 0.0 : wl, wl, wl, 0.0, keep.data(), take.data());
    }
    for (ts::index_t i = 0; i < lp.n; ++i) {
        const double c0 = keep[static_cast<std::size_t>(i)], c1 = take[static_cast<std::size_t>(i)], lo = std::min(c0, c1);
        p.source.push_back(c1 - lo);
        p.sink.push_back(c0 - lo);
    }
    return p;
}

template <class Solver>
void time_moves(const char* name, const labelling_problem& lp, int runs, const char* extra) {
    const ts::potts_energy<double> model(lp.n, lp.L, lp.unary, lp.lambda);
    double energy = 0;
    Solver solver;
    std::vector<ts::label_t> labels;
    const double seconds = median_seconds(runs, [&] {
        labels.assign(static_cast<std::size_t>(lp.n), 0);  // GCO's start: every site label 0
        energy = solver.minimize(model, lp.graph, std::span<ts::label_t>(labels));
    });
    const std::vector<ts::label_t> zeros(static_cast<std::size_t>(lp.n), 0);
    const double initial = ts::total_energy(model, lp.graph, std::span<const ts::label_t>(zeros));
    std::printf("{\"bench\":\"%s\",\"seconds\":%.6g,\"energy\":%.10g,\"initial_energy\":%.10g,\"cycles\":%d,"
                "\"moves\":%d,\"labels\":%ld,\"nodes\":%ld,\"edges\":%ld%s}\n",
                name, seconds, energy, initial, solver.stats().cycles, solver.stats().moves_tried,
                static_cast<long>(lp.L), static_cast<long>(lp.n), static_cast<long>(lp.graph.num_arcs() / 2), extra);
    std::fflush(stdout);
}

// ---- the BSDS-sized pixel grid ------------------------------------------------------------------
struct grid_setup {
    labelling_problem labelling;
    binary_problem binary;
};

grid_setup grid_problem() {
    const ts::index_t W = 481, H = 321, n = W * H, L = 8;
    const auto scene = ts::testing::make_shapes(W, H, 60, 9);
    const auto& img = scene.img;
    auto colour_dist2 = [&](ts::index_t u, ts::index_t v) {
        double s = 0;
        for (int c = 0; c < 3; ++c) {
            const double t = static_cast<double>(img.data()[u * 3 + c]) - static_cast<double>(img.data()[v * 3 + c]);
            s += t * t;
        }
        return s;
    };
    auto contrast = [&](ts::index_t u, ts::index_t v) { return std::exp(-colour_dist2(u, v) / (2.0 * 30.0 * 30.0)); };
    grid_setup gs;
    auto& lp = gs.labelling;
    lp.n = n;
    lp.L = L;
    lp.lambda = 20;
    lp.graph = ts::grid_graph(W, H, 4, contrast);
    // Unaries: squared distance to 8 palette colours (the scene's 3 plus 5 distractors), scaled.
    const std::array<std::array<double, 3>, 8> palette = {{{40, 60, 200}, {220, 50, 40}, {60, 200, 80}, {128, 128, 128},
                                                           {200, 200, 60}, {20, 20, 20}, {240, 240, 240}, {150, 60, 160}}};
    lp.unary.resize(static_cast<std::size_t>(n * L));
    for (ts::index_t i = 0; i < n; ++i)
        for (ts::index_t l = 0; l < L; ++l) {
            double s = 0;
            for (int c = 0; c < 3; ++c) {
                const double t = static_cast<double>(img.data()[i * 3 + c]) - palette[static_cast<std::size_t>(l)][static_cast<std::size_t>(c)];
                s += t * t;
            }
            lp.unary[static_cast<std::size_t>(i * L + l)] = s / 1000.0;
        }
    // Binary problem: disc (label 1) against everything else, from noisy colour likelihoods, with
    // the same contrast-sensitive n-links (lambda 20).
    auto& bp = gs.binary;
    bp.n = n;
    for (ts::index_t i = 0; i < n; ++i) {
        const double fg = lp.unary[static_cast<std::size_t>(i * L + 1)];
        const double bg = std::min(lp.unary[static_cast<std::size_t>(i * L + 0)], lp.unary[static_cast<std::size_t>(i * L + 2)]);
        bp.source.push_back(bg);  // cut when i goes to the sink (background side)... pays bg cost
        bp.sink.push_back(fg);
    }
    for (const auto& e : lp.graph.upper_edges()) bp.links.push_back({e.source, e.target, 20 * e.weight, 20 * e.weight});
    return gs;
}

}  // namespace

int main() {
    int status = 0;
    std::string source;
    const auto grapl = grapl_problem(source);
    const std::string extra = ",\"image\":\"" + source + "\"";

    // Max-flow on one expansion subproblem: the first move of the solver as GraPL starts it (every
    // patch labelled 0), for alpha = the label the unaries prefer most often, which is the move
    // that changes the most patches.
    std::vector<int> count(static_cast<std::size_t>(grapl.L), 0);
    for (ts::index_t i = 0; i < grapl.n; ++i) {
        const double* u = grapl.unary.data() + i * grapl.L;
        ++count[static_cast<std::size_t>(std::min_element(u, u + grapl.L) - u)];
    }
    const auto alpha = static_cast<ts::label_t>(std::max_element(count.begin(), count.end()) - count.begin());
    const std::vector<ts::label_t> zeros(static_cast<std::size_t>(grapl.n), 0);
    status |= compare_maxflow("maxflow_grapl", expansion_subproblem(grapl, zeros, alpha), 201);
    time_moves<ts::alpha_expansion<ts::potts>>("expansion_grapl", grapl, 11, extra.c_str());
    time_moves<ts::alpha_beta_swap<ts::potts>>("swap_grapl", grapl, 11, extra.c_str());

    const auto grid = grid_problem();
    status |= compare_maxflow("maxflow_grid", grid.binary, 7);
    time_moves<ts::alpha_expansion<ts::potts>>("expansion_grid", grid.labelling, 3, "");
    time_moves<ts::alpha_beta_swap<ts::potts>>("swap_grid", grid.labelling, 3, "");
    return status;
}
