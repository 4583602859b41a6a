// The 8-bit KV store's write: one K or V vector per warp quarter (8 lanes), its largest magnitude reduced
// across those lanes, then every value rounded with backend/kv_int8.h's rule (the CPU's).
#include "backend/cuda/kernels.h"
#include "backend/cuda/kernels_common.cuh"
#include "backend/kv_int8.h"

namespace amskv::backend::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kLanesPerVector = 8;

template <class T>
__global__ void quantize_kv_kernel(const T* src, int64_t src_stride, int8_t* dst, int64_t dst_stride, float* scales,
                                   int64_t scale_stride, int64_t tokens, int64_t width, int64_t vectors) {
  const int64_t vec = (blockIdx.x * int64_t{blockDim.x} + threadIdx.x) / kLanesPerVector;
  const int lane = threadIdx.x % kLanesPerVector;
  // Lanes of a vector past the end still take part in the shuffles, with nothing to do.
  const bool live = vec < vectors;
  const int64_t b = live ? vec / tokens : 0, t = live ? vec % tokens : 0;
  const T* v = src + b * src_stride + t * width;
  float m = 0.0f;
  if (live)
    for (int64_t d = lane; d < width; d += kLanesPerVector) m = fmaxf(m, fabsf(to_float(v[d])));
  for (int off = kLanesPerVector / 2; off > 0; off /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
  if (!live) return;
  const float inverse = kv_int8::inverse_for(m);
  int8_t* q = dst + b * dst_stride + t * width;
  for (int64_t d = lane; d < width; d += kLanesPerVector) q[d] = kv_int8::quantize(to_float(v[d]), inverse);
  if (lane == 0) scales[b * scale_stride + t] = kv_int8::scale_for(m);
}

}  // namespace

void launch_quantize_kv(const void* src, DType t, int64_t src_stride, int8_t* dst, int64_t dst_stride, float* scales,
                        int64_t scale_stride, int64_t tokens, int64_t width, int64_t blocks, cudaStream_t s) {
  const int64_t vectors = blocks * tokens;
  if (vectors == 0) return;
  const int64_t threads = vectors * kLanesPerVector;
  AMSKV_CHECK(threads / kThreads < (int64_t{1} << 31), "cuda quantize_kv: too many vectors");
  const auto grid = static_cast<unsigned>((threads + kThreads - 1) / kThreads);
  AMSKV_DISPATCH_FLOAT(t, T, {
    quantize_kv_kernel<T><<<grid, kThreads, 0, s>>>(static_cast<const T*>(src), src_stride, dst, dst_stride, scales,
                                                    scale_stride, tokens, width, vectors);
  });
  AMSKV_CUDA_LAUNCHED();
}

}  // namespace amskv::backend::cuda
