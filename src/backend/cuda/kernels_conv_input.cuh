// What a convolution's column builder (im2col, the implicit-GEMM kernel) does to each input value of plane p
// (image · channels + channel) before it enters the product: nothing, or the decoder's GroupNorm (per-plane
// scale and shift) and SiLU, so that the normalised input never goes through memory.
#pragma once
#include <cstdint>

namespace amskv::backend::cuda {

struct AsIs {
  __device__ float operator()(float v, int64_t) const { return v; }
};
struct Normalised {
  const float* scale;  // [batch · channels]: plane p's
  const float* shift;
  bool silu;
  __device__ float operator()(float v, int64_t p) const {
    v = v * scale[p] + shift[p];
    return silu ? v / (1.0f + expf(-v)) : v;
  }
};

}  // namespace amskv::backend::cuda
