// Shared pieces of the CUDA kernels: element types (float, bf16, f16) read and written through float,
// dispatch on the runtime DType, warp and block reductions, launch sizes.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "core/dtype.h"

namespace amskv::backend::cuda {

// An attribute of the device current now; false (and the runtime's error cleared) when it cannot be read.
inline bool current_device_attribute(cudaDeviceAttr attr, int& value) {
  int device = 0;
  if (cudaGetDevice(&device) == cudaSuccess && cudaDeviceGetAttribute(&value, attr, device) == cudaSuccess) return true;
  (void)cudaGetLastError();
  return false;
}

// The 32-bit shared-memory address of a generic pointer into shared memory, as PTX's shared-state operands
// take it.
__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

template <class T>
__device__ __forceinline__ float to_float(T v);
template <>
__device__ __forceinline__ float to_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
__device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }

template <class T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }

// Four consecutive elements through float: one 16-byte (float) or 8-byte (16-bit) access. The address must be
// aligned to that size; launchers check it and take a scalar kernel otherwise.
template <class T>
__device__ __forceinline__ float4 load4(const T* p) {
  if constexpr (sizeof(T) == 4) {
    return *reinterpret_cast<const float4*>(p);
  } else {
    const uint2 raw = *reinterpret_cast<const uint2*>(p);
    const T* e = reinterpret_cast<const T*>(&raw);
    return make_float4(to_float(e[0]), to_float(e[1]), to_float(e[2]), to_float(e[3]));
  }
}
template <class T>
__device__ __forceinline__ void store4(T* p, float4 v) {
  if constexpr (sizeof(T) == 4) {
    *reinterpret_cast<float4*>(p) = v;
  } else {
    uint2 raw;
    T* e = reinterpret_cast<T*>(&raw);
    e[0] = from_float<T>(v.x), e[1] = from_float<T>(v.y), e[2] = from_float<T>(v.z), e[3] = from_float<T>(v.w);
    *reinterpret_cast<uint2*>(p) = raw;
  }
}
// Two consecutive elements through float: one 8-byte (float) or 4-byte (16-bit) access, aligned to it.
template <class T>
__device__ __forceinline__ float2 load2(const T* p) {
  if constexpr (sizeof(T) == 4) {
    return *reinterpret_cast<const float2*>(p);
  } else {
    const uint32_t raw = *reinterpret_cast<const uint32_t*>(p);
    const T* e = reinterpret_cast<const T*>(&raw);
    return make_float2(to_float(e[0]), to_float(e[1]));
  }
}
template <class T>
__device__ __forceinline__ void store2(T* p, float a, float b) {
  if constexpr (sizeof(T) == 4) {
    *reinterpret_cast<float2*>(p) = make_float2(a, b);
  } else {
    uint32_t raw;
    T* e = reinterpret_cast<T*>(&raw);
    e[0] = from_float<T>(a), e[1] = from_float<T>(b);
    *reinterpret_cast<uint32_t*>(p) = raw;
  }
}
// Whether every address p + 4·i of a buffer of T is aligned for load4/store4.
inline bool aligned4(const void* p, size_t elem_size) {
  return reinterpret_cast<uintptr_t>(p) % (4 * elem_size) == 0;
}

// Runs `body` with T bound to the C++ type of a floating DType (F32, BF16, F16).
#define AMSKV_DISPATCH_FLOAT(dtype, T, ...)                                                   \
  do {                                                                                        \
    switch (dtype) {                                                                          \
      case ::amskv::DType::F32: { using T = float; __VA_ARGS__; break; }                       \
      case ::amskv::DType::BF16: { using T = __nv_bfloat16; __VA_ARGS__; break; }              \
      case ::amskv::DType::F16: { using T = __half; __VA_ARGS__; break; }                      \
      default: ::amskv::fail("cuda backend: unsupported element type ", ::amskv::dtype_name(dtype)); \
    }                                                                                         \
  } while (0)

template <class V>
__device__ __forceinline__ V warp_sum(V v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
template <class V>
__device__ V block_sum(V v) {
  __shared__ V partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // `partial` may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  V total = lane < warps ? partial[lane] : V(0);
  return warp_sum(total);
}

// Σa and Σb over a block of at most kMaxThreads threads (blockDim.x a multiple of 32) in one exchange through
// shared memory, for a kernel that sums once (no barrier before it guards a previous call's values); every
// thread gets both, summed warp by warp in order.
template <int kMaxThreads, class V>
__device__ __forceinline__ void block_sum_once(V& a, V& b) {
  __shared__ V partial[kMaxThreads / 32][2];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  a = warp_sum(a);
  b = warp_sum(b);
  if (lane == 0) partial[warp][0] = a, partial[warp][1] = b;
  __syncthreads();
  a = V(0), b = V(0);
#pragma unroll
  for (int w = 0; w < kMaxThreads / 32; ++w)
    if (w < warps) a += partial[w][0], b += partial[w][1];
}

__device__ __forceinline__ float block_max(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  float m = lane < warps ? partial[lane] : -INFINITY;
  return warp_max(m);
}

// Blocks of `threads` threads covering n items, capped at a few waves of the whole GPU so that grid-stride
// loops give every thread real work (millions of one-element blocks cost more to schedule than to run).
constexpr int64_t kMaxBlocks = 16384;
inline unsigned blocks_for(int64_t n, int threads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > kMaxBlocks ? kMaxBlocks : b));
}

// For kernels that walk planes with grid.y and positions with grid.x (both grid-stride): at most kMaxBlocks
// blocks in all, each covering at least 8 elements per thread.
inline dim3 plane_grid(int64_t planes, int64_t per_plane, int threads) {
  int64_t x = (per_plane + 8 * threads - 1) / (8 * threads);
  x = x < 1 ? 1 : (x > 64 ? 64 : x);
  int64_t y = kMaxBlocks / x;
  y = y > planes ? planes : y;
  y = y < 1 ? 1 : (y > 65535 ? 65535 : y);
  return dim3(static_cast<unsigned>(x), static_cast<unsigned>(y));
}

}  // namespace amskv::backend::cuda
