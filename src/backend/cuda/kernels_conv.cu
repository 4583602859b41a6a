// Implicit-GEMM 3×3 convolution (stride 1, padding 1) for the VQVAE decoder's large planes. On Hopper builds
// with sm_90a code the products run in kernels_conv_wgmma.cu; the mma.sync kernel here serves elsewhere.
//
// im2col wrote nine compute-type copies of every input value and the product read them back: at 256×256 with
// 160 channels that is 190 MB per image and convolution, and building the columns took more GPU time than
// the products. Here the input is first rewritten once, position-major ([image][row][column][channel], zero
// border, the compute type; normalised and SiLU'd on the way when the convolution follows a GroupNorm): 21 MB
// at that size. Then a block computes 160 output channels × 128 positions of two output rows: for each kernel
// row ky and each 32 input channels it copies the input rows' 130-position windows and the weights of the
// three taps kx into shared memory (cp.async, three stages: the next two steps load while the current one
// multiplies; with two, one block per SM waited on each step's copies), and the taps read the same windows
// shifted by kx. The weights are most of what a block reads
// (a tile of 128 positions read 460 KB of them for 4 MFLOP: one row per block left the kernel waiting on the
// L2), so two rows share each weight tile. Products are mma.sync m16n8k16 with fp32 accumulation,
// fragments by ldmatrix. The bias (fp32) is added in the epilogue, which writes the output (float32, or the
// decoder's 16-bit activations) or accumulates onto it.
#include <cstdint>
#include <type_traits>

#include "backend/cuda/kernels.h"
#include "backend/cuda/kernels_common.cuh"
#include "backend/cuda/kernels_conv_input.cuh"
#include "backend/cuda/kernels_conv_tile.h"
#include "backend/cuda/kernels_mma.cuh"

namespace amskv::backend::cuda {

namespace {

constexpr int kRow = kChannels + 8;    // shared row stride in elements: 80 bytes, conflict-free ldmatrix rows
constexpr int kConvThreads = 512;      // 16 warps: 2 along the output channels × 4 along each row's positions × 2 rows
constexpr int kWarpCouts = 80, kWarpPositions = 32;
constexpr int kConvStages = 3;         // 3 × 59 KB of shared memory
constexpr int kMTiles = kWarpCouts / 16, kNTiles = kWarpPositions / 8;

template <class T>
struct ConvStage {
  T a[3][kCouts][kRow];  // the weights of the kernel row's 3 taps for 32 input channels, [tap][cout][channel]
  T b[kRows][kWindow][kRow];  // the input rows' windows for the 32 channels, [row][position][channel]
};

// xs [image][h + 2][w + 2][cin] (compute type, zero border) = f(x), x [image][cin][h + 2·in_pad][w + 2·in_pad],
// or with up = 1 the nearest ×2 upsampling of x [image][cin][h / 2][w / 2] (in_pad 0): the upsampled input never
// reaches memory.
// A block moves a span of consecutive padded positions of one image (rows back to back, so a block may start
// mid-row: 320 positions are a row and a quarter at 256 wide, nearly five rows at 64) for 32 channels through shared
// memory: it reads along the planes' rows, all its loads in flight at once (64 lanes by 8 channels per chunk,
// five chunks per thread), and writes 64 contiguous bytes per position. Blocks of 64 positions left a quarter
// of their threads idle on a 130-position row and spent as long starting as moving data (~2 TB/s); blocks of
// one row left four fifths of them idle on a 66-position row (0.6 TB/s).
// The bytes in flight set its speed, and a thread's registers bound them: 16-bit inputs read a position at a
// time (2 bytes per register) ran at 1.8 TB/s against float32's 3.1, and twice the positions per thread took
// so many registers that one block fitted on a multiprocessor. Unpadded 16-bit inputs are therefore read in
// pairs (kPairs): a lane takes padded positions 2q - 1 and 2q of the block, whose input columns xp - 2 and
// xp - 1 (xp = 2q's padded column, even as w is) are one aligned 4-byte word, or, upsampling, one value. The
// 320 pairs cover positions -1 to 638, of which the span keeps 0 to 637 (the neighbours' blocks have -1 and
// 638). Pairs read x unpadded (in_pad 0): the launcher takes them only then. The tile holds the values
// rounded to T.
// A thread's values are its 8 channels of each of its positions: the tile holds them position-major, so that a
// position's 8 values enter it in one 16-byte store and leave it in one 16-byte load, and every thread binds
// its 8 planes' transforms (GroupNorm scale and shift) once. Stored a value at a time into a channel-major tile,
// with the scale and shift read per value, the kernel issued four times as many memory instructions.
constexpr int kLayoutChunk = 64, kLayoutChunks = 5;
template <bool kPairs>
constexpr int kLayoutSpanOf = kPairs ? 2 * kLayoutChunk * kLayoutChunks - 2 : kLayoutChunk * kLayoutChunks;
constexpr int kLayoutSpan = kLayoutSpanOf<true>;  // the largest, for the bounds of the kernel's ints
template <class T, class X, class F, bool kPairs>
__global__ void __launch_bounds__(256) to_position_major_kernel(const X* __restrict__ x, int cin, int h, int w, int in_pad,
                                                                int up, T* __restrict__ xs, F f) {
  static_assert(!kPairs || sizeof(X) == 2, "pairs of 16-bit values make a 4-byte word");
  static_assert(sizeof(T) == 2, "8 channels of a position are one 16-byte piece");
  constexpr int kSpan = kLayoutSpanOf<kPairs>;
  // A position's 32 channels as four 16-byte pieces: piece c of position j in slot (4j + c) ^ ((j / 2) % 8),
  // within the 128-byte line of positions j and j ^ 1, so that the lanes' stores (consecutive positions, or
  // every other one) and the reads (two positions' pieces) each cover the banks once.
  __shared__ uint4 tile[kSpan * 4];
  auto slot = [](int j, int piece) { return (4 * j + piece) ^ ((j >> 1) & 7); };
  const int wp = w + 2, p0 = blockIdx.x * kSpan, span = min(kSpan, (h + 2) * wp - p0);
  const int c0 = blockIdx.y * kChannels;
  const int64_t image = blockIdx.z, ih = (h >> up) + 2 * in_pad, iw = (w >> up) + 2 * in_pad;
  const int tid = threadIdx.x, j0 = tid % kLayoutChunk, cg = tid / kLayoutChunk;  // 8 channels each
  auto plane_of = [&](int i) { return image * cin + c0 + cg * 8 + i; };  // the thread's channel i
  auto put = [&](int j, uint4 piece) {  // position j of the span: the thread's 8 channels
    if (j >= 0 && j < span) tile[slot(j, cg)] = piece;
  };
  if constexpr (kPairs) {
    // Pair q: positions 2q - 1 and 2q of the block (p0 is even). Outside the planes (2q's column 0: then
    // 2q - 1 is the previous row's right border; a border row) both are zero.
    bool inside[kLayoutChunks];
    uint32_t raw[kLayoutChunks][8];
#pragma unroll
    for (int m = 0; m < kLayoutChunks; ++m) {
      const int b = 2 * (j0 + m * kLayoutChunk), yp = (p0 + b) / wp, iy = yp - 1, xb = p0 + b - yp * wp;
      inside[m] = b - 1 < span && iy >= 0 && iy < h && xb >= 2;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const int64_t plane = plane_of(i);
        const X* row = x + (plane * ih + (iy >> up)) * iw;
        if (!inside[m])
          raw[m][i] = 0;
        else if (up)
          raw[m][i] = *reinterpret_cast<const uint16_t*>(row + ((xb - 2) >> 1)) * 0x10001u;  // both the one value
        else
          raw[m][i] = *reinterpret_cast<const uint32_t*>(row + xb - 2);
      }
    }
    // Each pair becomes f's pair in T in place, a plane at a time (its scale and shift read once), so that
    // nothing beside the 40 words stays live. Inputs of type T taken as they are are that already.
    constexpr bool kAsRead = std::is_same_v<F, AsIs> && std::is_same_v<X, T>;
#pragma unroll
    for (int i = 0; i < (kAsRead ? 0 : 8); ++i) {
      const auto g = f.at(plane_of(i));
#pragma unroll
      for (int m = 0; m < kLayoutChunks; ++m) {
        const X* pair = reinterpret_cast<const X*>(&raw[m][i]);
        raw[m][i] = inside[m] ? Mma<T>::pack(transform_for<T>(g, to_float(pair[0])), transform_for<T>(g, to_float(pair[1])))
                              : 0u;
      }
    }
#pragma unroll
    for (int m = 0; m < kLayoutChunks; ++m) {
      const int b = 2 * (j0 + m * kLayoutChunk);
      const uint32_t* r = raw[m];
      put(b - 1, make_uint4(__byte_perm(r[0], r[1], 0x5410), __byte_perm(r[2], r[3], 0x5410),
                            __byte_perm(r[4], r[5], 0x5410), __byte_perm(r[6], r[7], 0x5410)));  // the first halves
      put(b, make_uint4(__byte_perm(r[0], r[1], 0x7632), __byte_perm(r[2], r[3], 0x7632),
                        __byte_perm(r[4], r[5], 0x7632), __byte_perm(r[6], r[7], 0x7632)));  // the second halves
    }
  } else {
    // Padded position p0 + j is row yp, column xp: input row yp - 1, column xp - 1 (zero outside).
    bool inside[kLayoutChunks];
    float v[kLayoutChunks][8];
#pragma unroll
    for (int m = 0; m < kLayoutChunks; ++m) {
      const int j = j0 + m * kLayoutChunk, yp = (p0 + j) / wp, iy = yp - 1, ix = p0 + j - yp * wp - 1;
      inside[m] = j < span && iy >= 0 && iy < h && ix >= 0 && ix < w;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const int64_t plane = plane_of(i);
        v[m][i] = inside[m] ? to_float(x[(plane * ih + (iy >> up) + in_pad) * iw + (ix >> up) + in_pad]) : 0.0f;
      }
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const auto g = f.at(plane_of(i));
#pragma unroll
      for (int m = 0; m < kLayoutChunks; ++m) v[m][i] = inside[m] ? transform_for<T>(g, v[m][i]) : 0.0f;
    }
#pragma unroll
    for (int m = 0; m < kLayoutChunks; ++m) {
      const float* u = v[m];
      put(j0 + m * kLayoutChunk, make_uint4(Mma<T>::pack(u[0], u[1]), Mma<T>::pack(u[2], u[3]),
                                            Mma<T>::pack(u[4], u[5]), Mma<T>::pack(u[6], u[7])));
    }
  }
  __syncthreads();
  for (int k = tid; k < span * 4; k += blockDim.x) {
    const int j = k / 4, piece = k % 4;  // a position's 32 channels in four 16-byte stores
    *reinterpret_cast<uint4*>(xs + (image * (h + 2) * wp + p0 + j) * cin + c0 + piece * 8) = tile[slot(j, piece)];
  }
}

// Y: the output's type, float32 or the compute type T (the decoder's 16-bit activations).
template <class T, class Y>
__global__ void __launch_bounds__(kConvThreads, 1)
    conv3x3_kernel(const T* __restrict__ xs, int cin, int h, int w, const T* __restrict__ wk, int64_t K, int cout,
                   const float* __restrict__ bias, Y* __restrict__ y, bool accumulate) {
  extern __shared__ __align__(16) unsigned char smem[];
  auto* stages = reinterpret_cast<ConvStage<T>*>(smem);
  const int stretches = w / kPositions;
  const int oy0 = blockIdx.x / stretches * kRows, ox0 = (blockIdx.x % stretches) * kPositions;
  const int co0 = blockIdx.y * kCouts;
  const int64_t image = blockIdx.z;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int wm = warp & 1, wr = warp >> 3, wn = (warp >> 1) & 3;  // channel half, output row, position quarter
  const int chunks = cin / kChannels, steps = 3 * chunks;  // k steps: kernel row, then 32 input channels

  // One k step into a stage: the three taps' weights (3 × 160 rows × four 16-byte pieces) and the windows
  // (130 positions × four pieces) of padded rows oy0 + ky and oy0 + 1 + ky, which start at padded column ox0.
  auto load = [&](ConvStage<T>& st, int step) {
    const int ky = step / chunks, c0 = (step % chunks) * kChannels;
    for (int i = tid; i < 3 * kCouts * 4; i += kConvThreads) {
      const int piece = i & 3, row = (i >> 2) % kCouts, kx = (i >> 2) / kCouts;
      copy16(&st.a[kx][row][piece * 8], wk + (co0 + row) * K + (ky * 3 + kx) * int64_t{cin} + c0 + piece * 8, true);
    }
    const T* window = xs + ((image * (h + 2) + oy0 + ky) * (w + 2) + ox0) * cin + c0;
    for (int i = tid; i < kRows * kWindow * 4; i += kConvThreads) {
      const int piece = i & 3, j = (i >> 2) % kWindow, r = (i >> 2) / kWindow;
      copy16(&st.b[r][j][piece * 8], window + (int64_t{r} * (w + 2) + j) * cin + piece * 8, true);
    }
  };

  float acc[kMTiles][kNTiles][4];
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
    for (int nt = 0; nt < kNTiles; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mt][nt][e] = 0.0f;

  // One commit group per step (empty past the last), so that "all but the newest kConvStages - 2 groups
  // landed" means this step's stage has.
  for (int s = 0; s < kConvStages - 1; ++s) {
    if (s < steps) load(stages[s], s);
    copy_commit();
  }
  for (int step = 0; step < steps; ++step) {
    copy_wait<kConvStages - 2>();
    __syncthreads();  // this step's stage has landed; every warp is done with the stage loaded next
    if (step + kConvStages - 1 < steps) load(stages[(step + kConvStages - 1) % kConvStages], step + kConvStages - 1);
    copy_commit();
    const ConvStage<T>& cur = stages[step % kConvStages];
    for (int kx = 0; kx < 3; ++kx) {
#pragma unroll
      for (int kk = 0; kk < kChannels / 16; ++kk) {
        uint32_t a[kMTiles][4];
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt)
          ldmatrix_x4<false>(a[mt], &cur.a[kx][wm * kWarpCouts + mt * 16 + (lane & 15)][kk * 16 + (lane >> 4) * 8]);
#pragma unroll
        for (int np = 0; np < kNTiles / 2; ++np) {
          // B fragments of two 8-position tiles: rows are window positions (shifted by the tap), 16 channels.
          const int mi = lane >> 3;
          uint32_t b[4];
          ldmatrix_x4<false>(b, &cur.b[wr][wn * kWarpPositions + (2 * np + (mi >> 1)) * 8 + (lane & 7) + kx]
                                      [kk * 16 + (mi & 1) * 8]);
#pragma unroll
          for (int mt = 0; mt < kMTiles; ++mt) {
            Mma<T>::run(acc[mt][2 * np], a[mt], b[0], b[1]);
            Mma<T>::run(acc[mt][2 * np + 1], a[mt], b[2], b[3]);
          }
        }
      }
    }
  }

  // Rows g and g + 8 of each 16-channel tile, two neighbouring positions per register pair.
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int co = co0 + wm * kWarpCouts + mt * 16 + g + 8 * half;
      const float add = bias ? bias[co] : 0.0f;
      Y* row = y + ((image * cout + co) * h + oy0 + wr) * int64_t{w} + ox0 + wn * kWarpPositions + 2 * t;
#pragma unroll
      for (int nt = 0; nt < kNTiles; ++nt) {
        float2 v = make_float2(acc[mt][nt][2 * half] + add, acc[mt][nt][2 * half + 1] + add);
        if (accumulate) {
          const float2 old = load2(row + nt * 8);
          v.x += old.x, v.y += old.y;
        }
        store2(row + nt * 8, v.x, v.y);
      }
    }
}

template <class T, class X, class Y, class F>
void launch_conv3x3(const X* x, int64_t batch, int64_t cin, int64_t h, int64_t w, int64_t in_pad, bool nearest2x, T* xs,
                    const void* packed, int64_t K, int64_t cout, const float* bias, Y* y, bool accumulate, F f,
                    cudaStream_t s) {
  auto layout = [&](auto pairs_tag) {
    constexpr bool kPairs = decltype(pairs_tag)::value;
    const auto spans = static_cast<unsigned>(((h + 2) * (w + 2) + kLayoutSpanOf<kPairs> - 1) / kLayoutSpanOf<kPairs>);
    to_position_major_kernel<T, X, F, kPairs>
        <<<dim3(spans, static_cast<unsigned>(cin / kChannels), static_cast<unsigned>(batch)), 256, 0, s>>>(
            x, static_cast<int>(cin), static_cast<int>(h), static_cast<int>(w), static_cast<int>(in_pad),
            nearest2x ? 1 : 0, xs, f);
  };
  // Pairs need 4-byte aligned rows: even widths (the implicit GEMM's are multiples of 64), unpadded input.
  if constexpr (sizeof(X) == 2) {
    if (in_pad == 0 && w % 2 == 0 && reinterpret_cast<uintptr_t>(x) % 4 == 0) {
      layout(std::true_type{});
    } else {
      layout(std::false_type{});
    }
  } else {
    layout(std::false_type{});
  }
  const int ci = static_cast<int>(cin), hi = static_cast<int>(h), wi = static_cast<int>(w), co = static_cast<int>(cout);
  const T* wk = static_cast<const T*>(packed);
  // The wgmma kernel copies rows of 64 or 128 values with the copy engine: y's rows are 16-byte aligned
  // when y is.
  constexpr DType t = std::is_same_v<T, __half> ? DType::F16 : DType::BF16;
  if (conv3x3_wgmma_takes(h, w) && reinterpret_cast<uintptr_t>(y) % 16 == 0) {
    launch_conv3x3_wgmma(xs, t, batch, ci, hi, wi, wk, K, co, bias, y, sizeof(Y) == 4 ? DType::F32 : t, accumulate, s);
    return;
  }
  constexpr int bytes = kConvStages * sizeof(ConvStage<T>);
  static const bool configured = [] {  // shared memory past 48 KB is opt-in, once per kernel
    AMSKV_CUDA_CHECK(cudaFuncSetAttribute(conv3x3_kernel<T, Y>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    return true;
  }();
  (void)configured;
  conv3x3_kernel<T, Y><<<conv3x3_grid(batch, h, w, cout), kConvThreads, bytes, s>>>(xs, ci, hi, wi, wk, K, co, bias,
                                                                                   y, accumulate);
}

// A convolution with a few output channels (the decoder's last one: 160 -> 3 at full resolution) is no
// product for tensor cores: through im2col it wrote 190 MB of columns per image for 0.6 GFLOP. Here a block
// takes 8 output rows × 128 positions and brings 8 input channels at a time (with their 1-position border,
// normalised as read) into shared memory as fp32: each warp whole rows of 130 values, two rows' reads in
// flight per lane. Each thread accumulates every output channel of 4 consecutive positions of one row: per
// channel and kernel row it reads the 6 inputs those need as one float4 and one float2, and per channel its
// 9·kCout weights as float4s. Before, a thread took 4 positions 32 apart, read 3 inputs and 3 weights for
// every 3 products, and split every loaded element's index by divisions: the 16 launches of two d16
// generations of 256 images took 32.5–34.2 ms (two device calls), then 12.2 with 16-bit inputs (0.45 TB/s).
// Its loads are not what holds it back, it seems, but issuing instructions: staging the raw rows with cp.async
// in two stages beside the tile, so that the loads overlap the products, halved the blocks per multiprocessor
// and took 20.1 ms against those 12.2. Binding each row's plane's normalisation once (one load of its scale
// and shift per row, not per value) brought it to 10.8 ms (another device call).
constexpr int kFewRows = 8, kFewCols = 128, kFewChannels = 8, kFewThreads = 256;
constexpr int kFewStride = kFewCols + 4;  // 130 used; rows of 528 bytes keep every thread's float4 aligned
constexpr int kFewTileRows = kFewChannels * (kFewRows + 2);  // (channel, input row) pairs of a chunk

template <class T, class X, class F, int kCout>
__global__ void __launch_bounds__(kFewThreads) conv3x3_few_outputs_kernel(const X* __restrict__ x, int cin, int h, int w,
                                                                  int in_pad, const T* __restrict__ wk, int64_t K,
                                                                  const float* __restrict__ bias, float* __restrict__ y,
                                                                  bool accumulate, F f) {
  constexpr int kWeights = (9 * kCout + 3) / 4 * 4;  // a channel's weights [tap][output], padded to float4s
  constexpr int kWarps = kFewThreads / 32;
  static_assert(kFewTileRows % (2 * kWarps) == 0, "every warp loads the same number of whole row pairs");
  __shared__ __align__(16) float tile[kFewTileRows][kFewStride];
  __shared__ __align__(16) float wts[kFewChannels][kWeights];
  const int col_tiles = w / kFewCols;
  const int oy0 = blockIdx.x / col_tiles * kFewRows, ox0 = (blockIdx.x % col_tiles) * kFewCols;
  const int64_t image = blockIdx.y, ih = h + 2 * in_pad, iw = w + 2 * in_pad;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  float acc[kCout][4];
#pragma unroll
  for (int o = 0; o < kCout; ++o)
#pragma unroll
    for (int q = 0; q < 4; ++q) acc[o][q] = 0.0f;
  for (int c0 = 0; c0 < cin; c0 += kFewChannels) {
    __syncthreads();  // the previous chunk is consumed
    for (int row0 = warp; row0 < kFewTileRows; row0 += 2 * kWarps) {
      float v[2][5];
      bool inside[2][5];
      int64_t planes[2];
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const int row = row0 + k * kWarps, c = row / (kFewRows + 2), iy = oy0 + row % (kFewRows + 2) - 1;
        const bool row_inside = row < kFewTileRows && iy >= 0 && iy < h;
        planes[k] = image * cin + c0 + c;
        const X* src = x + (planes[k] * ih + (row_inside ? iy : 0) + in_pad) * iw + in_pad;
#pragma unroll
        for (int u = 0; u < 5; ++u) {
          const int j = lane + 32 * u, ix = ox0 + j - 1;
          inside[k][u] = row_inside && j < kFewCols + 2 && ix >= 0 && ix < w;
          v[k][u] = inside[k][u] ? to_float(src[ix]) : 0.0f;
        }
      }
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const int row = row0 + k * kWarps;
        const auto g = f.at(planes[k]);  // the row's plane: its scale and shift read once
#pragma unroll
        for (int u = 0; u < 5; ++u) {
          const int j = lane + 32 * u;
          if (row < kFewTileRows && j < kFewCols + 2) tile[row][j] = inside[k][u] ? transform_for<T>(g, v[k][u]) : 0.0f;
        }
      }
    }
    for (int i = tid; i < kFewChannels * 9 * kCout; i += kFewThreads) {
      const int c = i / (9 * kCout), k = i % (9 * kCout), tap = k / kCout, o = k % kCout;
      wts[c][k] = to_float(wk[o * K + tap * int64_t{cin} + c0 + c]);
    }
    __syncthreads();
#pragma unroll 2
    for (int c = 0; c < kFewChannels; ++c) {
      float wv[kWeights];
#pragma unroll
      for (int i = 0; i < kWeights; i += 4) {
        const float4 q = *reinterpret_cast<const float4*>(&wts[c][i]);
        wv[i] = q.x, wv[i + 1] = q.y, wv[i + 2] = q.z, wv[i + 3] = q.w;
      }
#pragma unroll
      for (int ky = 0; ky < 3; ++ky) {
        const float* in = &tile[c * (kFewRows + 2) + warp + ky][4 * lane];
        const float4 a = *reinterpret_cast<const float4*>(in);
        const float2 b = *reinterpret_cast<const float2*>(in + 4);
        const float row[6] = {a.x, a.y, a.z, a.w, b.x, b.y};
#pragma unroll
        for (int kx = 0; kx < 3; ++kx)
#pragma unroll
          for (int o = 0; o < kCout; ++o)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[o][q] = fmaf(wv[(ky * 3 + kx) * kCout + o], row[q + kx], acc[o][q]);
      }
    }
  }
  const int oy = oy0 + warp;
  if (oy >= h) return;
#pragma unroll
  for (int o = 0; o < kCout; ++o) {
    float4* out = reinterpret_cast<float4*>(y + ((image * kCout + o) * h + oy) * int64_t{w} + ox0 + 4 * lane);
    const float add = bias ? bias[o] : 0.0f;
    float4 r = make_float4(acc[o][0] + add, acc[o][1] + add, acc[o][2] + add, acc[o][3] + add);
    if (accumulate) {
      const float4 old = *out;
      r.x += old.x, r.y += old.y, r.z += old.z, r.w += old.w;
    }
    *out = r;
  }
}

template <class T, class X, class F>
void launch_few_outputs(const X* x, int64_t batch, int64_t cin, int64_t h, int64_t w, int64_t in_pad,
                        const void* packed, int64_t K, int64_t cout, const float* bias, float* y, bool accumulate, F f,
                        cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>((h + kFewRows - 1) / kFewRows * (w / kFewCols)), static_cast<unsigned>(batch));
  const int ci = static_cast<int>(cin), hi = static_cast<int>(h), wi = static_cast<int>(w), pi = static_cast<int>(in_pad);
  const T* wk = static_cast<const T*>(packed);
  switch (cout) {
    case 1: conv3x3_few_outputs_kernel<T, X, F, 1><<<grid, kFewThreads, 0, s>>>(x, ci, hi, wi, pi, wk, K, bias, y, accumulate, f); break;
    case 2: conv3x3_few_outputs_kernel<T, X, F, 2><<<grid, kFewThreads, 0, s>>>(x, ci, hi, wi, pi, wk, K, bias, y, accumulate, f); break;
    case 3: conv3x3_few_outputs_kernel<T, X, F, 3><<<grid, kFewThreads, 0, s>>>(x, ci, hi, wi, pi, wk, K, bias, y, accumulate, f); break;
    default: conv3x3_few_outputs_kernel<T, X, F, 4><<<grid, kFewThreads, 0, s>>>(x, ci, hi, wi, pi, wk, K, bias, y, accumulate, f); break;
  }
}

}  // namespace

// Whether the device lets a block have the three stages' shared memory (Hopper: 227 KB; an A100's 163 KB does
// not, and those convolutions then take im2col). Asked once, of the device current at the first call.
static bool conv3x3_shared_memory_fits() {
  static const bool fits = [] {
    int optin = 0;
    return current_device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, optin) &&
           static_cast<size_t>(optin) >= kConvStages * sizeof(ConvStage<__nv_bfloat16>);
  }();
  return fits;
}

// Planes that the mma.sync kernel's tiles take (and so the wgmma kernel's too).
static bool mma_sync_tiles_take(int64_t h, int64_t w) {
  return h > 0 && h % kRows == 0 && w > 0 && w % kPositions == 0;
}

bool conv3x3_implicit_fits(int64_t cin, int64_t cout, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t pad,
                           int64_t packed_k, DType compute) {
  const bool planes = (conv3x3_shared_memory_fits() && mma_sync_tiles_take(h, w)) || conv3x3_wgmma_takes(h, w);
  return planes && (compute == DType::BF16 || compute == DType::F16) && kh == 3 && kw == 3 && pad == 1 &&
         cin % kChannels == 0 && cin > 0 && cout % kCouts == 0 && cout > 0 && packed_k % 8 == 0 &&
         packed_k >= 9 * cin && (h + 2) * (w + 2) + kLayoutSpan < (int64_t{1} << 31);  // the layout kernel's ints
}

int conv3x3_implicit_output_alignment(int64_t h, int64_t w) {
  return conv3x3_shared_memory_fits() && mma_sync_tiles_take(h, w) ? 8 : 16;
}

int64_t conv3x3_implicit_scratch(int64_t batch, int64_t cin, int64_t h, int64_t w) {
  return batch * (h + 2) * (w + 2) * cin;
}

void launch_conv3x3_implicit(const void* x, DType x_type, int64_t batch, int64_t cin, int64_t h, int64_t w,
                             int64_t in_pad, bool nearest2x, void* scratch, const void* packed, DType compute,
                             int64_t packed_k, int64_t cout, const float* bias, const float* scale, const float* shift,
                             bool silu, void* y, DType y_type, bool accumulate, cudaStream_t s) {
  AMSKV_CHECK(conv3x3_implicit_fits(cin, cout, h, w, 3, 3, 1, packed_k, compute),
              "implicit conv: unsupported shape ", cin, "->", cout, " on ", h, "x", w);
  AMSKV_CHECK(batch > 0 && batch < 65536, "implicit conv: batch ", batch, " (1..65535)");
  AMSKV_CHECK(!scale || in_pad == 0, "implicit conv: the normalised input must be unpadded");
  AMSKV_CHECK(x_type == DType::F32 || x_type == compute, "implicit conv: input of type ", dtype_name(x_type));
  AMSKV_CHECK(y_type == DType::F32 || y_type == compute, "implicit conv: output of type ", dtype_name(y_type));
  AMSKV_CHECK(!nearest2x || (!scale && in_pad == 0 && h % 2 == 0 && w % 2 == 0),
              "implicit conv: the input to upsample must be unpadded and not normalised, the output of even sides");
  AMSKV_CHECK(reinterpret_cast<uintptr_t>(y) % conv3x3_implicit_output_alignment(h, w) == 0,
              "implicit conv: the output must be ", conv3x3_implicit_output_alignment(h, w), "-byte aligned for ", h,
              " rows of ", w);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    T* xs = static_cast<T*>(scratch);
    auto conv_into = [&](const auto* input, auto f) {
      if (y_type == DType::F32)
        launch_conv3x3<T>(input, batch, cin, h, w, in_pad, nearest2x, xs, packed, packed_k, cout, bias,
                          static_cast<float*>(y), accumulate, f, s);
      else
        launch_conv3x3<T>(input, batch, cin, h, w, in_pad, nearest2x, xs, packed, packed_k, cout, bias,
                          static_cast<T*>(y), accumulate, f, s);
    };
    auto conv = [&](auto f) {
      if (x_type == DType::F32)
        conv_into(static_cast<const float*>(x), f);
      else
        conv_into(static_cast<const T*>(x), f);
    };
    if (scale)
      conv(Normalised{scale, shift, silu});
    else
      conv(AsIs{});
  };
  if (compute == DType::BF16)
    run(__nv_bfloat16{});
  else
    run(__half{});
  AMSKV_CUDA_LAUNCHED();
}

}  // namespace amskv::backend::cuda

namespace amskv::backend::cuda {

bool conv3x3_few_outputs_fits(int64_t cin, int64_t cout, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t pad,
                              int64_t packed_k) {
  return kh == 3 && kw == 3 && pad == 1 && cout >= 1 && cout <= 4 && cin > 0 && cin % kFewChannels == 0 && h > 0 &&
         w > 0 && w % kFewCols == 0 && packed_k >= 9 * cin && (h + kFewRows - 1) / kFewRows * (w / kFewCols) < (int64_t{1} << 31);
}

void launch_conv3x3_few_outputs(const void* x, DType x_type, int64_t batch, int64_t cin, int64_t h, int64_t w,
                                int64_t in_pad, const void* packed, DType weight_type, int64_t packed_k, int64_t cout,
                                const float* bias, const float* scale, const float* shift, bool silu, float* y,
                                bool accumulate, cudaStream_t s) {
  AMSKV_CHECK(conv3x3_few_outputs_fits(cin, cout, h, w, 3, 3, 1, packed_k), "few-output conv: unsupported shape ", cin,
              "->", cout, " on ", h, "x", w);
  AMSKV_CHECK(batch > 0 && batch < 65536, "few-output conv: batch ", batch, " (1..65535)");
  AMSKV_CHECK(!scale || in_pad == 0, "few-output conv: the normalised input must be unpadded");
  AMSKV_CHECK(x_type == DType::F32 || x_type == weight_type, "few-output conv: input of type ", dtype_name(x_type),
              " with weights of ", dtype_name(weight_type));
  AMSKV_CHECK(reinterpret_cast<uintptr_t>(y) % 16 == 0, "few-output conv: the output must be 16-byte aligned");
  AMSKV_DISPATCH_FLOAT(weight_type, T, {
    auto run = [&](const auto* xin) {
      if (scale)
        launch_few_outputs<T>(xin, batch, cin, h, w, in_pad, packed, packed_k, cout, bias, y, accumulate,
                              Normalised{scale, shift, silu}, s);
      else
        launch_few_outputs<T>(xin, batch, cin, h, w, in_pad, packed, packed_k, cout, bias, y, accumulate, AsIs{}, s);
    };
    if (x_type == DType::F32)
      run(static_cast<const float*>(x));
    else
      run(static_cast<const T*>(x));
  });
  AMSKV_CUDA_LAUNCHED();
}

}  // namespace amskv::backend::cuda
