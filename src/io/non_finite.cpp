#include "io/non_finite.h"

namespace amskv::io {

namespace {

// Non-finite means all exponent bits set; counting with integer masks lets the loop vectorize.
template <class Bits>
int64_t count_non_finite(const void* data, int64_t n, Bits exponent, int64_t& first) {
  const auto* p = static_cast<const Bits*>(data);
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) count += (p[i] & exponent) == exponent;
  if (count > 0)
    for (first = 0; (p[first] & exponent) != exponent; ++first) {
    }
  return count;
}

int64_t count_in(const Tensor& t, int64_t& first) {
  switch (t.dtype()) {
    case DType::F32: return count_non_finite<uint32_t>(t.raw(), t.numel(), 0x7f800000u, first);
    case DType::F64: return count_non_finite<uint64_t>(t.raw(), t.numel(), 0x7ff0000000000000ull, first);
    case DType::F16: return count_non_finite<uint16_t>(t.raw(), t.numel(), uint16_t{0x7c00}, first);
    case DType::BF16: return count_non_finite<uint16_t>(t.raw(), t.numel(), uint16_t{0x7f80}, first);
    default: return 0;
  }
}

}  // namespace

std::optional<NonFinite> find_non_finite(const TensorMap& tensors,
                                         const std::function<bool(std::string_view key)>& skip) {
  std::optional<NonFinite> out;
  for (const auto& [key, t] : tensors.all()) {
    if (skip && skip(key)) continue;
    int64_t first = 0;
    const int64_t n = count_in(t, first);
    if (n == 0) continue;
    if (!out) out = NonFinite{key, n, first, 0, 0};
    out->total += n;
    ++out->tensors;
  }
  return out;
}

}  // namespace amskv::io
