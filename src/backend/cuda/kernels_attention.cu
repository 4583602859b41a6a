// Attention of one scale's queries over the KV cache's segment list. On sm_90a builds on a 9.0 device, 16-bit
// queries go to the warpgroup kernel of kernels_attention_wgmma.cu (launch_attention below); the kernels here
// serve everything else.
//
// The flash kernel (bf16/f16, head_dim 64): a block of 4 warps takes 64 or 128 queries of one (row, head);
// every 64-key tile of every segment is brought into shared memory with cp.async (double-buffered) and each warp
// computes its 16 queries' scores with mma.sync m16n8k16 (fp32 accumulation), an online softmax in
// registers, and P·V with the probabilities reused as the A operand straight from the score registers. No
// score matrix ever reaches memory. Keys past a segment's end are masked in its last tile (the backend
// merges scales stored side by side into one segment first).
//
// 8-bit segments (an int8 KV store): their tiles arrive by cp.async as integers and per-token scales into a
// staging area; the integers are widened (exactly) into the 16-bit tile buffer before the tile's products,
// and the scales multiply the scores and the probabilities. Lists without such segments run the kernel
// unchanged.
//
// The simple kernel (any type, any head_dim up to 256): one warp per query, an online softmax over every
// key; used for fp32 (golden-test mode) and, in a second pass, to measure the per-segment attention mass
// for the density analysis.
#include <type_traits>

#include "backend/cuda/kernels.h"
#include "backend/cuda/kernels_common.cuh"
#include "backend/cuda/kernels_attention_tiles.cuh"
#include "backend/cuda/kernels_mma.cuh"

namespace amskv::backend::cuda {

namespace {

// ---------------------------------------------------------------------------------------------------------
// Simple kernel

// Element `i` of segment `seg`'s keys (values = false) or values in block rh, as float.
template <class T>
__device__ __forceinline__ float segment_value(const SegmentList& segs, int seg, bool values, int64_t rh, int64_t key,
                                               int64_t dh, int64_t d) {
  const int64_t at = rh * segs.head_stride[seg] + key * dh + d;
  const float* scale = values ? segs.v_scale[seg] : segs.k_scale[seg];
  const void* base = values ? segs.v[seg] : segs.k[seg];
  if (scale) return static_cast<float>(static_cast<const int8_t*>(base)[at]) * scale[rh * segs.scale_stride[seg] + key];
  return to_float(static_cast<const T*>(base)[at]);
}

template <class T, bool kMass>
__global__ void attention_simple_kernel(const T* q, int64_t rows, int64_t heads, int64_t n, int64_t dh,
                                        SegmentList segs, T* out, double* mass, float* key_mass, int64_t keys) {
  constexpr int kMaxPerLane = 8;  // head_dim <= 256
  const int64_t item = blockIdx.x * int64_t{blockDim.x / 32} + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (item >= rows * heads * n) return;
  const int64_t i = item % n, rh = item / n, h = rh % heads, r = rh / heads;
  const int per = static_cast<int>((dh + 31) / 32);
  float qv[kMaxPerLane], acc[kMaxPerLane];
  const T* qi = q + item * dh;
  for (int j = 0; j < kMaxPerLane; ++j) {
    const int64_t d = lane + 32 * j;
    qv[j] = (j < per && d < dh) ? to_float(qi[d]) : 0.0f;
    acc[j] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int s = 0; s < segs.count; ++s) {
    for (int64_t key = 0; key < segs.tokens[s]; ++key) {
      float dot = 0.0f;
      for (int j = 0; j < per; ++j) {
        const int64_t d = lane + 32 * j;
        if (d < dh) dot += qv[j] * segment_value<T>(segs, s, false, rh, key, dh, d);
      }
      dot = warp_sum(dot);
      const float m_new = fmaxf(m, dot);
      const float corr = expf(m - m_new), p = expf(dot - m_new);
      l = l * corr + p;
      for (int j = 0; j < per; ++j) {
        const int64_t d = lane + 32 * j;
        const float vv = d < dh ? segment_value<T>(segs, s, true, rh, key, dh, d) : 0.0f;
        acc[j] = acc[j] * corr + p * vv;
      }
      m = m_new;
    }
  }
  T* o = out + ((r * n + i) * heads + h) * dh;
  for (int j = 0; j < per; ++j) {
    const int64_t d = lane + 32 * j;
    if (d < dh) o[d] = from_float<T>(acc[j] / l);
  }
  if constexpr (kMass) {
    // Second pass with the final max and sum: the probability of every key for this query, summed per
    // segment and/or kept per key.
    int64_t first_key = 0;
    for (int s = 0; s < segs.count; ++s) {
      double part = 0.0;
      for (int64_t key = 0; key < segs.tokens[s]; ++key) {
        float dot = 0.0f;
        for (int j = 0; j < per; ++j) {
          const int64_t d = lane + 32 * j;
          if (d < dh) dot += qv[j] * segment_value<T>(segs, s, false, rh, key, dh, d);
        }
        dot = warp_sum(dot);
        const float p = expf(dot - m) / l;
        part += p;
        if (key_mass && lane == 0) atomicAdd(key_mass + rh * keys + first_key + key, p);
      }
      if (mass && lane == 0) atomicAdd(mass + rh * segs.count + s, part);
      first_key += segs.tokens[s];
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Flash kernel

constexpr int kStride = 72;   // shared-memory row stride in elements: 144 bytes, conflict-free fragment loads
constexpr int kWarps = 4;

// A 64-row tile of 64 elements per row into shared memory [64][kStride]; rows >= valid are zeros.
template <class T>
__device__ __forceinline__ void load_tile(T (*dst)[kStride], const T* src, int64_t valid) {
  for (int c = threadIdx.x; c < kTile * 8; c += kWarps * 32) {
    const int row = c >> 3, col = (c & 7) * 8;
    const bool ok = row < valid;
    copy16(&dst[row][col], ok ? src + int64_t{row} * kDh + col : src, ok);
  }
}

// An 8-bit tile: 64 rows of 64 bytes into staging, rows >= valid zeros.
__device__ __forceinline__ void load_tile8(int8_t (*dst)[kDh], const int8_t* src, int64_t valid) {
  for (int c = threadIdx.x; c < kTile * 4; c += kWarps * 32) {
    const int row = c >> 2, col = (c & 3) * 16;
    const bool ok = row < valid;
    copy16(&dst[row][col], ok ? src + int64_t{row} * kDh + col : src, ok);
  }
}

// The staged 8-bit tile's integers into a 16-bit tile buffer (the scales are applied to the scores and
// the probabilities instead: per key, that is 16 products per thread and tile rather than 64).
template <class T>
__device__ __forceinline__ void widen_tile(T (*dst)[kStride], const int8_t (*src)[kDh]) {
  for (int c = threadIdx.x; c < kTile * 4; c += kWarps * 32) {
    const int row = c >> 2, col = (c & 3) * 16;
    uint32_t packed[8];
    widen16<T>(*reinterpret_cast<const uint4*>(&src[row][col]), packed);
    *reinterpret_cast<uint4*>(&dst[row][col]) = make_uint4(packed[0], packed[1], packed[2], packed[3]);
    *reinterpret_cast<uint4*>(&dst[row][col + 8]) = make_uint4(packed[4], packed[5], packed[6], packed[7]);
  }
}

// kFrags m16 fragments of queries per warp: the K and V fragments a warp loads from shared memory serve
// 16·kFrags queries. With one fragment every ldmatrix.x4 feeds two mma, and shared-memory bandwidth, not
// the tensor cores, bounds the kernel; two fragments halve that traffic per product (248 registers, two blocks per SM).
//
// kInt8: some segments are 8-bit. Their integers are staged (one staging area: 8 KiB beside the 36 KiB of
// tile buffers) and widened at the start of the tile's iteration, so the next tile's copies are issued after
// that, still ahead of the tile's products. Their per-key scales (double-buffered like the tiles) multiply
// the tile's scores (K) and its probabilities before P·V (V).
template <class T, int kFrags, bool kInt8>
__global__ void __launch_bounds__(kWarps * 32, kFrags == 1 ? 1 : 2)
    attention_flash_kernel(const T* q, int64_t rows, int64_t heads, int64_t n, SegmentList segs, int total_tiles, T* out) {
  constexpr int kQueries = kWarps * 16 * kFrags;
  // f16 probabilities times a V scale (max|v| / 127) would reach f16's subnormal range 127 times sooner
  // than the probabilities themselves: with 8-bit segments every tile's probabilities are packed times 127
  // (times the scale: max|v|) and the output divided by it at the end. bf16 has float32's range.
  constexpr float kPScale = kInt8 && std::is_same_v<T, __half> ? 127.0f : 1.0f;
  __shared__ __align__(16) T sk[2][kTile][kStride];
  __shared__ __align__(16) T sv[2][kTile][kStride];
  constexpr int kStage = kInt8 ? kTile : 1;
  __shared__ __align__(16) int8_t stage_k[kStage][kDh];
  __shared__ __align__(16) int8_t stage_v[kStage][kDh];
  __shared__ __align__(16) float stage_scale[2][2][kStage];  // [tile buffer][K, V][key]

  const int64_t qtiles = (n + kQueries - 1) / kQueries;
  const int64_t block = blockIdx.x;
  const int64_t qt = block % qtiles, rh = block / qtiles;
  const int64_t h = rh % heads, r = rh / heads;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int64_t q0 = qt * kQueries + warp * 16 * kFrags;  // this warp's first query

  TileCursor fetch;
  auto prefetch = [&](int buf) {
    const int s = fetch.segment;
    const int64_t off = rh * segs.head_stride[s] + fetch.first * kDh;
    const int64_t valid = segs.tokens[s] - fetch.first;
    if (kInt8 && segs.k_scale[s]) {
      load_tile8(stage_k, static_cast<const int8_t*>(segs.k[s]) + off, valid);
      load_tile8(stage_v, static_cast<const int8_t*>(segs.v[s]) + off, valid);
      const int row = threadIdx.x & (kTile - 1), which = threadIdx.x / kTile;  // 128 threads: 64 K, 64 V scales
      const float* src = (which ? segs.v_scale[s] : segs.k_scale[s]) + rh * segs.scale_stride[s] + fetch.first;
      copy4(&stage_scale[buf][which][row], row < valid ? src + row : src, row < valid);
    } else {
      load_tile(sk[buf], static_cast<const T*>(segs.k[s]) + off, valid);
      load_tile(sv[buf], static_cast<const T*>(segs.v[s]) + off, valid);
    }
    fetch.advance(segs);
  };
  prefetch(0);
  copy_commit();

  // Q's A fragments straight from global memory, once (queries past n are zeros and never written).
  uint32_t qa[kFrags][4][4];
  for (int f = 0; f < kFrags; ++f) load_query_operands(q, rh, n, q0 + f * 16, g, t, qa[f]);
  float o[kFrags][8][4];  // output accumulators: 8 tiles of 8 dims per fragment
  float m_row[kFrags][2], l_row[kFrags][2];  // rows g and g + 8 of each fragment
  for (int f = 0; f < kFrags; ++f) {
    for (int dt = 0; dt < 8; ++dt)
      for (int e = 0; e < 4; ++e) o[f][dt][e] = 0.0f;
    for (int half = 0; half < 2; ++half) m_row[f][half] = -INFINITY, l_row[f][half] = 0.0f;
  }

  TileCursor compute;
  constexpr float kLog2e = 1.4426950408889634f;
  for (int tile = 0; tile < total_tiles; ++tile) {
    const int buf = tile & 1;
    const bool int8_tile = kInt8 && segs.k_scale[compute.segment] != nullptr;
    if constexpr (kInt8) {
      copy_wait<0>();
      __syncthreads();
      if (int8_tile) {
        widen_tile(sk[buf], stage_k);
        widen_tile(sv[buf], stage_v);
        __syncthreads();  // the tile is complete, and the staging area free for the next one
      }
      if (tile + 1 < total_tiles) {
        prefetch(buf ^ 1);
        copy_commit();
      }
    } else {
      if (tile + 1 < total_tiles) {
        prefetch(buf ^ 1);
        copy_commit();
        copy_wait<1>();
      } else {
        copy_wait<0>();
      }
      __syncthreads();
    }
    // Scores against the tile's 64 keys. One ldmatrix.x4 brings the B fragments of 8 keys for 32 dims (two
    // k-steps): lanes 8i..8i+7 address the rows of matrix i.
    float sc[kFrags][8][4];
    for (int nt = 0; nt < 8; ++nt) {
      for (int f = 0; f < kFrags; ++f)
        for (int e = 0; e < 4; ++e) sc[f][nt][e] = 0.0f;
      for (int kk = 0; kk < 4; kk += 2) {
        const int mi = lane >> 3;
        uint32_t b[4];
        ldmatrix_x4<false>(b, &sk[buf][nt * 8 + (lane & 7)][(kk + (mi >> 1)) * 16 + (mi & 1) * 8]);
        for (int f = 0; f < kFrags; ++f) {
          Mma<T>::run(sc[f][nt], qa[f][kk], b[0], b[1]);
          Mma<T>::run(sc[f][nt], qa[f][kk + 1], b[2], b[3]);
        }
      }
    }
    if (int8_tile) {  // the keys' scales (a key's column: nt·8 + 2t, + 1)
      for (int nt = 0; nt < 8; ++nt) {
        const float2 ks = *reinterpret_cast<const float2*>(&stage_scale[buf][0][nt * 8 + 2 * t]);
        for (int f = 0; f < kFrags; ++f) {
          sc[f][nt][0] *= ks.x, sc[f][nt][1] *= ks.y;
          sc[f][nt][2] *= ks.x, sc[f][nt][3] *= ks.y;
        }
      }
    }
    // Keys past a segment's end.
    const int64_t valid = segs.tokens[compute.segment] - compute.first;
    if (valid < kTile) {
      for (int f = 0; f < kFrags; ++f)
        for (int nt = 0; nt < 8; ++nt)
          for (int e = 0; e < 4; ++e)
            if (nt * 8 + 2 * t + (e & 1) >= valid) sc[f][nt][e] = -INFINITY;
    }
    compute.advance(segs);
    // Online softmax: rows g (elements 0, 1) and g + 8 (elements 2, 3); the 4 lanes of a quad share a row.
    for (int f = 0; f < kFrags; ++f)
      for (int half = 0; half < 2; ++half) {
        float mx = -INFINITY;
        for (int nt = 0; nt < 8; ++nt) mx = fmaxf(mx, fmaxf(sc[f][nt][2 * half], sc[f][nt][2 * half + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m_row[f][half], mx);
        const float corr = exp2f((m_row[f][half] - m_new) * kLog2e);
        float sum = 0.0f;
        for (int nt = 0; nt < 8; ++nt)
          for (int e = 2 * half; e < 2 * half + 2; ++e) {
            sc[f][nt][e] = exp2f((sc[f][nt][e] - m_new) * kLog2e);
            sum += sc[f][nt][e];
          }
        l_row[f][half] = l_row[f][half] * corr + sum;  // this lane's keys only; the quad is summed at the end
        m_row[f][half] = m_new;
        for (int dt = 0; dt < 8; ++dt) {
          o[f][dt][2 * half] *= corr;
          o[f][dt][2 * half + 1] *= corr;
        }
      }
    if (int8_tile) {  // the values' scales, once the row sums have the probabilities themselves
      for (int nt = 0; nt < 8; ++nt) {
        const float2 vs = *reinterpret_cast<const float2*>(&stage_scale[buf][1][nt * 8 + 2 * t]);
        const float vx = vs.x * kPScale, vy = vs.y * kPScale;
        for (int f = 0; f < kFrags; ++f) {
          sc[f][nt][0] *= vx, sc[f][nt][1] *= vy;
          sc[f][nt][2] *= vx, sc[f][nt][3] *= vy;
        }
      }
    } else if constexpr (kPScale != 1.0f) {
      for (int f = 0; f < kFrags; ++f)
        for (int nt = 0; nt < 8; ++nt)
          for (int e = 0; e < 4; ++e) sc[f][nt][e] *= kPScale;
    }
    // O += P·V: the score registers of two key tiles form one A fragment of 16 keys.
    for (int kc = 0; kc < 4; ++kc) {
      uint32_t pa[kFrags][4];
      for (int f = 0; f < kFrags; ++f) {
        pa[f][0] = Mma<T>::pack(sc[f][2 * kc][0], sc[f][2 * kc][1]);
        pa[f][1] = Mma<T>::pack(sc[f][2 * kc][2], sc[f][2 * kc][3]);
        pa[f][2] = Mma<T>::pack(sc[f][2 * kc + 1][0], sc[f][2 * kc + 1][1]);
        pa[f][3] = Mma<T>::pack(sc[f][2 * kc + 1][2], sc[f][2 * kc + 1][3]);
      }
      // V's B fragments (pairs of consecutive keys at one dim) transposed out of the [key][dim] tile: one
      // ldmatrix.x4.trans covers 16 keys for 16 dims (two 8-dim output tiles).
      for (int dt = 0; dt < 8; dt += 2) {
        const int mi = lane >> 3;
        uint32_t b[4];
        ldmatrix_x4<true>(b, &sv[buf][kc * 16 + (mi & 1) * 8 + (lane & 7)][(dt + (mi >> 1)) * 8]);
        for (int f = 0; f < kFrags; ++f) {
          Mma<T>::run(o[f][dt], pa[f], b[0], b[1]);
          Mma<T>::run(o[f][dt + 1], pa[f], b[2], b[3]);
        }
      }
    }
    __syncthreads();  // the buffer is refilled by the next iteration's prefetch
  }
  // Normalise and write [row][query][head·64 + dim].
  for (int f = 0; f < kFrags; ++f)
    store_outputs(reinterpret_cast<const float(&)[32]>(o[f]), l_row[f], kPScale, out, r, h, heads, n, q0 + f * 16, g, t);
}

template <class T, bool kMass>
void launch_simple(const void* q, int64_t rows, int64_t heads, int64_t n, int64_t dh, const SegmentList& segs,
                   void* out, double* mass, float* key_mass, cudaStream_t s) {
  constexpr int kWarpsPerBlock = 8;
  const int64_t items = rows * heads * n;
  int64_t keys = 0;
  for (int i = 0; i < segs.count; ++i) keys += segs.tokens[i];
  const auto blocks = static_cast<unsigned>((items + kWarpsPerBlock - 1) / kWarpsPerBlock);
  attention_simple_kernel<T, kMass><<<blocks, 32 * kWarpsPerBlock, 0, s>>>(
      static_cast<const T*>(q), rows, heads, n, dh, segs, static_cast<T*>(out), mass, key_mass, keys);
}

// Two query fragments per warp (128 queries per block) where that pads n no more than 64-query blocks do
// and still gives every multiprocessor two blocks; one otherwise (small scales, batch 1).
template <class T, bool kInt8>
void launch_flash(const void* q, int64_t rows, int64_t heads, int64_t n, const SegmentList& segs, int tiles,
                  void* out, cudaStream_t s) {
  const int64_t tiles64 = (n + 63) / 64, tiles128 = (n + 127) / 128;
  const bool two = 2 * tiles128 == tiles64 && tiles128 * heads * rows >= 2 * int64_t{multiprocessors()};
  const int64_t blocks = (two ? tiles128 : tiles64) * heads * rows;
  AMSKV_CHECK(blocks < (int64_t{1} << 31), "cuda attention: too many blocks");
  const auto grid = static_cast<unsigned>(blocks);
  if (two)
    attention_flash_kernel<T, 2, kInt8><<<grid, kWarps * 32, 0, s>>>(static_cast<const T*>(q), rows, heads, n, segs,
                                                                      tiles, static_cast<T*>(out));
  else
    attention_flash_kernel<T, 1, kInt8><<<grid, kWarps * 32, 0, s>>>(static_cast<const T*>(q), rows, heads, n, segs,
                                                                      tiles, static_cast<T*>(out));
}

template <class T>
void launch_flash(const void* q, int64_t rows, int64_t heads, int64_t n, const SegmentList& segs, int tiles,
                  void* out, cudaStream_t s) {
  if (has_8bit_segments(segs))
    launch_flash<T, true>(q, rows, heads, n, segs, tiles, out, s);
  else
    launch_flash<T, false>(q, rows, heads, n, segs, tiles, out, s);
}

void check_segments(const SegmentList& segs, int64_t head_dim) {
  AMSKV_CHECK(segs.count > 0 && segs.count <= kMaxSegments, "cuda attention: ", segs.count, " segments (1..",
              kMaxSegments, " supported)");
  AMSKV_CHECK(head_dim > 0 && head_dim <= 256, "cuda attention: head dim ", head_dim, " (at most 256)");
  for (int i = 0; i < segs.count; ++i) {
    AMSKV_CHECK(segs.tokens[i] > 0 && segs.head_stride[i] >= segs.tokens[i] * head_dim, "cuda attention: segment ", i,
                " has ", segs.tokens[i], " tokens and head stride ", segs.head_stride[i]);
    AMSKV_CHECK((segs.k_scale[i] == nullptr) == (segs.v_scale[i] == nullptr) &&
                    (segs.k_scale[i] == nullptr || segs.scale_stride[i] >= segs.tokens[i]),
                "cuda attention: segment ", i, " has inconsistent 8-bit scales");
  }
}

}  // namespace

void launch_attention(const void* q, DType t, int64_t rows, int64_t heads, int64_t n, int64_t head_dim,
                      const SegmentList& segs, void* out, cudaStream_t s) {
  if (rows * heads * n == 0) return;
  check_segments(segs, head_dim);
  if (head_dim == kDh && (t == DType::BF16 || t == DType::F16)) {
    if (attention_wgmma_available())
      launch_attention_wgmma(q, t, rows, heads, n, segs, out, s);  // it counts its own tiles (packed or not)
    else if (t == DType::BF16)
      launch_flash<__nv_bfloat16>(q, rows, heads, n, segs, segment_tiles(segs), out, s);
    else
      launch_flash<__half>(q, rows, heads, n, segs, segment_tiles(segs), out, s);
  } else {
    AMSKV_DISPATCH_FLOAT(t, T, launch_simple<T, false>(q, rows, heads, n, head_dim, segs, out, nullptr, nullptr, s));
  }
  AMSKV_CUDA_LAUNCHED();
}

void launch_attention_with_mass(const void* q, DType t, int64_t rows, int64_t heads, int64_t n, int64_t head_dim,
                                const SegmentList& segs, void* out, double* mass, float* key_mass, cudaStream_t s) {
  if (rows * heads * n == 0) return;
  check_segments(segs, head_dim);
  int64_t keys = 0;
  for (int i = 0; i < segs.count; ++i) keys += segs.tokens[i];
  if (mass) AMSKV_CUDA_CHECK(cudaMemsetAsync(mass, 0, sizeof(double) * rows * heads * segs.count, s));
  if (key_mass) AMSKV_CUDA_CHECK(cudaMemsetAsync(key_mass, 0, sizeof(float) * rows * heads * keys, s));
  AMSKV_DISPATCH_FLOAT(t, T, launch_simple<T, true>(q, rows, heads, n, head_dim, segs, out, mass, key_mass, s));
  AMSKV_CUDA_LAUNCHED();
}

}  // namespace amskv::backend::cuda
