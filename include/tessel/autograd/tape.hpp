// tessel/autograd/tape.hpp: the op-level tape for losses and graph-shaped computations.
//
// The CNN body is a static chain with hand-written backward; losses, modularity and GCN message
// passing are DAGs. tape<B, T> records {input ids, output id, saved tensors, backward callable}
// per op; backward(loss) replays them in reverse, summing gradients where a value feeds several
// ops. A bound layer or sequential is a *single* node (tape.layer) running its own backward.
// reset() recycles all storage, so re-recording the same graph each iteration stops allocating.
// Custom ops follow libtorch's Function (autograd::function below, docs/autograd.md).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "tessel/autograd/var.hpp"
#include "tessel/backend/parallel.hpp"
#include "tessel/nn/concepts.hpp"

namespace tessel::autograd {

namespace detail {
template <class T>
struct fill_fn {
    T* p;
    T v;
    TESSEL_HD void operator()(index_t i) const { p[i] = v; }
};
template <class T>
struct accumulate_fn {
    T* dst;
    const T* src;
    bool add;
    TESSEL_HD void operator()(index_t i) const { dst[i] = add ? dst[i] + src[i] : src[i]; }
};

template <class U>
inline constexpr char type_tag = 0;  // its address identifies U without RTTI

template <class A>
struct is_var : std::false_type {};
template <class B, class T>
struct is_var<var<B, T>> : std::true_type {};
template <class A>
inline constexpr bool is_var_v = is_var<std::remove_cvref_t<A>>::value;

/// What forward receives for an argument of apply: a var's value tensor, anything else as is.
template <class A>
struct unwrapped {
    using type = A;
};
template <class B, class T>
struct unwrapped<var<B, T>> {
    using type = tensor<T, B>;
};
template <class A>
using unwrapped_t = typename unwrapped<std::remove_cvref_t<A>>::type;

// Detection as named concepts over parameter types: nvcc's front end mis-evaluates the same
// requires-expressions written inline over local variables.
template <class F, class Ctx, class... In>
concept forward_returns = requires(Ctx& ctx, const In&... in) { F::forward(ctx, in...); };
template <class F, class Ctx, class Out, class... In>
concept forward_in_place = requires(Ctx& ctx, Out& out, const In&... in) { F::forward(ctx, out, in...); };
template <class F, class Ctx, class Dy, class Dx>
concept backward_in_place = requires(Ctx& ctx, const Dy& dy, Dx& dx) { F::backward(ctx, dy, dx); };
template <class F, class Ctx, class Dy>
concept backward_returns = requires(Ctx& ctx, const Dy& dy) { F::backward(ctx, dy); };
}  // namespace detail

template <Backend B, class T = float>
class input_grads;

/// Where an op's backward writes the gradient of one input: `accumulate` says whether another op
/// already wrote there (then add) or not (then overwrite, which spares a zero fill).
template <class T>
struct grad_target {
    T* data = nullptr;
    bool accumulate = false;
    TESSEL_HD void write(index_t i, T g) const { data[i] = accumulate ? data[i] + g : g; }
};

/// What a function's forward hands to its backward (libtorch's AutogradContext).
///
/// save_for_backward stores *pointers*: the tensors must stay alive and unchanged until backward,
/// which holds for the forward's inputs (tape values and leaves). Temporaries go through
/// save_copy or workspace(i), which the context owns and reuses across iterations.
template <Backend B, class T = float>
class function_context {
public:
    using tensor_type = tensor<T, B>;

    template <class... Ts>
    void save_for_backward(const Ts&... ts) {
        static_assert((std::is_same_v<Ts, tensor_type> && ...),
                      "tessel::autograd::function_context::save_for_backward takes tensors of the tape's type");
        (m_saved.push_back(&ts), ...);
    }
    /// Copies t into context-owned storage (capacity reused next iteration) and saves that copy.
    const tensor_type& save_copy(const tensor_type& t) {
        if (m_num_copies == static_cast<index_t>(m_copies.size())) m_copies.emplace_back();
        tensor_type& c = m_copies[static_cast<std::size_t>(m_num_copies++)];
        c = t;
        m_saved.push_back(&c);
        return c;
    }
    /// A context-owned scratch tensor that survives until backward; resize it as needed.
    tensor_type& workspace(index_t i) {
        if (i >= static_cast<index_t>(m_workspaces.size())) m_workspaces.resize(static_cast<std::size_t>(i + 1));
        return m_workspaces[static_cast<std::size_t>(i)];
    }
    void save_scalar(double v) { m_scalars.push_back(v); }
    /// Saves a pointer to any object (e.g. an integer label tensor) that outlives backward.
    template <class U>
    void save_object(const U& obj) {
        m_objects.push_back({&obj, &detail::type_tag<U>});
    }

    [[nodiscard]] const tensor_type& saved(index_t i) const {
        expects(i >= 0 && i < num_saved(), m_name, "saved tensor ", i, " requested, ", num_saved(), " saved");
        return *m_saved[static_cast<std::size_t>(i)];
    }
    [[nodiscard]] index_t num_saved() const noexcept { return static_cast<index_t>(m_saved.size()); }
    [[nodiscard]] double scalar(index_t i) const {
        expects(i >= 0 && i < static_cast<index_t>(m_scalars.size()), m_name, "saved scalar ", i,
                " requested, ", m_scalars.size(), " saved");
        return m_scalars[static_cast<std::size_t>(i)];
    }
    template <class U>
    [[nodiscard]] const U& object(index_t i) const {
        expects(i >= 0 && i < static_cast<index_t>(m_objects.size()), m_name, "saved object ", i,
                " requested, ", m_objects.size(), " saved");
        const auto& o = m_objects[static_cast<std::size_t>(i)];
        expects(o.tag == &detail::type_tag<U>, m_name, "saved object ", i, " has another type");
        return *static_cast<const U*>(o.ptr);
    }
    /// The value of the i-th var argument of the forward.
    [[nodiscard]] const tensor_type& input(index_t i) const;
    [[nodiscard]] index_t num_inputs() const noexcept { return static_cast<index_t>(m_inputs.size()); }
    /// Whether backward has to produce the gradient of the i-th var argument (usable in forward).
    [[nodiscard]] bool needs_input_grad(index_t i) const;
    /// The forward's result (in backward).
    [[nodiscard]] const tensor_type& output() const;
    /// The op's name, for error messages.
    [[nodiscard]] std::string_view name() const noexcept { return m_name; }

private:
    friend class tape<B, T>;
    friend class input_grads<B, T>;
    struct object_ref {
        const void* ptr;
        const char* tag;
    };
    void begin(tape<B, T>* owner, std::string_view name) {
        m_tape = owner;
        m_name = name;
        m_saved.clear();
        m_scalars.clear();
        m_objects.clear();
        m_inputs.clear();
        m_num_copies = 0;
        m_output = -1;
    }

    tape<B, T>* m_tape = nullptr;
    std::string_view m_name;
    std::vector<const tensor_type*> m_saved;
    std::vector<tensor_type> m_copies;
    index_t m_num_copies = 0;
    std::vector<tensor_type> m_workspaces;
    std::vector<double> m_scalars;
    std::vector<object_ref> m_objects;
    std::vector<index_t> m_inputs;
    index_t m_output = -1;
};

/// The gradients an op's backward produces, one per var argument of its forward.
template <Backend B, class T>
class input_grads {
public:
    using tensor_type = tensor<T, B>;
    input_grads(tape<B, T>& owner, const function_context<B, T>& ctx) : m_tape(owner), m_ctx(ctx) {}

    [[nodiscard]] index_t size() const noexcept { return m_ctx.num_inputs(); }
    /// Whether input i wants a gradient (a constant does not).
    [[nodiscard]] bool needed(index_t i) const { return m_ctx.needs_input_grad(i); }
    /// The buffer of input i's gradient, sized like the input; write each element once with
    /// grad_target::write. Only call when needed(i).
    grad_target<T> target(index_t i);
    /// Adds g (shaped like input i) to input i's gradient; does nothing unless needed(i).
    void accumulate(index_t i, const tensor_type& g) {
        if (!needed(i)) return;
        expects(g.shape() == m_ctx.input(i).shape(), m_ctx.name(), "backward returned a gradient of shape ",
                g.shape().str(), " for input ", i, " of shape ", m_ctx.input(i).shape().str());
        const grad_target<T> t = target(i);
        parallel_for(B{}, g.numel(), detail::accumulate_fn<T>{t.data, g.data(), t.accumulate});
    }

private:
    tape<B, T>& m_tape;
    const function_context<B, T>& m_ctx;
};

/// Base of user-defined differentiable ops, after libtorch's torch::autograd::Function:
/// @code
/// struct cube : tessel::autograd::function<cube> {
///     static constexpr std::string_view name = "cube";
///     template <class B, class T>
///     static tensor<T, B> forward(function_context<B, T>& ctx, const tensor<T, B>& x) {
///         ctx.save_for_backward(x);            // x is a tape value: saved by pointer
///         tensor<T, B> y(x.shape()); ...       // y = x^3
///         return y;
///     }
///     template <class B, class T>
///     static tensor<T, B> backward(function_context<B, T>& ctx, const tensor<T, B>& dy) {
///         const auto& x = ctx.saved(0); ...    // return 3 x^2 dy
///     }
/// };
/// auto y = cube::apply(x);                      // x is an autograd::var; y is recorded on x's tape
/// @endcode
/// Arguments of apply that are vars become the op's inputs and reach forward as their values
/// (const tensor&); other arguments (labels, scalars) are passed through unchanged.
/// Two forms of each half are accepted:
///   forward:  tensor forward(ctx, inputs...)                 (libtorch's; allocates its result)
///             void   forward(ctx, tensor& out, inputs...)    (writes into the tape's recycled buffer)
///   backward: tensor backward(ctx, dy)                       (one var input)
///             std::array<tensor, N> / std::vector<tensor> backward(ctx, dy)  (one per var input;
///                                                             a default-constructed tensor = none)
///             void   backward(ctx, dy, input_grads& dx)      (accumulates in place; no allocation)
template <class Derived>
struct function {
    template <class... Args>
    static auto apply(const Args&... args) {
        static_assert((detail::is_var_v<Args> || ...), "tessel::autograd::function::apply needs at least one var argument");
        auto* owner = first_tape(args...);
        return owner->template call<Derived>(args...);
    }

private:
    template <class A, class... Rest>
    static auto* first_tape(const A& a, const Rest&... rest) {
        if constexpr (detail::is_var_v<A>) {
            expects(a.valid(), "tessel::autograd::function::apply", "an argument is an empty var");
            return &a.owner();
        } else {
            return first_tape(rest...);
        }
    }
};

/// The tape: see the file comment. Not copyable or movable, since vars point at it.
template <Backend B, class T = float>
class tape {
public:
    using tensor_type = tensor<T, B>;
    using var_type = var<B, T>;

    tape() = default;
    tape(const tape&) = delete;
    tape& operator=(const tape&) = delete;

    /// Starts a new recording. Every var of the previous one becomes stale; storage is kept.
    void reset() noexcept {
        m_num_nodes = 0;
        m_num_records = 0;
        ++m_generation;
    }

    /// A value that needs no gradient. t is referenced, not copied: keep it alive and unchanged
    /// until backward has run.
    var_type constant(const tensor_type& t) { return add_leaf(&t, nullptr, false); }
    /// A leaf whose gradient the tape keeps (read it with grad(v) after backward).
    var_type input(const tensor_type& t, bool requires_grad = true) { return add_leaf(&t, nullptr, requires_grad); }
    /// A leaf for a layer parameter: backward *overwrites* *p.grad (zero if the loss does not
    /// depend on it), as layers' backward do.
    var_type parameter(const nn::parameter_ref<T, B>& p) {
        expects(p.value != nullptr && p.grad != nullptr, "tessel::autograd::tape::parameter",
                "parameter '", p.name, "' has no value or gradient tensor");
        return add_leaf(p.value, p.grad, true);
    }

    /// Runs a bound layer (or sequential) forward on x and records it as one node whose backward
    /// is the layer's backward. The layer's parameters get their gradients from that backward;
    /// a layer may appear at most once per recording (its buffers hold one forward).
    template <class L>
        requires nn::Layer<L, B, T>
    var_type layer(L& l, nn::context<B>& ctx, var_type x) {
        check(x, "tessel::autograd::tape::layer");
        if constexpr (nn::SkipsInputGrad<L>) l.set_input_grad_needed(node_at(x).requires_grad);
        record& r = next_record();
        r.ctx.begin(this, "tessel::autograd::tape::layer");
        r.ctx.m_inputs.push_back(x.id());
        r.ctx.save_object(l);
        r.ctx.save_object(ctx);
        const tensor_type& y = l.forward(ctx, *node_at(x).value);
        node& out = next_node();
        out.value = &y;
        out.grad = &out.owned_grad;
        out.requires_grad = true;  // a layer node is on the tape to train its parameters
        r.ctx.m_output = m_num_nodes;
        r.backward = &layer_backward<L>;
        r.unreached = &layer_unreached<L>;
        ++m_num_records;
        return var_type(this, m_num_nodes++, m_generation);
    }

    /// Records F (an autograd::function) applied to args; called by function<F>::apply.
    template <class F, class... Args>
    var_type call(const Args&... args) {
        const std::string_view name = op_name<F>();
        record& r = next_record();
        r.ctx.begin(this, name);
        bool any_grad = false;
        auto collect = [&](const auto& a) {
            if constexpr (detail::is_var_v<decltype(a)>) {
                check(a, name);
                r.ctx.m_inputs.push_back(a.id());
                any_grad = any_grad || node_at(a).requires_grad;
            }
        };
        (collect(args), ...);
        node& out = next_node();
        using ctx_type = function_context<B, T>;
        if constexpr (detail::forward_returns<F, ctx_type, detail::unwrapped_t<Args>...>) {
            out.owned_value = F::forward(r.ctx, unwrap(args)...);
        } else {
            static_assert(detail::forward_in_place<F, ctx_type, tensor_type, detail::unwrapped_t<Args>...>,
                          "tessel::autograd::function: Derived::forward must be callable as "
                          "forward(ctx, inputs...) returning a tensor, or forward(ctx, tensor& out, inputs...)");
            F::forward(r.ctx, out.owned_value, unwrap(args)...);
        }
        out.value = &out.owned_value;
        out.grad = &out.owned_grad;
        out.requires_grad = any_grad;
        r.ctx.m_output = m_num_nodes;
        r.backward = any_grad ? &function_backward<F> : nullptr;
        r.unreached = nullptr;
        ++m_num_records;
        return var_type(this, m_num_nodes++, m_generation);
    }

    /// Computes d loss / d v for every recorded v that requires a gradient. loss must be a
    /// scalar (one element). Gradients are overwritten, not added to earlier backward calls.
    void backward(var_type loss) {
        constexpr std::string_view where = "tessel::autograd::tape::backward";
        check(loss, where);
        node& l = node_at(loss);
        expects(l.value->numel() == 1, where, "the loss must have one element, got shape ", l.value->shape().str());
        expects(l.requires_grad, where, "the loss does not depend on any value that requires a gradient");
        for (index_t i = 0; i < m_num_nodes; ++i) m_nodes[static_cast<std::size_t>(i)]->grad_written = false;
        l.grad->resize(l.value->shape());
        parallel_for(B{}, 1, detail::fill_fn<T>{l.grad->data(), T(1)});
        l.grad_written = true;
        for (index_t k = m_num_records - 1; k >= 0; --k) {
            record& r = *m_records[static_cast<std::size_t>(k)];
            if (r.backward == nullptr) continue;
            node& out = *m_nodes[static_cast<std::size_t>(r.ctx.m_output)];
            if (!out.grad_written) {
                if (r.unreached) r.unreached(r.ctx);
                continue;
            }
            input_grads<B, T> g(*this, r.ctx);
            r.backward(r.ctx, *out.grad, g);
        }
        // Values the loss does not depend on get a zero gradient, so reading one never shows
        // a previous iteration's numbers.
        for (index_t i = 0; i < m_num_nodes; ++i) {
            node& n = *m_nodes[static_cast<std::size_t>(i)];
            if (!n.requires_grad || n.grad_written) continue;
            n.grad->resize(n.value->shape());
            parallel_for(B{}, n.grad->numel(), detail::fill_fn<T>{n.grad->data(), T(0)});
            n.grad_written = true;
        }
    }

    [[nodiscard]] const tensor_type& value(const var_type& v) const {
        check(v, "tessel::autograd::var::value");
        return *node_at(v).value;
    }
    [[nodiscard]] const tensor_type& grad(const var_type& v) const {
        check(v, "tessel::autograd::var::grad");
        const node& n = node_at(v);
        expects(n.requires_grad, "tessel::autograd::var::grad", "value #", v.id(), " (shape ",
                n.value->shape().str(), ") does not require a gradient");
        return *n.grad;
    }
    [[nodiscard]] bool requires_grad(const var_type& v) const {
        check(v, "tessel::autograd::var::requires_grad");
        return node_at(v).requires_grad;
    }
    [[nodiscard]] index_t num_values() const noexcept { return m_num_nodes; }
    [[nodiscard]] index_t num_records() const noexcept { return m_num_records; }
    /// Value and record slots allocated so far (they only grow, and only when a recording is
    /// longer than every earlier one).
    [[nodiscard]] std::size_t capacity() const noexcept { return m_nodes.size() + m_records.size(); }

private:
    friend class function_context<B, T>;
    friend class input_grads<B, T>;

    struct node {
        tensor_type owned_value, owned_grad;
        const tensor_type* value = nullptr;
        tensor_type* grad = nullptr;  // &owned_grad, or a parameter's gradient tensor
        bool requires_grad = false;
        bool grad_written = false;
    };
    struct record {
        function_context<B, T> ctx;
        void (*backward)(function_context<B, T>&, const tensor_type&, input_grads<B, T>&) = nullptr;
        void (*unreached)(function_context<B, T>&) = nullptr;
    };

    // Plain overloads rather than one deduced-return function: nvcc's front end rejects the
    // deduced form inside the requires-expressions of call().
    static const tensor_type& unwrap(const var_type& v) { return v.value(); }
    template <class A>
        requires(!detail::is_var_v<A>)
    static const A& unwrap(const A& a) {
        return a;
    }
    template <class F>
    static constexpr std::string_view op_name() {
        if constexpr (requires { std::string_view(F::name); })
            return std::string_view(F::name);
        else
            return "tessel::autograd::function";
    }

    void check(const var_type& v, std::string_view where) const {
        expects(v.valid(), where, "empty var");
        expects(&v.owner() == this, where, "var #", v.id(), " belongs to another tape");
        expects(v.generation() == m_generation && v.id() < m_num_nodes, where, "var #", v.id(),
                " is stale: its tape was reset after it was recorded");
    }
    node& node_at(const var_type& v) { return *m_nodes[static_cast<std::size_t>(v.id())]; }
    const node& node_at(const var_type& v) const { return *m_nodes[static_cast<std::size_t>(v.id())]; }
    node& node_at(index_t id) { return *m_nodes[static_cast<std::size_t>(id)]; }
    const node& node_at(index_t id) const { return *m_nodes[static_cast<std::size_t>(id)]; }

    // Slots are heap objects behind stable pointers, reused by index on the next recording.
    node& next_node() {
        if (m_num_nodes == static_cast<index_t>(m_nodes.size())) m_nodes.push_back(std::make_unique<node>());
        node& n = *m_nodes[static_cast<std::size_t>(m_num_nodes)];
        n.value = nullptr;
        n.grad = nullptr;
        n.requires_grad = false;
        n.grad_written = false;
        return n;
    }
    record& next_record() {
        if (m_num_records == static_cast<index_t>(m_records.size())) m_records.push_back(std::make_unique<record>());
        return *m_records[static_cast<std::size_t>(m_num_records)];
    }
    var_type add_leaf(const tensor_type* value, tensor_type* external_grad, bool requires_grad) {
        node& n = next_node();
        n.value = value;
        n.grad = external_grad ? external_grad : &n.owned_grad;
        n.requires_grad = requires_grad;
        return var_type(this, m_num_nodes++, m_generation);
    }

    template <class F>
    static void function_backward(function_context<B, T>& ctx, const tensor_type& dy, input_grads<B, T>& dx) {
        if constexpr (detail::backward_in_place<F, function_context<B, T>, tensor_type, input_grads<B, T>>) {
            F::backward(ctx, dy, dx);
        } else {
            static_assert(detail::backward_returns<F, function_context<B, T>, tensor_type>,
                          "tessel::autograd::function: Derived::backward must be callable as backward(ctx, dy) "
                          "returning the input gradients, or backward(ctx, dy, input_grads& dx)");
            auto g = F::backward(ctx, dy);
            using G = decltype(g);
            if constexpr (std::is_convertible_v<G, const tensor_type&>) {
                accumulate_returned(dx, 0, g);
            } else {
                expects(static_cast<index_t>(g.size()) == dx.size(), ctx.name(), "backward returned ", g.size(),
                        " gradients for ", dx.size(), " var inputs");
                for (std::size_t i = 0; i < g.size(); ++i) accumulate_returned(dx, static_cast<index_t>(i), g[i]);
            }
        }
    }
    static void accumulate_returned(input_grads<B, T>& dx, index_t i, const tensor_type& g) {
        const bool undefined = g.rank() == 0 && g.storage().size() == 0;
        if (!undefined) dx.accumulate(i, g);
    }
    template <class L>
    static void layer_backward(function_context<B, T>& ctx, const tensor_type& dy, input_grads<B, T>& dx) {
        L& l = const_cast<L&>(ctx.template object<L>(0));
        auto& nctx = const_cast<nn::context<B>&>(ctx.template object<nn::context<B>>(1));
        const tensor_type& g = l.backward(nctx, dy);
        dx.accumulate(0, g);
    }
    template <class L>
    static void layer_unreached(function_context<B, T>& ctx) {
        // The loss does not depend on this layer: its parameter gradients are zero.
        L& l = const_cast<L&>(ctx.template object<L>(0));
        for (auto& p : l.parameters()) parallel_for(B{}, p.grad->numel(), detail::fill_fn<T>{p.grad->data(), T(0)});
    }

    std::vector<std::unique_ptr<node>> m_nodes;
    std::vector<std::unique_ptr<record>> m_records;
    index_t m_num_nodes = 0;
    index_t m_num_records = 0;
    std::uint64_t m_generation = 1;
};

// ---- members that need the complete tape -------------------------------------------------------

template <Backend B, class T>
const tensor<T, B>& function_context<B, T>::input(index_t i) const {
    expects(i >= 0 && i < num_inputs(), m_name, "input ", i, " requested, the op has ", num_inputs());
    return *m_tape->node_at(m_inputs[static_cast<std::size_t>(i)]).value;
}
template <Backend B, class T>
bool function_context<B, T>::needs_input_grad(index_t i) const {
    expects(i >= 0 && i < num_inputs(), m_name, "input ", i, " requested, the op has ", num_inputs());
    return m_tape->node_at(m_inputs[static_cast<std::size_t>(i)]).requires_grad;
}
template <Backend B, class T>
const tensor<T, B>& function_context<B, T>::output() const {
    expects(m_output >= 0, m_name, "output() is only available in backward");
    return *m_tape->node_at(m_output).value;
}

template <Backend B, class T>
grad_target<T> input_grads<B, T>::target(index_t i) {
    expects(needed(i), m_ctx.name(), "input ", i, " does not require a gradient");
    auto& n = m_tape.node_at(m_ctx.m_inputs[static_cast<std::size_t>(i)]);
    if (!n.grad_written) {
        n.grad->resize(n.value->shape());
        n.grad_written = true;
        return {n.grad->data(), false};
    }
    return {n.grad->data(), true};
}

}  // namespace tessel::autograd
