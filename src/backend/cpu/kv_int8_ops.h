// The CPU side of the 8-bit KV format (backend/kv_int8.h): writing vectors into it and reading a segment's
// (row, head) block back as float32.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/attention_segment.h"

namespace amskv::cpu {

// Backend::quantize_blocks on float32 input.
void quantize_blocks(const float* src, int64_t src_stride, int8_t* dst, int64_t dst_stride, float* scales,
                     int64_t scale_stride, int64_t tokens, int64_t width, int64_t blocks);

// The keys (values = false) or values of block `rh` of a segment, [tokens][head_dim] float32: the segment's own
// memory for F32, else dequantized into `scratch`. Any other dtype is an error.
const float* segment_block(const AttentionSegment& s, bool values, int64_t rh, int64_t head_dim,
                           std::vector<float>& scratch);

}  // namespace amskv::cpu
