// tessel/core/error.hpp: the one exception type tessel throws, and helpers that build its message.
//
// Every check on user input (shapes, sizes, parameters, files) throws tessel::error whose message
// names the operation and the values involved, e.g.
//   "tessel::nn::conv2d::forward: input has 4 channels, the layer expects 3 (input shape [1,4,8,8])".
// Internal invariants use TESSEL_ASSERT, which is compiled out in release builds.
#pragma once
#include <cassert>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace tessel {

/// The exception thrown for invalid input or parameters. what() says what failed and where.
class error : public std::runtime_error {
public:
    error(std::string_view where, std::string_view what)
        : std::runtime_error(std::string(where) + ": " + std::string(what)), m_where(where) {}
    /// The operation that rejected its input, e.g. "tessel::slic".
    [[nodiscard]] const std::string& where() const noexcept { return m_where; }

private:
    std::string m_where;
};

namespace detail {
template <class... Args>
[[nodiscard]] std::string concat(Args&&... args) {
    std::ostringstream os;
    (os << ... << std::forward<Args>(args));
    return os.str();
}
}  // namespace detail

/// Throws tessel::error(where, message built from parts) unless cond holds.
/// @code tessel::expects(k > 0, "tessel::slic", "n_segments must be positive, got ", k); @endcode
template <class... Parts>
inline void expects(bool cond, std::string_view where, Parts&&... parts) {
    if (!cond) [[unlikely]]
        throw error(where, detail::concat(std::forward<Parts>(parts)...));
}

/// Unconditionally throws tessel::error(where, message built from parts).
template <class... Parts>
[[noreturn]] inline void fail(std::string_view where, Parts&&... parts) {
    throw error(where, detail::concat(std::forward<Parts>(parts)...));
}

}  // namespace tessel

#define TESSEL_ASSERT(cond) assert(cond)
