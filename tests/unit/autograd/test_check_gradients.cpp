// check_gradients itself: it must reject a backward that is right only at the initial
// parameters and buffers (the shape of a real bug: batch norm's input gradient without gamma
// passed every check while gamma stayed 1). A test-only layer with one planted fault per case.
#include <doctest/doctest.h>

#include <string>

#include "support/backend_test.hpp"
#include "tessel/autograd/check_gradients.hpp"
#include "tessel/nn/batch_norm.hpp"
#include "tessel/nn/conv2d.hpp"
#include "tessel/nn/relu.hpp"
#include "tessel/nn/repeat.hpp"
#include "tessel/nn/sequential.hpp"

namespace ts = tessel;
namespace nn = ts::nn;

namespace {

enum class fault { none, drops_scale, drops_variance, ignores_channel };

/// y[n,c,i] = a[c] (x[n,c,i] - m[c]) / v[c], with a trainable scale a (initially 1) and buffers m
/// (initially 0) and v (initially 1, positive), like eval-mode batch norm.
template <fault F>
struct scaled_shift {
    struct config {
        ts::index_t channels = 2;
    };
    template <ts::Backend B, class T = float>
    class bind {
    public:
        bind(const config& c, ts::rng&)
            : m_a(ts::shape{c.channels}, T(1)), m_da(ts::shape{c.channels}), m_m(ts::shape{c.channels}, T(0)),
              m_v(ts::shape{c.channels}, T(1)) {}
        const ts::tensor<T, B>& forward(nn::context<B>&, const ts::tensor<T, B>& x) {
            m_x = &x;
            m_y.resize(x.shape());
            for (ts::index_t i = 0; i < x.numel(); ++i) {
                const ts::index_t c = channel(x, i);
                m_y[i] = m_a[c] * (x[i] - m_m[c]) / m_v[c];
            }
            return m_y;
        }
        const ts::tensor<T, B>& backward(nn::context<B>&, const ts::tensor<T, B>& dy) {
            m_dx.resize(dy.shape());
            m_da.fill(T(0));
            for (ts::index_t i = 0; i < dy.numel(); ++i) {
                // The planted faults are right at a = 1, v = 1, or when every channel is alike.
                const ts::index_t c = F == fault::ignores_channel ? 0 : channel(dy, i);
                const T a = F == fault::drops_scale ? T(1) : m_a[c];
                const T v = F == fault::drops_variance ? T(1) : m_v[c];
                m_dx[i] = dy[i] * a / v;
                m_da[channel(dy, i)] += dy[i] * ((*m_x)[i] - m_m[channel(dy, i)]) / m_v[channel(dy, i)];
            }
            return m_dx;
        }
        nn::parameter_list<T, B> parameters() { return {{&m_a, &m_da, "scale"}}; }
        nn::buffer_list<T, B> buffers() { return {{&m_m, "mean"}, {&m_v, "variance", true}}; }

    private:
        static ts::index_t channel(const ts::tensor<T, B>& t, ts::index_t i) {
            return (i / (t.numel() / (t.dim(0) * t.dim(1)))) % t.dim(1);
        }
        ts::tensor<T, B> m_a, m_da, m_m, m_v, m_y, m_dx;
        const ts::tensor<T, B>* m_x = nullptr;
    };
};
static_assert(nn::Layer<scaled_shift<fault::none>::bind<ts::cpu_serial, double>, ts::cpu_serial, double>);
static_assert(nn::HasBuffers<scaled_shift<fault::none>::bind<ts::cpu_omp, double>, ts::cpu_omp, double>);
static_assert(!nn::HasBuffers<nn::relu::bind<ts::cpu_serial, double>, ts::cpu_serial, double>);

template <fault F, class B>
ts::autograd::gradient_check_result check(bool perturb) {
    ts::autograd::gradient_check_options opt;
    opt.perturb_state = perturb;
    return ts::autograd::check_gradients<scaled_shift<F>, B>({.channels = 3}, ts::shape{2, 3, 4, 5}, opt);
}

}  // namespace

template <class B>
void faults_right_only_at_the_initial_state_fail() {
    const auto ok = check<fault::none, B>(true);
    INFO(ok.report);
    CHECK(ok.passed);
    // Each fault passes at the initial state (the check cannot see it there) ...
    CHECK(check<fault::drops_scale, B>(false).passed);
    CHECK(check<fault::drops_variance, B>(false).passed);
    CHECK(check<fault::ignores_channel, B>(false).passed);
    // ... and fails once parameters and buffers are moved: the default.
    CHECK_FALSE(check<fault::drops_scale, B>(true).passed);
    CHECK_FALSE(check<fault::drops_variance, B>(true).passed);
    CHECK_FALSE(check<fault::ignores_channel, B>(true).passed);
    CHECK(ts::autograd::gradient_check_options{}.perturb_state);
}
TESSEL_BACKEND_TEST("check_gradients: a backward right only at initial parameters or buffers fails",
                    faults_right_only_at_the_initial_state_fail)

TEST_CASE("check_gradients: the perturbation is fixed by the seed and keeps positive buffers positive") {
    ts::autograd::gradient_check_options opt;
    opt.seed = 5;
    const auto a = ts::autograd::check_gradients<scaled_shift<fault::drops_scale>>({.channels = 3}, ts::shape{2, 3, 4, 5}, opt);
    const auto b = ts::autograd::check_gradients<scaled_shift<fault::drops_scale>>({.channels = 3}, ts::shape{2, 3, 4, 5}, opt);
    CHECK(a.report == b.report);
    CHECK(a.input_error == b.input_error);
    // cpu_omp draws the same state: the same errors to the bit.
    const auto o = ts::autograd::check_gradients<scaled_shift<fault::drops_scale>, ts::cpu_omp>({.channels = 3},
                                                                                              ts::shape{2, 3, 4, 5}, opt);
    CHECK(o.input_error == a.input_error);

    // A factor in [1/2, 2] for positive tensors; a step of up to half the RMS otherwise, 0.5 for an
    // all-zero tensor.
    ts::rng gen(3);
    ts::tensor<double> ones(ts::shape{1000}, 1.0), zeros(ts::shape{1000}, 0.0), pos(ts::shape{1000}, 4.0);
    ts::autograd::detail::perturb(ones, false, gen);
    ts::autograd::detail::perturb(zeros, false, gen);
    ts::autograd::detail::perturb(pos, true, gen);
    double lo = 1e9, hi = -1e9;
    for (ts::index_t i = 0; i < 1000; ++i) {
        CHECK(ones[i] != 1.0);
        CHECK(std::abs(ones[i] - 1.0) <= 0.5);
        CHECK(std::abs(zeros[i]) <= 0.5);
        CHECK(zeros[i] != 0.0);
        lo = std::min(lo, pos[i]);
        hi = std::max(hi, pos[i]);
    }
    CHECK(lo >= 2.0);
    CHECK(hi <= 8.0);
    CHECK(hi - lo > 4.0);  // the whole range is used, not a single factor
}

TEST_CASE("buffers_of: batch norm's running statistics, through sequential and repeat") {
    ts::rng init(1);
    using unit = nn::sequential<nn::conv2d, nn::batch_norm, nn::relu>;
    unit::bind<ts::cpu_serial, double> net({{.in_channels = 2, .out_channels = 3, .kernel = 3}, {.channels = 3}, {}},
                                           init);
    const auto b = nn::buffers_of<double, ts::cpu_serial>(net);
    REQUIRE(b.size() == 2);
    CHECK(b[0].name == "running_mean");
    CHECK_FALSE(b[0].positive);
    CHECK(b[1].name == "running_var");
    CHECK(b[1].positive);
    CHECK(b[0].value == &net.layer<1>().running_mean());
    CHECK(b[1].value == &net.layer<1>().running_var());

    nn::repeat<unit>::bind<ts::cpu_serial, double> twice({.count = 2, .block = {{.in_channels = 2, .out_channels = 2, .kernel = 1}, {.channels = 2}, {}}},
                                                         init);
    CHECK(nn::buffers_of<double, ts::cpu_serial>(twice).size() == 4);
    nn::relu::bind<ts::cpu_serial, double> plain({}, init);
    CHECK(nn::buffers_of<double, ts::cpu_serial>(plain).empty());
}
