// Finds NaN and infinite weights. A checkpoint holding them loads fine but generates garbage (or NaN
// logits that sampling turns into token 0), far from the cause; `inspect` reports them and `generate`
// should refuse them.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "io/tensor_map.h"

namespace amskv::io {

struct NonFinite {
  std::string key;          // the first tensor (in key order) holding NaN or +-Inf
  int64_t count = 0;        // how many of its elements are not finite
  int64_t first_index = 0;  // flat index of its first one
  int64_t total = 0;        // non-finite elements over all tensors
  int64_t tensors = 0;      // tensors holding any
};

// Scans every floating-point tensor (F32, F64, F16, BF16; integers cannot be non-finite) for which `skip`
// (when given) is false: nullopt when all values are finite. Reads every weight once (about memory bandwidth;
// for a mapped checkpoint this also pages it in).
//
// Not every infinity is damage: a VAR checkpoint's attn_bias_for_masking buffer is the causal mask, -inf by
// design, and the engine never reads it; pass a `skip` for keys the model does not use.
std::optional<NonFinite> find_non_finite(const TensorMap& tensors,
                                         const std::function<bool(std::string_view key)>& skip = nullptr);

}  // namespace amskv::io
