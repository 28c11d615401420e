// tessel/nn/detail/checks.hpp: input checks shared by the nn blocks.
//
// Blocks reject empty inputs and wrong ranks up front, with the block's name in the message, so a
// shape error surfaces where it happens rather than as a silent no-op or an out-of-range read.
#pragma once
#include <string_view>

#include "tessel/core/error.hpp"
#include "tessel/core/shape.hpp"

namespace tessel::nn::detail {

/// Throws unless x has at least one element.
template <class Tensor>
void expect_nonempty(std::string_view where, const Tensor& x) {
    expects(x.numel() > 0, where, "empty input (shape ", x.shape().str(), ")");
}

/// Throws unless x is a non-empty rank-4 NCHW tensor.
template <class Tensor>
void expect_nchw(std::string_view where, const Tensor& x) {
    expects(x.rank() == 4, where, "expects an NCHW (rank-4) input, got shape ", x.shape().str());
    expect_nonempty(where, x);
}

}  // namespace tessel::nn::detail
