// The implicit-GEMM convolution's wgmma kernel: the tile and the position-major input of kernels_conv.cu,
// the products on Hopper's warpgroup tensor-core instructions.
#include "backend/cuda/kernels.h"
#include "backend/cuda/kernels_common.cuh"
#include "backend/cuda/kernels_conv_tile.h"
#include "backend/cuda/kernels_mma.cuh"
#include "backend/cuda/kernels_wgmma.cuh"

namespace amskv::backend::cuda {

namespace {

// The same convolution with Hopper's warpgroup products (sm_90a): positions are M and the 160 output channels
// N of one wgmma m64n160k16, both operands read by the tensor cores straight from shared memory (no ldmatrix,
// no register fragments). A block of two warpgroups takes the same 2 rows × 128 positions as above, each
// warpgroup one output row as two 64-position tiles (160 accumulators per thread; four one-tile warpgroups
// have 128 registers per thread, and ptxas then serialises the products). Shared memory holds the operands
// K-major in the 64-byte swizzle, 32 channels per row: the window's rows (positions) are contiguous per
// image row, so the tap kx is the window's descriptor started kx rows later. Four stages, two steps of
// copies in flight: a stage is refilled two steps after its products were issued, when every warpgroup has
// waited for them. The epilogue goes through shared memory: from the registers, 160 scattered reads per
// thread (accumulating onto y) doubled the kernel's time.
constexpr int kWgTiles = 2;                                       // 64-position tiles per warpgroup
constexpr int kWgThreads = kRows * kPositions / (64 * kWgTiles) * 128;  // two warpgroups
constexpr int kWgRowStride = 136;                                 // window rows per image row (130, to 8)
constexpr int kWgWindowBytes = kRows * kWgRowStride * 64;         // 34 atoms of 512 bytes
constexpr int kWgWeightTap = kCouts * 64;                         // 20 atoms
constexpr int kWgStageBytes = kWgWindowBytes + 3 * kWgWeightTap;  // 48 128 bytes
constexpr int kWgStages = 4;
constexpr int kWgSmemBytes = kWgStages * kWgStageBytes + 512;     // + alignment of the atoms
constexpr int kWgTileStride = kRows * kPositions + 4;             // epilogue rows: channel pairs 8 banks apart
static_assert(kWgWindowBytes % 512 == 0 && kWgStageBytes % 512 == 0 && kChannels == 32);
static_assert(kCouts * kWgTileStride * 4 <= kWgStages * kWgStageBytes);

template <class T>
__global__ void __launch_bounds__(kWgThreads, 1)
    conv3x3_wgmma_kernel(const T* __restrict__ xs, int cin, int h, int w, const T* __restrict__ wk, int64_t K, int cout,
                         const float* __restrict__ bias, float* __restrict__ y, bool accumulate) {
#if AMSKV_WGMMA
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  unsigned char* smem = smem_raw + (512 - static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw)) % 512) % 512;
  const int stretches = w / kPositions;
  const int oy0 = blockIdx.x / stretches * kRows, ox0 = (blockIdx.x % stretches) * kPositions;
  const int co0 = blockIdx.y * kCouts;
  const int64_t image = blockIdx.z;
  const int tid = threadIdx.x, wr = tid >> 7, lane = tid & 31, g = lane >> 2, t = lane & 3;  // wr: output row
  const int chunks = cin / kChannels, steps = 3 * chunks;

  // One k step into a stage: the windows (130 positions × four chunks) of padded rows oy0 + ky and
  // oy0 + 1 + ky from padded column ox0, and the three taps' weights (3 × 160 rows × four chunks). A thread
  // copies chunk tid % 4 of rows tid / 4 + 64k: every row it copies is then the same in the swizzle (rows of
  // both operands start at multiples of 8), so only the step's base moves its addresses. Dividing each copy's
  // index into row and chunk cost as much issue time as the products, and the block's barrier waited on it.
  static_assert(kWgThreads == 256 && kWgRowStride % 8 == 0 && kWindow > 128 && kWindow <= 192 && kCouts > 128 &&
                kCouts <= 192);
  const int c = tid & 3, r0 = tid >> 2;
  const int chunk = r0 * 64 + ((c ^ ((r0 >> 1) & 3)) << 4);  // chunk c of row r0 in the 64-byte swizzle
  const T* wk_thread = wk + (co0 + r0) * K + c * 8;
  auto load = [&](int stage, int step) {
    unsigned char* base = smem + stage * kWgStageBytes + chunk;
    const int ky = step / chunks, c0 = (step % chunks) * kChannels;
    const T* window = xs + ((image * (h + 2) + oy0 + ky) * (w + 2) + ox0 + r0) * cin + c0 + c * 8;
#pragma unroll
    for (int r = 0; r < kRows; ++r)
#pragma unroll
      for (int k = 0; k < 3; ++k)
        if (k < 2 || r0 + 128 < kWindow)
          copy16(base + (r * kWgRowStride + 64 * k) * 64, window + (int64_t{r} * (w + 2) + 64 * k) * cin, true);
    const T* weights = wk_thread + ky * 3 * int64_t{cin} + c0;
#pragma unroll
    for (int kx = 0; kx < 3; ++kx)
#pragma unroll
      for (int k = 0; k < 3; ++k)
        if (k < 2 || r0 + 128 < kCouts)
          copy16(base + kWgWindowBytes + kx * kWgWeightTap + 64 * k * 64, weights + 64 * k * K + kx * int64_t{cin},
                 true);
  };

  float acc[kWgTiles][80];
#pragma unroll
  for (int m = 0; m < kWgTiles; ++m)
#pragma unroll
    for (int i = 0; i < 80; ++i) acc[m][i] = 0.0f;

  // An accumulating convolution adds onto its residual in L2 at the end: ask for the block's 160 channels ×
  // 2 rows × 128 positions (1280 lines of 128 bytes) while the products run.
  const int64_t plane = int64_t{h} * w;
  if (accumulate)
    for (int i = tid; i < kCouts * kRows * kPositions / 32; i += kWgThreads) {
      const int n = i / (kRows * kPositions / 32), r = i / (kPositions / 32) % kRows, l = i % (kPositions / 32);
      prefetch_l2(y + (image * cout + co0 + n) * plane + int64_t{oy0 + r} * w + ox0 + 32 * l);
    }

  // One commit group per step (empty past the last): "all but the newest group landed" is this step's stage.
  load(0, 0);
  copy_commit();
  if (steps > 1) load(1, 1);
  copy_commit();
  for (int step = 0; step < steps; ++step) {
    copy_wait<1>();
    fence_proxy_async();  // the copies are visible to the tensor cores (the async proxy)
    __syncthreads();      // every thread's copies landed; every warpgroup has waited for step - 2's products
    if (step + 2 < steps) load((step + 2) % kWgStages, step + 2);
    copy_commit();
    const unsigned char* base = smem + (step % kWgStages) * kWgStageBytes;
    const unsigned char* wts = base + kWgWindowBytes;
    wgmma_fence();
#pragma unroll
    for (int m = 0; m < kWgTiles; ++m) wgmma_fence_registers(acc[m]);
#pragma unroll
    for (int kx = 0; kx < 3; ++kx)
#pragma unroll
      for (int kk = 0; kk < 2; ++kk) {  // 16 channels each: the second starts 32 bytes into the rows
        const uint64_t b = smem_descriptor_sw64(wts + kx * kWgWeightTap + kk * 32);
#pragma unroll
        for (int m = 0; m < kWgTiles; ++m)
          Wgmma160<T>::run(acc[m], smem_descriptor_sw64(base + (wr * kWgRowStride + m * 64 + kx) * 64 + kk * 32), b);
      }
    wgmma_commit();
#pragma unroll
    for (int m = 0; m < kWgTiles; ++m) wgmma_fence_registers(acc[m]);
    wgmma_wait<1>();  // the previous step's products are done
  }
  wgmma_wait<0>();
#pragma unroll
  for (int m = 0; m < kWgTiles; ++m) wgmma_fence_registers(acc[m]);

  // Accumulator d[4j + e] of tile m: position 64m + 16·(warp in the warpgroup) + g + 8·(e / 2), output
  // channel 8j + 2t + e % 2. Into [channel][row · 128 + position] with the bias, then out by the copy engine,
  // a channel's row of 128 positions per copy (added onto y in L2 when accumulating): the block ends once the
  // copies have read its shared memory, and the next block starts while they drain. Before, when the threads
  // read the residual and wrote float4s, the block waited for memory with nothing else running on its SM.
  __syncthreads();  // every warpgroup is done with the stages
  float* tile = reinterpret_cast<float*>(smem);
  const int p0 = wr * kPositions + ((tid >> 5) & 3) * 16 + g;
#pragma unroll
  for (int j = 0; j < 20; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int n = 8 * j + 2 * t + (e & 1);
      const float add = bias ? bias[co0 + n] : 0.0f;
#pragma unroll
      for (int m = 0; m < kWgTiles; ++m) tile[n * kWgTileStride + p0 + m * 64 + 8 * (e >> 1)] = acc[m][4 * j + e] + add;
    }
  fence_proxy_async();  // the tile's stores are visible to the copy engine
  __syncthreads();
  static_assert(kWgTileStride * 4 % 16 == 0 && kPositions * 4 % 16 == 0);
  for (int i = tid; i < kCouts * kRows; i += kWgThreads) {
    const int n = i / kRows, r = i % kRows;
    const float* src = tile + n * kWgTileStride + r * kPositions;
    float* dst = y + (image * cout + co0 + n) * plane + int64_t{oy0 + r} * w + ox0;
    bulk_copy_f32(dst, src, kPositions * 4, accumulate);
  }
  bulk_commit_and_wait_read();
#else
  __trap();  // not launched: conv3x3_wgmma_available() is false without sm_90a code
#endif
}

}  // namespace

// Whether the warpgroup kernel runs here; elsewhere the mma.sync kernel of kernels_conv.cu does the same work.
bool conv3x3_wgmma_available() {
  static const bool available = sm90a_kernels_available(kWgSmemBytes);
  return available;
}

void launch_conv3x3_wgmma(const void* xs, DType t, int64_t batch, int cin, int h, int w, const void* wk, int64_t K,
                          int cout, const float* bias, float* y, bool accumulate, cudaStream_t s) {
  AMSKV_CHECK(conv3x3_wgmma_available(), "wgmma conv: not available on this device or build");
  AMSKV_CHECK(reinterpret_cast<uintptr_t>(y) % 16 == 0 && w % kPositions == 0,
              "wgmma conv: the output's rows must be 16-byte aligned for the bulk copies");
  const dim3 grid = conv3x3_grid(batch, h, w, cout);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    static const bool configured = [] {  // shared memory past 48 KB is opt-in, once per kernel
      AMSKV_CUDA_CHECK(
          cudaFuncSetAttribute(conv3x3_wgmma_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, kWgSmemBytes));
      return true;
    }();
    (void)configured;
    conv3x3_wgmma_kernel<T><<<grid, kWgThreads, kWgSmemBytes, s>>>(static_cast<const T*>(xs), cin, h, w,
                                                                   static_cast<const T*>(wk), K, cout, bias, y,
                                                                   accumulate);
  };
  if (t == DType::BF16)
    run(__nv_bfloat16{});
  else
    run(__half{});
  AMSKV_CUDA_LAUNCHED();
}

}  // namespace amskv::backend::cuda
