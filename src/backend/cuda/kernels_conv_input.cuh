// What a convolution's column builder (im2col, the implicit-GEMM kernel) does to each input value of plane p
// (image · channels + channel) before it enters the product: nothing, or the decoder's GroupNorm (per-plane
// scale and shift) and SiLU, so that the normalised input never goes through memory.
#pragma once
#include <cstdint>

namespace amskv::backend::cuda {

struct AsIs {
  __device__ float operator()(float v, int64_t) const { return v; }
  __device__ float for_16bit(float v, int64_t) const { return v; }
};
struct Normalised {
  const float* scale;  // [batch · channels]: plane p's
  const float* shift;
  bool silu;
  __device__ float operator()(float v, int64_t p) const { return apply<false>(v, p); }
  // The same for a value rounded to bf16 or f16 next: the fast exponential and division (relative error
  // ~1e-6, far below that rounding). With the precise ones the layout kernel of the implicit-GEMM
  // convolutions ran at half the speed of its un-normalised form, bound by arithmetic, not memory.
  __device__ float for_16bit(float v, int64_t p) const { return apply<true>(v, p); }

 private:
  template <bool kFast>
  __device__ float apply(float v, int64_t p) const {
    v = v * scale[p] + shift[p];
    if (!silu) return v;
    return kFast ? __fdividef(v, 1.0f + __expf(-v)) : v / (1.0f + expf(-v));
  }
};

// f(v) on its way into a column or layout of type Y.
template <class Y, class F>
__device__ __forceinline__ float transform_for(const F& f, float v, int64_t p) {
  if constexpr (sizeof(Y) == 2)
    return f.for_16bit(v, p);
  else
    return f(v, p);
}

}  // namespace amskv::backend::cuda
