// The sampling settings of a generation (spec C.6): guidance scale (ramped linearly over scales), top-k,
// top-p, the soft "more smooth" path and the seed of the counter-based generator. The draws themselves are
// backend operations (Backend::cfg_blend, sample_tokens, soft_token_embedding).
#pragma once
#include <cstdint>

namespace amskv::model {

struct SamplingOptions {
  double cfg = 1.5;
  int64_t top_k = 0;   // 0: off
  double top_p = 0.0;  // 0: off
  bool more_smooth = false;
  uint64_t seed = 0;
};

}  // namespace amskv::model
