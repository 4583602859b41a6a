// The paper's inter-scale key similarity (spec/amskv.md): the keys of scale s-1, reshaped per head to their
// pn_{s-1} x pn_{s-1} grid and upsampled bicubically to pn_s x pn_s, compared with the keys of scale s by
// cosine similarity per token and head, averaged over tokens, heads and rows. Segments hold float32 keys.
#pragma once
#include <cstdint>

#include "backend/attention_segment.h"

namespace amskv::cpu {

double inter_scale_key_similarity(const AttentionSegment& previous, int64_t previous_side,
                                  const AttentionSegment& current, int64_t current_side, int64_t rows,
                                  int64_t heads, int64_t head_dim);

}  // namespace amskv::cpu
