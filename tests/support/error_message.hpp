// Test support: the message of the tessel::error a callable throws, for tests that assert what an
// error names. Shared so that an area's files can be compiled together (unity build) without two
// copies of the helper meeting in one translation unit.
#pragma once
#include <string>

#include "tessel/core/error.hpp"

namespace tessel::testing {

/// What f() throws as a tessel::error, or `none` when it returns normally (other exceptions pass).
template <class F>
std::string message_of(F&& f, const std::string& none = "") {
    try {
        f();
    } catch (const tessel::error& e) {
        return e.what();
    }
    return none;
}

}  // namespace tessel::testing
