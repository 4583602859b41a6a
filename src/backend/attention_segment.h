// The one thing attention kernels know about the KV cache: a list of segments, each a run of cached
// tokens laid out [rows][heads][tokens][head_dim] with `head_stride` elements between consecutive
// (row, head) blocks, in the backend's memory. Kernels never know which policy produced the list.
//
// An 8-bit segment (dtype I8) holds every token's vector as integers q with one float32 scale per
// (row, head, token): the value is q·scale. Its scales are laid out [rows][heads][tokens] with
// `scale_stride` scales between (row, head) blocks (see Backend::quantize_blocks).
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace amskv {

struct AttentionSegment {
  const void* k = nullptr;  // backend memory, elements of `dtype`
  const void* v = nullptr;
  int64_t tokens = 0;
  int64_t head_stride = 0;  // elements between (row, head) blocks; >= tokens * head_dim
  DType dtype = DType::F32;
  const float* k_scale = nullptr;  // I8 only: per-token scales of k and v
  const float* v_scale = nullptr;
  int64_t scale_stride = 0;  // I8 only: scales between (row, head) blocks; >= tokens
};

// The same segment from (row, head) block `block` on: the rows of a chunk that starts at row r are the
// segment from block r · heads. The scales of an 8-bit segment move with its values.
inline AttentionSegment segment_from_block(AttentionSegment s, int64_t block) {
  const size_t skip = static_cast<size_t>(block * s.head_stride) * dtype_size(s.dtype);
  s.k = static_cast<const char*>(s.k) + skip;
  s.v = static_cast<const char*>(s.v) + skip;
  if (s.k_scale) s.k_scale += block * s.scale_stride;
  if (s.v_scale) s.v_scale += block * s.scale_stride;
  return s;
}

}  // namespace amskv
