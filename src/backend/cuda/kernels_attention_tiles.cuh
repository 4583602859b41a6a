// What the two flash-attention kernels (kernels_attention.cu: mma.sync, any 16-bit or 8-bit segments;
// kernels_attention_wgmma.cu: Hopper's warpgroup products, 16-bit segments) share: the head size they are
// built for, the key tile, and the walk over a segment list tile by tile.
#pragma once
#include <cstdint>

#include "backend/cuda/kernels.h"
#include "backend/cuda/kernels_common.cuh"

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

// Tiles a list takes: each segment's keys in tiles of kTile.
inline int segment_tiles(const SegmentList& s) {
  int tiles = 0;
  for (int i = 0; i < s.count; ++i) tiles += static_cast<int>((s.tokens[i] + kTile - 1) / kTile);
  return tiles;
}

// The current device's multiprocessors: how many blocks a launch needs to fill it.
inline int multiprocessors() {
  int count = 0;
  AMSKV_CHECK(current_device_attribute(cudaDevAttrMultiProcessorCount, count),
              "cuda attention: the device's multiprocessor count cannot be read");
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
