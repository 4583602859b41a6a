// The one thing attention kernels know about the KV cache: a list of segments, each a run of cached
// tokens laid out [rows][heads][tokens][head_dim] with `head_stride` elements between consecutive
// (row, head) blocks. Kernels never know which policy produced the list.
#pragma once
#include <cstdint>

namespace amskv {

struct AttentionSegment {
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t tokens = 0;
  int64_t head_stride = 0;  // elements between (row, head) blocks; >= tokens * head_dim
};

}  // namespace amskv
