// GroupNorm over NCHW float32 activations (PyTorch nn.GroupNorm semantics), optionally followed by SiLU.
#pragma once
#include <cstdint>

namespace amskv::cpu {

// y[b, c, :] = (x[b, c, :] − mean) / sqrt(var + eps) · gamma[c] + beta[c], mean and biased variance over the
// channels of c's group (channels split into `groups` consecutive groups) and all hw positions, computed in
// double (two passes). With `fuse_silu`, y = SiLU(y). x == y is allowed; gamma/beta may be null (no affine).
// Throws when channels is not a multiple of groups.
void group_norm(const float* x, float* y, int64_t batch, int64_t channels, int64_t hw, int64_t groups,
                const float* gamma, const float* beta, float eps, bool fuse_silu);

// The same for x [batch, channels, h, w], writing y as zero-padded planes [batch, channels, h + 2·pad, w + 2·pad]
// (borders set to 0), the input layout of cpu::conv2d_padded. x and y must not overlap.
void group_norm_padded(const float* x, float* y, int64_t batch, int64_t channels, int64_t h, int64_t w, int64_t pad,
                       int64_t groups, const float* gamma, const float* beta, float eps, bool fuse_silu);

}  // namespace amskv::cpu
