// What a convolution's column builder (im2col, the implicit-GEMM kernel) does to each input value of plane p
// (image · channels + channel) before it enters the product: nothing, or the decoder's GroupNorm (per-plane
// scale and shift) and SiLU, so that the normalised input never goes through memory.
//
// f.at(p) is f bound to plane p, its scale and shift read once: kernels bind a plane before transforming its
// values. Read per value, they were most of the layout kernel's loads (two per value beside half a load of
// input).
#pragma once
#include <cstdint>

namespace amskv::backend::cuda {

struct AsIs {
  struct Plane {
    __device__ float operator()(float v) const { return v; }
    __device__ float for_16bit(float v) const { return v; }
  };
  __device__ Plane at(int64_t) const { return {}; }
};
struct Normalised {
  const float* scale;  // [batch · channels]: plane p's
  const float* shift;
  bool silu;
  struct Plane {
    float scale, shift;
    bool silu;
    __device__ float operator()(float v) const { return apply<false>(v); }
    // The same for a value rounded to bf16 or f16 next: the fast exponential and division (relative error
    // ~1e-6, far below that rounding). With the precise ones the layout kernel of the implicit-GEMM
    // convolutions ran at half the speed of its un-normalised form, bound by arithmetic, not memory.
    __device__ float for_16bit(float v) const { return apply<true>(v); }

   private:
    template <bool kFast>
    __device__ float apply(float v) const {
      v = v * scale + shift;
      if (!silu) return v;
      return kFast ? __fdividef(v, 1.0f + __expf(-v)) : v / (1.0f + expf(-v));
    }
  };
  __device__ Plane at(int64_t p) const { return {scale[p], shift[p], silu}; }
};

// g(v), g bound to a plane, on its way into a column or layout of type Y.
template <class Y, class G>
__device__ __forceinline__ float transform_for(const G& g, float v) {
  if constexpr (sizeof(Y) == 2)
    return g.for_16bit(v);
  else
    return g(v);
}
}  // namespace amskv::backend::cuda
