// Element-wise and normalisation steps of the VAR transformer block on the CPU.
#pragma once
#include <cstdint>

namespace amskv::cpu {

// y[r, t, :] = LayerNorm(x[r, t, :]) * (1 + scale[r, :]) + shift[r, :]; LayerNorm without affine, eps 1e-6,
// biased variance. x, y: [rows, tokens, width]; scale/shift rows are `mod_stride` floats apart.
void layer_norm_modulate(const float* x, int64_t rows, int64_t tokens, int64_t width, const float* scale,
                         const float* shift, int64_t mod_stride, float* y);

// x[r, t, :] += gate[r, :] * branch[r, t, :].
void gated_residual_add(float* x, const float* branch, int64_t rows, int64_t tokens, int64_t width,
                        const float* gate, int64_t gate_stride);

// Splits fused qkv [rows, n, 3C] (channel = which*C + head*dh + d) into q, k, v laid out
// [rows][heads][n][dh]; q and k are l2-normalised per head (eps 1e-12) and q is multiplied by tau[head].
void split_qkv_l2norm(const float* qkv, int64_t rows, int64_t n, int64_t heads, int64_t head_dim,
                      const float* tau, float* q, float* k, float* v);

}  // namespace amskv::cpu
