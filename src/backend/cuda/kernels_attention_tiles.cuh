// What the two flash-attention kernels (kernels_attention.cu: mma.sync; kernels_attention_wgmma.cu: Hopper's
// warpgroup products; both read 16-bit and 8-bit segments) share: the head size they are built for, the key
// tile, the walk over a segment list tile by tile, and the exact widening of 8-bit values.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "backend/cuda/kernels.h"
#include "backend/cuda/kernels_common.cuh"
#include "backend/cuda/kernels_mma.cuh"

namespace amskv::backend::cuda {

constexpr int kDh = 64;    // head_dim of every VAR model
constexpr int kTile = 64;  // keys per tile

// The position in the sequence of key tiles: segment and first key. A segment's last tile may be partial
// (its keys past the end are masked); the next segment starts a fresh tile.
struct TileCursor {
  int segment = 0;
  int64_t first = 0;
  __device__ void advance(const SegmentList& s) {
    first += kTile;
    if (first >= s.tokens[segment]) {
      ++segment;
      first = 0;
    }
  }
};

// The A operands of a warp's 16 queries from q0 (rows g and g + 8; lane = 4g + t) for four k steps of 16
// dims, straight from global memory q [rows·heads][n][64]; queries past n are zeros (and never written).
template <class T>
__device__ __forceinline__ void load_query_operands(const T* q, int64_t rh, int64_t n, int64_t q0, int g, int t,
                                                    uint32_t (&qa)[4][4]) {
  for (int half = 0; half < 2; ++half) {
    const int64_t qi = q0 + g + 8 * half;
    const uint32_t* src = reinterpret_cast<const uint32_t*>(q + (rh * n + (qi < n ? qi : 0)) * kDh);
    for (int kk = 0; kk < 4; ++kk) {
      qa[kk][half] = qi < n ? src[kk * 8 + t] : 0u;          // dims kk·16 + 2t, +1
      qa[kk][half + 2] = qi < n ? src[kk * 8 + 4 + t] : 0u;  // dims kk·16 + 8 + 2t, +1
    }
  }
}

// A warp's 16 outputs from q0, normalised: o in the accumulator layout (element 4j + e: row g + 8·(e / 2),
// dims 8j + 2t + e % 2), each row divided by its quad's summed l_row times `scale`, written to
// out [row][query][head·64 + dim] for the queries below n.
template <class T>
__device__ __forceinline__ void store_outputs(const float (&o)[32], const float (&l_row)[2], float scale, T* out,
                                              int64_t r, int64_t h, int64_t heads, int64_t n, int64_t q0, int g,
                                              int t) {
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float l = l_row[half];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int64_t qi = q0 + g + 8 * half;
    if (qi >= n) continue;
    const float inv = 1.0f / (l * scale);
    T* dst = out + ((r * n + qi) * heads + h) * kDh;
#pragma unroll
    for (int j = 0; j < 8; ++j)
      *reinterpret_cast<uint32_t*>(dst + j * 8 + 2 * t) = Mma<T>::pack(o[4 * j + 2 * half] * inv, o[4 * j + 2 * half + 1] * inv);
  }
}

// Four int8 values (one 32-bit word, lowest byte first) as two packed pairs of T, exactly, with full-rate
// integer and float operations: the int-to-float conversion instructions run at a sixteenth of that rate,
// and converting every value of a tile with them made 8-bit attention a third slower than 16-bit.
// Each byte, offset by 128, becomes the low mantissa bits of a float (bf16) or a half (f16) whose
// exponent makes it exactly 2^23 + 128 + x (resp. 1024 + 128 + x); subtracting the offset leaves x.
template <class T>
struct Widen;

template <>
struct Widen<__half> {
  static __device__ __forceinline__ void run(uint32_t w, uint32_t& lo, uint32_t& hi) {
    const uint32_t u = w ^ 0x80808080u;
    const uint32_t a = __byte_perm(u, 0x64646464u, 0x4140), b = __byte_perm(u, 0x64646464u, 0x4342);
    const __half2 offset = __halves2half2(__ushort_as_half(0x6480), __ushort_as_half(0x6480));  // 1152
    const __half2 x = __hsub2(*reinterpret_cast<const __half2*>(&a), offset);
    const __half2 y = __hsub2(*reinterpret_cast<const __half2*>(&b), offset);
    lo = *reinterpret_cast<const uint32_t*>(&x);
    hi = *reinterpret_cast<const uint32_t*>(&y);
  }
};

template <>
struct Widen<__nv_bfloat16> {
  static __device__ __forceinline__ void run(uint32_t w, uint32_t& lo, uint32_t& hi) {
    const uint32_t u = w ^ 0x80808080u;
    uint32_t f[4];
    for (int i = 0; i < 4; ++i)  // 0x4B0000bb = 2^23 + bb
      f[i] = __float_as_uint(__uint_as_float(__byte_perm(u, 0x4B000000u, 0x7440 + i)) - 8388736.0f);
    // A small integer's float has no bits below its upper half: that half is its bf16.
    lo = __byte_perm(f[0], f[1], 0x7632);
    hi = __byte_perm(f[2], f[3], 0x7632);
  }
};

// Sixteen int8 values as eight packed pairs of T, in order.
template <class T>
__device__ __forceinline__ void widen16(const uint4& raw, uint32_t (&packed)[8]) {
  Widen<T>::run(raw.x, packed[0], packed[1]);
  Widen<T>::run(raw.y, packed[2], packed[3]);
  Widen<T>::run(raw.z, packed[4], packed[5]);
  Widen<T>::run(raw.w, packed[6], packed[7]);
}

// Tiles a list takes: each segment's keys in tiles of kTile.
inline int segment_tiles(const SegmentList& s) {
  int tiles = 0;
  for (int i = 0; i < s.count; ++i) tiles += static_cast<int>((s.tokens[i] + kTile - 1) / kTile);
  return tiles;
}

// Tiles of a list whose tiles are packed: a tile takes the next kTile keys whichever segments they are in,
// so only the list's last tile is partial. VAR's scales are short lists of short segments (1, 4, 9, ..., 256
// keys at 256px): a tile per segment padded a full cache's 680 keys of the last scale to 1024, and packed
// they take 704.
inline int packed_tiles(const SegmentList& s) {
  int64_t keys = 0;
  for (int i = 0; i < s.count; ++i) keys += s.tokens[i];
  return static_cast<int>((keys + kTile - 1) / kTile);
}

// The device's multiprocessors: how many blocks a launch needs to fill it. Read once, at the first launch
// (every attention launch asks; one device per process, as for the kernels' shared-memory opt-ins).
inline int multiprocessors() {
  static const int count = [] {
    int c = 0;
    AMSKV_CHECK(current_device_attribute(cudaDevAttrMultiProcessorCount, c),
                "cuda attention: the device's multiprocessor count cannot be read");
    return c;
  }();
  return count;
}

// Whether a list holds 8-bit segments (each kernel has an instantiation for such lists).
inline bool has_8bit_segments(const SegmentList& s) {
  for (int i = 0; i < s.count; ++i)
    if (s.k_scale[i] != nullptr) return true;
  return false;
}

// The same flash attention on the warpgroup kernel; the caller checks attention_wgmma_available().
bool attention_wgmma_available();
void launch_attention_wgmma(const void* q, DType t, int64_t rows, int64_t heads, int64_t n, const SegmentList& segs,
                            void* out, cudaStream_t s);

}  // namespace amskv::backend::cuda
