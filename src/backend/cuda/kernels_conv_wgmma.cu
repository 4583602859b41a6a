// The implicit-GEMM convolution's wgmma kernel: the tile and the position-major input of kernels_conv.cu,
// the products on Hopper's warpgroup tensor-core instructions.
#include <cudaTypedefs.h>

#include <algorithm>

#include "backend/cuda/kernels.h"
#include "backend/cuda/kernels_common.cuh"
#include "backend/cuda/kernels_conv_tile.h"
#include "backend/cuda/kernels_mma.cuh"
#include "backend/cuda/kernels_tma.cuh"
#include "backend/cuda/kernels_wgmma.cuh"

namespace amskv::backend::cuda {

namespace {

// The same convolution with Hopper's warpgroup products (sm_90a): positions are M and the 160 output channels
// N of one wgmma m64n160k16, both operands read by the tensor cores straight from shared memory (no ldmatrix,
// no register fragments). A block of two warpgroups takes 256 output positions (WgShape below: the mma.sync
// kernel's 2 rows × 128, or 4 rows × 64), each warpgroup two 64-position tiles (160 accumulators per thread;
// four one-tile warpgroups have 128 registers per thread, and ptxas then serialises the products). A tile
// lies in one output row: its positions are consecutive rows of the operand. Shared memory holds the operands
// K-major in the 64-byte swizzle, 32 channels per row: the window's rows (positions) are contiguous per
// image row, so the tap kx is the window's descriptor started kx rows later. The operands come by tensor-map
// copies (TMA, kernels_tma.cuh) that one thread issues, four stages deep: a stage's copies complete its
// "full" mbarrier, each warpgroup waits on that alone, and a stage is refilled once both warpgroups have
// arrived on its "empty" mbarrier after their products from it. With cp.async copies issued by every thread
// and a block barrier per step, the kernel spent more time waiting at the barrier and issuing copies than
// multiplying. The epilogue goes through shared memory: from the registers, 160 scattered reads per thread
// (accumulating onto y) doubled the kernel's time.
constexpr int kWgTiles = 2;                                       // 64-position tiles per warpgroup
constexpr int kWgPositions = kRows * kPositions;                  // output positions per block
constexpr int kWgThreads = kWgPositions / (64 * kWgTiles) * 128;  // two warpgroups
constexpr int kWgWeightTap = kCouts * 64;                         // 20 atoms
constexpr int kWgStages = 4;
// The epilogue's rows [channel][position]: channel pairs 8 banks apart (float32: 260 words; 16-bit: 264
// halves, so that two lanes' neighbouring positions share a word), 16-byte aligned for the bulk copies.
template <class Y>
constexpr int kWgTileStride = sizeof(Y) == 4 ? kWgPositions + 4 : kWgPositions + 8;
static_assert(kChannels == 32 && kCouts <= 256 && kChannels * 2 == 64);  // TMA boxes, 64-byte rows

// Where a block's 256 output positions lie: kR rows of kP positions. Rows a multiple of 128 wide take the
// mma.sync kernel's tile (2 × 128); other rows a multiple of 64 wide (the decoder's 64×64 planes, which went
// through im2col's columns and a cuBLAS product before) take 4 × 64, each warpgroup two rows, a tile each.
template <int kR, int kP>
struct WgShape {
  static constexpr int rows = kR, positions = kP;
  static constexpr int window = kP + 2;                                  // input positions per row
  static constexpr int window_bytes = (kR * window * 64 + 511) / 512 * 512;  // whole atoms of 512 bytes
  static constexpr int stage_bytes = window_bytes + 3 * kWgWeightTap;    // 47 616 bytes for both shapes
  static constexpr int stage_load_bytes = kR * window * 64 + 3 * kWgWeightTap;  // what a stage's copies bring
  static constexpr int smem_bytes = kWgStages * stage_bytes + 2 * kWgStages * 8 + 512;  // + mbarriers, alignment
  static_assert(kR * kP == kWgPositions && kP % 64 == 0 && window <= 256 && kR <= 256);
  static_assert(window_bytes % 512 == 0 && stage_bytes % 512 == 0 && stage_load_bytes <= stage_bytes);
  static_assert(kCouts * kWgTileStride<float> * 4 <= kWgStages * stage_bytes);  // the epilogue's tile in the stages
};
using WideRows = WgShape<kRows, kPositions>;
using Rows64 = WgShape<4, 64>;
constexpr int kWgSmemBytes = std::max(WideRows::smem_bytes, Rows64::smem_bytes);

// Y: the output's type, float32 or the compute type T (the decoder's 16-bit activations).
template <class T, class S, class Y>
__global__ void __launch_bounds__(kWgThreads, 1)
    conv3x3_wgmma_kernel(const __grid_constant__ CUtensorMap xs_map, const __grid_constant__ CUtensorMap wk_map,
                         int cin, int h, int w, int cout, const float* __restrict__ bias, Y* __restrict__ y,
                         bool accumulate) {
#if AMSKV_WGMMA
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  unsigned char* smem = smem_raw + (512 - shared_address(smem_raw) % 512) % 512;
  const int stretches = w / S::positions;
  const int oy0 = blockIdx.x / stretches * S::rows, ox0 = (blockIdx.x % stretches) * S::positions;
  const int co0 = blockIdx.y * kCouts;
  const int64_t image = blockIdx.z;
  const int tid = threadIdx.x, wr = tid >> 7, lane = tid & 31, g = lane >> 2, t = lane & 3;  // wr: warpgroup
  const int chunks = cin / kChannels, steps = 3 * chunks;
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + kWgStages * S::stage_bytes);
  uint64_t* empty = full + kWgStages;
  if (tid == 0) {
    for (int st = 0; st < kWgStages; ++st) {
      mbarrier_init(&full[st], 1);                  // thread 0's arrival with the copies' byte count
      mbarrier_init(&empty[st], kWgThreads / 128);  // one arrival per warpgroup
    }
    mbarrier_init_fence();
  }
  __syncthreads();

  // One k step into its stage, by thread 0: the window of padded rows oy0 + ky ... oy0 + rows - 1 + ky from
  // padded column ox0 (rows × (positions + 2) × 32 channels, one box), and the three taps' weights (160 rows ×
  // 32 channels each).
  auto load = [&](int step) {
    const int st = step % kWgStages, ky = step / chunks, c0 = (step % chunks) * kChannels;
    unsigned char* base = smem + st * S::stage_bytes;
    mbarrier_arrive_expect_bytes(&full[st], S::stage_load_bytes);
    tma_load_4d(base, &xs_map, &full[st], c0, ox0, oy0 + ky, static_cast<int>(image));
#pragma unroll
    for (int kx = 0; kx < 3; ++kx)
      tma_load_2d(base + S::window_bytes + kx * kWgWeightTap, &wk_map, &full[st], (ky * 3 + kx) * cin + c0, co0);
  };
  if (tid == 0)
    for (int step = 0; step < kWgStages - 1 && step < steps; ++step) load(step);

  float acc[kWgTiles][80];
#pragma unroll
  for (int m = 0; m < kWgTiles; ++m)
#pragma unroll
    for (int i = 0; i < 80; ++i) acc[m][i] = 0.0f;

  // An accumulating convolution adds onto its residual in L2 at the end: ask for the block's 160 channels ×
  // 256 positions (1280 lines of 128 bytes for float32, 640 for 16-bit) while the products run.
  const int64_t plane = int64_t{h} * w;
  constexpr int kLine = 128 / sizeof(Y);  // values per 128-byte line
  if (accumulate)
    for (int i = tid; i < kCouts * kWgPositions / kLine; i += kWgThreads) {
      const int n = i / (kWgPositions / kLine), r = i / (S::positions / kLine) % S::rows, l = i % (S::positions / kLine);
      prefetch_l2(y + (image * cout + co0 + n) * plane + int64_t{oy0 + r} * w + ox0 + kLine * l);
    }

  for (int step = 0; step < steps; ++step) {
    const int st = step % kWgStages;
    mbarrier_wait(&full[st], (step / kWgStages) & 1);  // the step's copies have landed
    const unsigned char* base = smem + st * S::stage_bytes;
    const unsigned char* wts = base + S::window_bytes;
    wgmma_fence();
#pragma unroll
    for (int m = 0; m < kWgTiles; ++m) wgmma_fence_registers(acc[m]);
#pragma unroll
    for (int kx = 0; kx < 3; ++kx)
#pragma unroll
      for (int kk = 0; kk < 2; ++kk) {  // 16 channels each: the second starts 32 bytes into the rows
        const uint64_t b = smem_descriptor_sw64(wts + kx * kWgWeightTap + kk * 32);
#pragma unroll
        for (int m = 0; m < kWgTiles; ++m) {
          // Tile q's 64 positions: row q·64 / positions of the block, from column q·64 % positions.
          const int q = wr * kWgTiles + m, r = q * 64 / S::positions, col = q * 64 % S::positions;
          Wgmma160<T>::run(acc[m], smem_descriptor_sw64(base + (r * S::window + col + kx) * 64 + kk * 32), b);
        }
      }
    wgmma_commit();
#pragma unroll
    for (int m = 0; m < kWgTiles; ++m) wgmma_fence_registers(acc[m]);
    wgmma_wait<1>();  // this warpgroup's products of step - 1 are done: their stage is free as far as it goes
    if (step > 0 && (tid & 127) == 0) mbarrier_arrive(&empty[(step - 1) % kWgStages]);
    // Thread 0 refills that stage with step + 3 once both warpgroups are done with it.
    if (tid == 0 && step + kWgStages - 1 < steps) {
      if (step > 0) mbarrier_wait(&empty[(step - 1) % kWgStages], ((step - 1) / kWgStages) & 1);
      load(step + kWgStages - 1);
    }
  }
  wgmma_wait<0>();
#pragma unroll
  for (int m = 0; m < kWgTiles; ++m) wgmma_fence_registers(acc[m]);

  // Accumulator d[4j + e] of tile m: position 64m + 16·(warp in the warpgroup) + g + 8·(e / 2) of the
  // warpgroup's 128, output channel 8j + 2t + e % 2. Into [channel][row · positions + position] with the bias,
  // then out by the copy engine, a channel's row of the block per copy (added onto y in L2 when accumulating): the block ends once the
  // copies have read its shared memory, and the next block starts while they drain. Before, when the threads
  // read the residual and wrote float4s, the block waited for memory with nothing else running on its SM.
  __syncthreads();      // every warpgroup is done with the stages
  fence_proxy_async();  // the stages' last readers were the tensor cores: order the stores below after them
  Y* tile = reinterpret_cast<Y*>(smem);
  constexpr int kStride = kWgTileStride<Y>;
  const int p0 = wr * 64 * kWgTiles + ((tid >> 5) & 3) * 16 + g;
#pragma unroll
  for (int j = 0; j < 20; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int n = 8 * j + 2 * t + (e & 1);
      const float add = bias ? bias[co0 + n] : 0.0f;
#pragma unroll
      for (int m = 0; m < kWgTiles; ++m) tile[n * kStride + p0 + m * 64 + 8 * (e >> 1)] = from_float<Y>(acc[m][4 * j + e] + add);
    }
  fence_proxy_async();  // the tile's stores are visible to the copy engine
  __syncthreads();
  static_assert(kStride * sizeof(Y) % 16 == 0 && S::positions * sizeof(Y) % 16 == 0);
  static_assert(kCouts * kStride * sizeof(Y) <= kWgStages * S::stage_bytes);
  for (int i = tid; i < kCouts * S::rows; i += kWgThreads) {
    const int n = i / S::rows, r = i % S::rows;
    const Y* src = tile + n * kStride + r * S::positions;
    Y* dst = y + (image * cout + co0 + n) * plane + int64_t{oy0 + r} * w + ox0;
    bulk_copy_out(dst, src, S::positions * sizeof(Y), accumulate);
  }
  bulk_commit_and_wait_read();
#else
  __trap();  // not launched: conv3x3_wgmma_available() is false without sm_90a code
#endif
}

}  // namespace

// The driver's tensor-map encoder, reached through the runtime (no link to the driver library); null when
// the driver has none, or the toolkit is older than 12.5 (no versioned entry-point query).
static PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const auto encode = [] {
    void* f = nullptr;
#if CUDART_VERSION >= 12050
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      (void)cudaGetLastError();
      f = nullptr;
    }
#endif
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return encode;
}

// A K-major operand for the kernel: `rank` dimensions of 16-bit elements (innermost first, its box 32
// elements = one 64-byte swizzled row), strides in bytes of dimensions 1.., the box the kernel copies.
static CUtensorMap operand_map(const void* base, DType t, int rank, const cuuint64_t* dims,
                               const cuuint64_t* strides, const cuuint32_t* box) {
  CUtensorMap map{};
  const cuuint32_t unit[4] = {1, 1, 1, 1};
  const CUresult r = tensor_map_encoder()(
      &map, t == DType::BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
      static_cast<cuuint32_t>(rank), const_cast<void*>(base), dims, strides, box, unit,
      CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_64B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
      CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  AMSKV_CHECK(r == CUDA_SUCCESS, "wgmma conv: the driver refused a ", rank, "-d tensor map of ", dims[0], " x ",
              dims[1], rank > 2 ? " x ..." : "", " elements at ", base, " (CUresult ", static_cast<int>(r), ")");
  return map;
}

// Whether the warpgroup kernel runs here; elsewhere the mma.sync kernel of kernels_conv.cu does the same work.
bool conv3x3_wgmma_available() {
  static const bool available = sm90a_kernels_available(kWgSmemBytes) && tensor_map_encoder() != nullptr;
  return available;
}

bool conv3x3_wgmma_takes(int64_t h, int64_t w) {
  if (h <= 0 || w <= 0 || !conv3x3_wgmma_available()) return false;
  return (w % WideRows::positions == 0 && h % WideRows::rows == 0) || (w % Rows64::positions == 0 && h % Rows64::rows == 0);
}

void launch_conv3x3_wgmma(const void* xs, DType t, int64_t batch, int cin, int h, int w, const void* wk, int64_t K,
                          int cout, const float* bias, void* y, DType y_type, bool accumulate, cudaStream_t s) {
  AMSKV_CHECK(conv3x3_wgmma_available(), "wgmma conv: not available on this device or build");
  AMSKV_CHECK(conv3x3_wgmma_takes(h, w), "wgmma conv: no block shape for ", h, " rows of ", w);
  AMSKV_CHECK(y_type == DType::F32 || y_type == t, "wgmma conv: output of type ", dtype_name(y_type));
  AMSKV_CHECK(reinterpret_cast<uintptr_t>(y) % 16 == 0, "wgmma conv: the output must be 16-byte aligned for the bulk copies");
  const bool wide = w % WideRows::positions == 0 && h % WideRows::rows == 0;
  const int rows = wide ? WideRows::rows : Rows64::rows, positions = wide ? WideRows::positions : Rows64::positions;
  const dim3 grid(static_cast<unsigned>(h / rows * (w / positions)), static_cast<unsigned>(cout / kCouts),
                  static_cast<unsigned>(batch));
  // xs [image][h + 2][w + 2][cin], boxes of 32 channels × (positions + 2) × rows; the packed weights
  // [cout][K], boxes of 32 of K × 160 output channels.
  const cuuint64_t es = 2;
  const cuuint64_t xs_dims[4] = {static_cast<cuuint64_t>(cin), static_cast<cuuint64_t>(w + 2),
                                 static_cast<cuuint64_t>(h + 2), static_cast<cuuint64_t>(batch)};
  const cuuint64_t xs_strides[3] = {xs_dims[0] * es, xs_dims[0] * xs_dims[1] * es,
                                    xs_dims[0] * xs_dims[1] * xs_dims[2] * es};
  const cuuint32_t xs_box[4] = {kChannels, static_cast<cuuint32_t>(positions + 2), static_cast<cuuint32_t>(rows), 1};
  const cuuint64_t wk_dims[2] = {static_cast<cuuint64_t>(K), static_cast<cuuint64_t>(cout)};
  const cuuint64_t wk_strides[1] = {wk_dims[0] * es};
  const cuuint32_t wk_box[2] = {kChannels, kCouts};
  const CUtensorMap xs_map = operand_map(xs, t, 4, xs_dims, xs_strides, xs_box);
  const CUtensorMap wk_map = operand_map(wk, t, 2, wk_dims, wk_strides, wk_box);
  auto run_output = [&](auto type_tag, auto shape_tag, auto output_tag) {
    using T = decltype(type_tag);
    using S = decltype(shape_tag);
    using Y = decltype(output_tag);
    static const bool configured = [] {  // shared memory past 48 KB is opt-in, once per kernel
      AMSKV_CUDA_CHECK(cudaFuncSetAttribute(conv3x3_wgmma_kernel<T, S, Y>,
                                            cudaFuncAttributeMaxDynamicSharedMemorySize, S::smem_bytes));
      return true;
    }();
    (void)configured;
    conv3x3_wgmma_kernel<T, S, Y><<<grid, kWgThreads, S::smem_bytes, s>>>(xs_map, wk_map, cin, h, w, cout, bias,
                                                                          static_cast<Y*>(y), accumulate);
  };
  auto run = [&](auto type_tag, auto shape_tag) {
    if (y_type == DType::F32)
      run_output(type_tag, shape_tag, float{});
    else
      run_output(type_tag, shape_tag, type_tag);
  };
  auto run_type = [&](auto shape_tag) {
    if (t == DType::BF16)
      run(__nv_bfloat16{}, shape_tag);
    else
      run(__half{}, shape_tag);
  };
  if (wide)
    run_type(WideRows{});
  else
    run_type(Rows64{});
  AMSKV_CUDA_LAUNCHED();
}

}  // namespace amskv::backend::cuda
