// Token sampling from guided logits on the CPU, as the reference does it (spec C.6): top-k (ties at the k-th
// value survive), then top-p (ascending cumulative mass <= 1 - p removed, the largest always kept), then a
// draw from the softmax. The draw uses the engine's counter-based generator keyed by (seed, image, scale,
// position), so it does not bit-match PyTorch's stream, which itself changes between torch versions.
#pragma once
#include <cstdint>

namespace amskv::cpu {

// In place: entries removed by top-k/top-p become -inf. logits: [count, vocab].
void mask_top_k_top_p(float* logits, int64_t count, int64_t vocab, int64_t top_k, double top_p);

// Draws one token per position of one image's scale. logits [n, vocab] already masked.
void sample_tokens(const float* logits, int64_t n, int64_t vocab, uint64_t seed, uint64_t image, int scale,
                   int64_t* tokens);

// more_smooth: soft Gumbel-softmax weights of one image's scale, [n, vocab], from masked logits,
// softmax((logits * (1 + ratio) + g) / tau) with tau = max(0.27 * (1 - 0.95 * ratio), 0.005).
void gumbel_soft_weights(const float* logits, int64_t n, int64_t vocab, double ratio, uint64_t seed, uint64_t image,
                         int scale, float* weights);

}  // namespace amskv::cpu
