// The VQVAE's attention block core on the CPU: single head over all channels of one image.
#pragma once
#include <cstdint>

namespace amskv::cpu {

// qkv [3C, N] (q, k, v channel blocks of one image) -> out [C, N] with out[c, i] = Σ_j v[c, j]·softmax_j(q_i·k_j /
// sqrt(C)). `scores` is scratch of N·N floats.
void spatial_attention(const float* qkv, int64_t channels, int64_t positions, float* out, float* scores);

}  // namespace amskv::cpu
