// Softmax attention of one scale's queries over a list of KV segments, on the CPU.
#pragma once
#include <cstdint>
#include <span>

#include "backend/attention_segment.h"

namespace amskv::cpu {

// q: [rows][heads][n][head_dim], already scaled (VAR's l2-normalised queries times the head temperature;
// softmax scale 1). out: [rows][n][heads * head_dim] (heads concatenated, the order the projection expects).
// segment_mass, when not null, receives [rows][heads][segments]: the attention probability summed over the
// n queries and over the keys of each segment (the paper's attention density, before normalisation).
// key_mass, when not null, receives [rows][heads][keys]: the probability each key received, summed over
// the queries (H2O's accumulated attention).
void segmented_attention(const float* q, int64_t rows, int64_t heads, int64_t n, int64_t head_dim,
                         std::span<const AttentionSegment> segments, float* out, double* segment_mass,
                         float* key_mass = nullptr);

}  // namespace amskv::cpu
