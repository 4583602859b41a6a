// What the two flash-attention kernels (kernels_attention.cu: mma.sync, any 16-bit or 8-bit segments;
// kernels_attention_wgmma.cu: Hopper's warpgroup products, 16-bit segments) share: the head size they are
// built for, the key tile, and the walk over a segment list tile by tile.
#pragma once
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

// Tiles a list takes: each segment's keys in tiles of kTile.
inline int segment_tiles(const SegmentList& s) {
  int tiles = 0;
  for (int i = 0; i < s.count; ++i) tiles += static_cast<int>((s.tokens[i] + kTile - 1) / kTile);
  return tiles;
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

// Whether a list holds 8-bit segments (only the mma.sync kernel reads those).
inline bool has_8bit_segments(const SegmentList& s) {
  for (int i = 0; i < s.count; ++i)
    if (s.k_scale[i] != nullptr) return true;
  return false;
}

// The same flash attention on the warpgroup kernel; the caller checks attention_wgmma_available() and that
// the list has no 8-bit segments.
bool attention_wgmma_available();
void launch_attention_wgmma(const void* q, DType t, int64_t rows, int64_t heads, int64_t n, const SegmentList& segs,
                            int tiles, void* out, cudaStream_t s);

}  // namespace amskv::backend::cuda
