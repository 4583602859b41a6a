#include "backend/cpu/kv_int8_ops.h"

#include <algorithm>
#include <cmath>

#include "backend/kv_int8.h"
#include "core/error.h"

namespace amskv::cpu {

void quantize_blocks(const float* src, int64_t src_stride, int8_t* dst, int64_t dst_stride, float* scales,
                     int64_t scale_stride, int64_t tokens, int64_t width, int64_t blocks) {
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t t = 0; t < tokens; ++t) {
      const float* v = src + b * src_stride + t * width;
      int8_t* q = dst + b * dst_stride + t * width;
      float m = 0.0f;
      for (int64_t d = 0; d < width; ++d) m = std::max(m, std::fabs(v[d]));
      const float inverse = kv_int8::inverse_for(m);
      for (int64_t d = 0; d < width; ++d) q[d] = kv_int8::quantize(v[d], inverse);
      scales[b * scale_stride + t] = kv_int8::scale_for(m);
    }
}

const float* segment_block(const AttentionSegment& s, bool values, int64_t rh, int64_t head_dim,
                           std::vector<float>& scratch) {
  const void* base = values ? s.v : s.k;
  if (s.dtype == DType::F32) return static_cast<const float*>(base) + rh * s.head_stride;
  AMSKV_CHECK(s.dtype == DType::I8 && s.k_scale && s.v_scale, "CPU attention reads float32 or 8-bit K/V segments, not ",
              dtype_name(s.dtype));
  const int8_t* q = static_cast<const int8_t*>(base) + rh * s.head_stride;
  const float* scale = (values ? s.v_scale : s.k_scale) + rh * s.scale_stride;
  scratch.resize(static_cast<size_t>(s.tokens * head_dim));
  for (int64_t t = 0; t < s.tokens; ++t)
    for (int64_t d = 0; d < head_dim; ++d)
      scratch[static_cast<size_t>(t * head_dim + d)] = static_cast<float>(q[t * head_dim + d]) * scale[t];
  return scratch.data();
}

}  // namespace amskv::cpu
