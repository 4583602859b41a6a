// The flash attention of kernels_attention.cu on Hopper's warpgroup products (sm_90a), for lists of 16-bit
// and 8-bit segments. A warpgroup takes 64 queries of one (row, head); a block of one or two warpgroups walks
// every 64-key tile of the list, brought into shared memory by cp.async two tiles ahead, in the 128-byte
// swizzle. Lists of 16-bit segments are walked packed (packed_tiles): a tile takes the next 64 keys wherever
// they lie, each row copied from its own segment, so that short segments share tiles; lists with 8-bit
// segments keep a tile per segment (a tile's keys share its segment's type and scales). The scores are one
// wgmma m64n64k16 per 16 dims with the queries as register operands (loaded once); the online softmax runs on
// the score registers, whose layout is the A operand's, so P·V is one wgmma per 16 keys with the
// probabilities in registers and the value tile read transposed (MN-major) by the instruction. Against the
// mma.sync kernel: no ldmatrix, no fragment loads from shared memory, and each 64×64×64 product of a
// warpgroup issued as four instructions rather than 32 per warp (64 with two fragments).
//
// The softmax's arithmetic weighs as much as the products (two blocks of two warpgroups per multiprocessor
// overlap one warpgroup's softmax with another's products): the exponent is one fused multiply-add and one
// ex2.approx.ftz; with exp2f of a difference, d36's attention took a third longer (~400 against ~305 ms per
// batch of 32). Keys past a segment's end are masked only in a segment's last, partial tile. Leaving a
// tile's P·V running into the next tile's scores (a fourth stage) made ptxas serialise the products (C7515)
// and measured slower (318 against 305 ms) than waiting for it.
//
// 8-bit segments (an int8 KV store): a tile's integers and per-key scales come by cp.async into the stage's
// staging area; when the tile's turn comes its integers are widened (exactly, kernels_attention_tiles.cuh)
// into the stage's own 16-bit buffers, in the swizzle, and the scales multiply the scores (K) and the
// probabilities (V), as in the mma.sync kernel. Lists without such segments run their own instantiation.
#include <type_traits>

#include "backend/cuda/kernels_attention_tiles.cuh"
#include "backend/cuda/kernels_common.cuh"
#include "backend/cuda/kernels_mma.cuh"
#include "backend/cuda/kernels_wgmma.cuh"

namespace amskv::backend::cuda {

namespace {

constexpr int kStages = 3;  // the current tile and two ahead
constexpr int kTileBytes = kTile * kDh * 2;  // 64 rows of 128 bytes
constexpr int kTile8Bytes = kTile * kDh;     // 64 rows of 64 bytes
// A stage: K, then V (16-bit, swizzled); with 8-bit lists then the staged K and V integers and their scales,
// padded so that every stage's 16-bit buffers keep the swizzle atoms' 1024-byte alignment.
template <bool kInt8>
constexpr int kStageBytes = kInt8 ? 2 * kTileBytes + 2 * kTile8Bytes + 1024 : 2 * kTileBytes;
// Packed lists: the block's view of its segments in shared memory (this row and head's first key and value,
// the token counts). Read from the parameter space with an index that differs between lanes, the list's
// entries were fetched one lane at a time, in the path that issues every tile's copies: packing the tiles
// first made attention a fifth slower although it has a fifth fewer tiles at d36.
template <class T>
struct SegmentTable {
  const T* k[kMaxSegments];
  const T* v[kMaxSegments];
  int64_t tokens[kMaxSegments];
};
// The kernel has no static shared memory, so the dynamic area starts the block's shared memory, and its
// declaration says so (the compiler takes the alignment from it). Packed lists' segment table follows the
// stages.
template <bool kInt8>
constexpr int kSmemBytes = kStages * kStageBytes<kInt8> + (kInt8 ? 0 : static_cast<int>(sizeof(SegmentTable<void>)));
static_assert(kStageBytes<true> % 1024 == 0 && 2 * kTileBytes + 2 * kTile8Bytes + 2 * kTile * 4 <= kStageBytes<true>);

// Packed lists follow their rows instead (no segment per tile).
struct NoCursor {
  int segment = 0;
  int64_t first = 0;
  __device__ void advance(const SegmentList&) {}
};

// 2^x by the special-function unit alone, subnormal results flushed to zero: probabilities below 2^-126 of
// the row's largest, negligible beside the row's sum (at least 1).
#if AMSKV_WGMMA
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
#endif

template <class T, int kGroups, bool kInt8>
__global__ void __launch_bounds__(kGroups * 128, kGroups == 1 ? 4 : 2)
    attention_wgmma_kernel(const T* q, int64_t rows, int64_t heads, int64_t n, SegmentList segs, int total_tiles,
                           T* out) {
#if AMSKV_WGMMA
  constexpr int kThreads = kGroups * 128, kQueries = kGroups * 64;
  // f16 probabilities times a V scale (max|v| / 127) would reach f16's subnormal range 127 times sooner than
  // the probabilities themselves: with 8-bit segments they are packed times 127 and the output divided by it
  // (as in the mma.sync kernel). bf16 has float32's range.
  constexpr float kPScale = kInt8 && std::is_same_v<T, __half> ? 127.0f : 1.0f;
  extern __shared__ __align__(1024) unsigned char smem[];
  // A stage's areas.
  auto k16 = [&](int stage) { return smem + stage * kStageBytes<kInt8>; };
  auto k8 = [&](int stage) { return k16(stage) + 2 * kTileBytes; };  // then V's at + kTile8Bytes
  auto scales = [&](int stage) { return reinterpret_cast<float*>(k8(stage) + 2 * kTile8Bytes); };  // [K, V][key]
  const int64_t qtiles = (n + kQueries - 1) / kQueries;
  const int64_t qt = blockIdx.x % qtiles, rh = blockIdx.x / qtiles;
  const int64_t h = rh % heads, r = rh / heads;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int64_t q0 = qt * kQueries + warp * 16;  // this warp's first query: rows 16·(warp % 4) of its warpgroup

  // Packed lists: each thread copies chunk tid % 8 of the same kRowsPerThread rows of every tile, and follows
  // each of those rows through the list (its segment and key there, 64 keys further per tile).
  constexpr int kRowsPerThread = kTile * 8 / kThreads;
  auto* table = reinterpret_cast<SegmentTable<T>*>(smem + kStages * kStageBytes<kInt8>);
  int row_segment[kInt8 ? 1 : kRowsPerThread] = {};
  int64_t row_key[kInt8 ? 1 : kRowsPerThread] = {};
  // Row i moves `keys` further through the list: its segment (segs.count past the end) and key there.
  auto follow = [&](int i, int64_t keys) {
    row_key[i] += keys;
    while (row_segment[i] < segs.count && row_key[i] >= table->tokens[row_segment[i]])
      row_key[i] -= table->tokens[row_segment[i]++];
  };
  if constexpr (!kInt8) {
    for (int i = tid; i < segs.count; i += kThreads) {
      table->k[i] = static_cast<const T*>(segs.k[i]) + rh * segs.head_stride[i];
      table->v[i] = static_cast<const T*>(segs.v[i]) + rh * segs.head_stride[i];
      table->tokens[i] = segs.tokens[i];
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i) follow(i, (tid >> 3) + i * (kThreads / 8));
  }
  using Cursor = std::conditional_t<kInt8, TileCursor, NoCursor>;
  Cursor fetch;
  auto prefetch = [&](int stage) {
    if constexpr (!kInt8) {  // 8 chunks of 16 bytes per key, each row from its segment; rows past the end zeros
      unsigned char* kb = k16(stage);
      const int chunk = tid & 7;
#pragma unroll
      for (int i = 0; i < kRowsPerThread; ++i) {
        const int row = (tid >> 3) + i * (kThreads / 8), sg = row_segment[i];
        const bool ok = sg < segs.count;
        const int64_t at = ok ? row_key[i] * kDh + chunk * 8 : 0;
        copy16(kb + swizzled128(row, chunk), (ok ? table->k[sg] : table->k[0]) + at, ok);
        copy16(kb + kTileBytes + swizzled128(row, chunk), (ok ? table->v[sg] : table->v[0]) + at, ok);
        follow(i, kTile);
      }
      return;
    }
    const int s = fetch.segment;
    const int64_t off = rh * segs.head_stride[s] + fetch.first * kDh, valid = segs.tokens[s] - fetch.first;
    if (kInt8 && segs.k_scale[s]) {  // 4 chunks of 16 bytes per key and the keys' scales; rows past the end zeros
      const int8_t* k = static_cast<const int8_t*>(segs.k[s]) + off;
      const int8_t* v = static_cast<const int8_t*>(segs.v[s]) + off;
      unsigned char* kb = k8(stage);
      for (int c = tid; c < kTile * 4; c += kThreads) {
        const int row = c >> 2, chunk = c & 3;
        const bool ok = row < valid;
        const int64_t at = ok ? int64_t{row} * kDh + chunk * 16 : 0;
        copy16(kb + row * kDh + chunk * 16, k + at, ok);
        copy16(kb + kTile8Bytes + row * kDh + chunk * 16, v + at, ok);
      }
      for (int i = tid; i < 2 * kTile; i += kThreads) {
        const int which = i / kTile, row = i % kTile;
        const float* src = (which ? segs.v_scale[s] : segs.k_scale[s]) + rh * segs.scale_stride[s] + fetch.first;
        copy4(scales(stage) + i, row < valid ? src + row : src, row < valid);
      }
      fetch.advance(segs);
      return;
    }
    const T* k = static_cast<const T*>(segs.k[s]) + off;
    const T* v = static_cast<const T*>(segs.v[s]) + off;
    unsigned char* kb = k16(stage);
    for (int c = tid; c < kTile * 8; c += kThreads) {  // 8 chunks of 16 bytes per key; rows past the end zeros
      const int row = c >> 3, chunk = c & 7;
      const bool ok = row < valid;
      const int64_t at = ok ? int64_t{row} * kDh + chunk * 8 : 0;
      copy16(kb + swizzled128(row, chunk), k + at, ok);
      copy16(kb + kTileBytes + swizzled128(row, chunk), v + at, ok);
    }
    fetch.advance(segs);
  };
  prefetch(0);
  copy_commit();
  if (total_tiles > 1) prefetch(1);
  copy_commit();

  // Q's A operands straight from global memory, once (queries past n are zeros and never written).
  uint32_t qa[4][4];
  load_query_operands(q, rh, n, q0, g, t, qa);
  float o[32], sc[32];
  for (int i = 0; i < 32; ++i) o[i] = 0.0f;
  float m_row[2] = {-INFINITY, -INFINITY}, l_row[2] = {0.0f, 0.0f};  // rows g and g + 8

  Cursor compute;
  int64_t keys = 0;  // packed lists: the keys in all, so that the last tile masks what lies past them
  if constexpr (!kInt8)
    for (int i = 0; i < segs.count; ++i) keys += segs.tokens[i];
  constexpr float kLog2e = 1.4426950408889634f;
  for (int tile = 0; tile < total_tiles; ++tile) {
    copy_wait<1>();       // this tile's group has landed (the newest may still be in flight)
    fence_proxy_async();  // visible to the tensor cores
    __syncthreads();      // every thread's copies; every warpgroup done with the stage refilled next
    if (tile + 2 < total_tiles) prefetch((tile + 2) % kStages);
    copy_commit();
    const int stage = tile % kStages;
    unsigned char* kb = k16(stage);
    unsigned char* vb = kb + kTileBytes;
    const bool int8_tile = kInt8 && segs.k_scale[compute.segment] != nullptr;
    if (int8_tile) {  // the staged integers into the stage's 16-bit buffers, 16 values (two chunks) at a time
      const unsigned char* src = k8(stage);
      for (int c = tid; c < 2 * kTile * 4; c += kThreads) {
        const int which = c / (kTile * 4), row = c / 4 % kTile, part = c & 3;
        uint32_t packed[8];
        widen16<T>(*reinterpret_cast<const uint4*>(src + which * kTile8Bytes + row * kDh + part * 16), packed);
        unsigned char* dst = kb + which * kTileBytes;
        *reinterpret_cast<uint4*>(dst + swizzled128(row, 2 * part)) =
            make_uint4(packed[0], packed[1], packed[2], packed[3]);
        *reinterpret_cast<uint4*>(dst + swizzled128(row, 2 * part + 1)) =
            make_uint4(packed[4], packed[5], packed[6], packed[7]);
      }
      fence_proxy_async();  // ordinary stores, read by the tensor cores
      __syncthreads();
    }

    // Scores of the tile's 64 keys: four k steps of 16 dims, 32 bytes apart in the swizzled rows.
    wgmma_fence_registers(qa);  // (register operands are written before the fence, as PTX asks)
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      const uint64_t desc = smem_descriptor_sw128(kb + 32 * kk);
      if (kk == 0)
        Wgmma64Rs<T, 0>::overwrite(sc, qa[kk], desc);
      else
        Wgmma64Rs<T, 0>::accumulate(sc, qa[kk], desc);
    }
    wgmma_commit();
    wgmma_wait<0>();
    wgmma_fence_registers(sc);
    if (int8_tile) {  // the keys' scales (column 8j + 2t + e % 2 of element 4j + e)
      const float* ks = scales(stage);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const float2 k2 = *reinterpret_cast<const float2*>(ks + 8 * j + 2 * t);
        sc[4 * j] *= k2.x, sc[4 * j + 1] *= k2.y, sc[4 * j + 2] *= k2.x, sc[4 * j + 3] *= k2.y;
      }
    }

    // Keys past a segment's end, or the list's when packed (column 8j + 2t + e % 2 of element 4j + e).
    const int64_t valid = kInt8 ? segs.tokens[compute.segment] - compute.first : keys - int64_t{tile} * kTile;
    if (valid < kTile) {
#pragma unroll
      for (int i = 0; i < 32; ++i)
        if ((i >> 2) * 8 + 2 * t + (i & 1) >= valid) sc[i] = -INFINITY;
    }
    compute.advance(segs);
    // Online softmax: row g holds elements 4j, 4j + 1, row g + 8 elements 4j + 2, 4j + 3; a quad shares a row.
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < 8; ++j) mx = fmaxf(mx, fmaxf(sc[4 * j + 2 * half], sc[4 * j + 2 * half + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m_row[half], mx);
      const float corr = fast_exp2((m_row[half] - m_new) * kLog2e);
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 2 * half; e < 2 * half + 2; ++e) {
          sc[4 * j + e] = fast_exp2(fmaf(sc[4 * j + e], kLog2e, -m_new * kLog2e));
          sum += sc[4 * j + e];
        }
      l_row[half] = l_row[half] * corr + sum;  // this lane's keys only; the quad is summed at the end
      m_row[half] = m_new;
#pragma unroll
      for (int j = 0; j < 8; ++j) o[4 * j + 2 * half] *= corr, o[4 * j + 2 * half + 1] *= corr;
    }
    if (int8_tile) {  // the values' scales, once the row sums have the probabilities themselves
      const float* vs = scales(stage) + kTile;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const float2 v2 = *reinterpret_cast<const float2*>(vs + 8 * j + 2 * t);
        const float vx = v2.x * kPScale, vy = v2.y * kPScale;
        sc[4 * j] *= vx, sc[4 * j + 1] *= vy, sc[4 * j + 2] *= vx, sc[4 * j + 3] *= vy;
      }
    } else if constexpr (kPScale != 1.0f) {
#pragma unroll
      for (int i = 0; i < 32; ++i) sc[i] *= kPScale;
    }
    // O += P·V: the scores of keys 16kc..16kc + 15 are the A operand of k step kc; V's k step is two atoms.
    uint32_t pa[4][4];
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) {
      pa[kc][0] = Mma<T>::pack(sc[8 * kc], sc[8 * kc + 1]);
      pa[kc][1] = Mma<T>::pack(sc[8 * kc + 2], sc[8 * kc + 3]);
      pa[kc][2] = Mma<T>::pack(sc[8 * kc + 4], sc[8 * kc + 5]);
      pa[kc][3] = Mma<T>::pack(sc[8 * kc + 6], sc[8 * kc + 7]);
    }
    wgmma_fence_registers(o);  // the rescaled accumulators and the probabilities, then the fence
    wgmma_fence_registers(pa);
    wgmma_fence();
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) Wgmma64Rs<T, 1>::accumulate(o, pa[kc], smem_descriptor_sw128(vb + 2048 * kc));
    wgmma_commit();
    wgmma_wait<0>();
    wgmma_fence_registers(o);
  }
  // Normalise and write [row][query][head·64 + dim].
  store_outputs(o, l_row, kPScale, out, r, h, heads, n, q0, g, t);
#else
  __trap();  // not launched: attention_wgmma_available() is false without sm_90a code
#endif
}

template <class T, int kGroups, bool kInt8>
void launch(const void* q, int64_t rows, int64_t heads, int64_t n, const SegmentList& segs, int tiles, void* out,
            cudaStream_t s) {
  static const bool configured = [] {  // shared memory past 48 KB is opt-in, once per kernel
    AMSKV_CUDA_CHECK(cudaFuncSetAttribute(attention_wgmma_kernel<T, kGroups, kInt8>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes<kInt8>));
    return true;
  }();
  (void)configured;
  const int64_t blocks = (n + 64 * kGroups - 1) / (64 * kGroups) * heads * rows;
  AMSKV_CHECK(blocks < (int64_t{1} << 31), "cuda attention: too many blocks");
  attention_wgmma_kernel<T, kGroups, kInt8><<<static_cast<unsigned>(blocks), kGroups * 128, kSmemBytes<kInt8>, s>>>(
      static_cast<const T*>(q), rows, heads, n, segs, tiles, static_cast<T*>(out));
}

template <class T, bool kInt8>
void launch(const void* q, int64_t rows, int64_t heads, int64_t n, const SegmentList& segs, void* out, bool two,
            cudaStream_t s) {
  const int tiles = kInt8 ? segment_tiles(segs) : packed_tiles(segs);
  if (two)
    launch<T, 2, kInt8>(q, rows, heads, n, segs, tiles, out, s);
  else
    launch<T, 1, kInt8>(q, rows, heads, n, segs, tiles, out, s);
}

template <class T>
void launch(const void* q, int64_t rows, int64_t heads, int64_t n, const SegmentList& segs, void* out, bool two,
            cudaStream_t s) {
  if (has_8bit_segments(segs))
    launch<T, true>(q, rows, heads, n, segs, out, two, s);
  else
    launch<T, false>(q, rows, heads, n, segs, out, two, s);
}

}  // namespace

// Asked of the device current at the first call, and the kernels' shared-memory opt-in made once: one device
// per process (the engine's backends take one --gpu), as for the convolution's kernel.
bool attention_wgmma_available() {
  static const bool available = sm90a_kernels_available(kSmemBytes<true>);
  return available;
}

// Two warpgroups per block (128 queries sharing each key tile) where that pads n no more than 64-query blocks
// do and still gives every multiprocessor two blocks; one otherwise (small scales, batch 1).
void launch_attention_wgmma(const void* q, DType t, int64_t rows, int64_t heads, int64_t n, const SegmentList& segs,
                            void* out, cudaStream_t s) {
  AMSKV_CHECK(attention_wgmma_available(), "wgmma attention: not available on this device or build");
  const int64_t tiles64 = (n + 63) / 64, tiles128 = (n + 127) / 128;
  const bool two = 2 * tiles128 == tiles64 && tiles128 * heads * rows >= 2 * int64_t{multiprocessors()};
  if (t == DType::BF16) {
    launch<__nv_bfloat16>(q, rows, heads, n, segs, out, two, s);
  } else {
    AMSKV_CHECK(t == DType::F16, "wgmma attention: ", dtype_name(t), " queries (bf16 or f16 only)");
    launch<__half>(q, rows, heads, n, segs, out, two, s);
  }
  AMSKV_CUDA_LAUNCHED();
}

}  // namespace amskv::backend::cuda
