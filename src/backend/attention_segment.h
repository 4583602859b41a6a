// The one thing attention kernels know about the KV cache: a list of segments, each a run of cached
// tokens laid out [rows][heads][tokens][head_dim] with `head_stride` elements between consecutive
// (row, head) blocks, in the backend's memory. Kernels never know which policy produced the list.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace amskv {

struct AttentionSegment {
  const void* k = nullptr;  // backend memory, elements of `dtype`
  const void* v = nullptr;
  int64_t tokens = 0;
  int64_t head_stride = 0;  // elements between (row, head) blocks; >= tokens * head_dim
  DType dtype = DType::F32;
};

}  // namespace amskv
