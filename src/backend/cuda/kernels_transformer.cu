// Element-wise and normalisation kernels of the transformer block and the generation loop.
#include <algorithm>

#include "backend/cuda/kernels.h"
#include "backend/cuda/kernels_common.cuh"

namespace amskv::backend::cuda {

namespace {

constexpr int kThreads = 256;

template <class S, class D>
__global__ void convert_kernel(const S* src, D* dst, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    dst[i] = from_float<D>(to_float(src[i]));
}

// Widths that are not a multiple of four: one warp per token, mean and biased variance in double.
template <class Y>
__global__ void layer_norm_modulate_kernel(const float* x, int64_t rows, int64_t tokens, int64_t width,
                                           const float* scale, const float* shift, int64_t mod_stride, Y* y) {
  const int64_t token = blockIdx.x * int64_t{blockDim.x / 32} + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (token >= rows * tokens) return;
  const int64_t r = token / tokens;
  const float* xi = x + token * width;
  double sum = 0.0;
  for (int64_t c = lane; c < width; c += 32) sum += xi[c];
  const double mean = warp_sum(sum) / static_cast<double>(width);
  double sq = 0.0;
  for (int64_t c = lane; c < width; c += 32) {
    const double d = xi[c] - mean;
    sq += d * d;
  }
  const double var = warp_sum(sq) / static_cast<double>(width);
  const float inv = static_cast<float>(1.0 / sqrt(var + 1e-6));
  const float m = static_cast<float>(mean);
  const float* s = scale + r * mod_stride;
  const float* b = shift + r * mod_stride;
  Y* yi = y + token * width;
  for (int64_t c = lane; c < width; c += 32) yi[c] = from_float<Y>((xi[c] - m) * inv * (1.0f + s[c]) + b[c]);
}

// Every real width (a multiple of four up to 4 · kNormQuads · kNormMaxThreads): one block per token, the token
// held in registers, kNormQuads float4s per thread, in as many warps as the width needs (norm_threads). The
// warp-per-token kernel walks the width serially and left the card idle at batch 1, where a scale has a
// handful of tokens (35% of a d30 image's GPU time went there); this one reads x once, in 16-byte accesses,
// and reduces over the block. Blocks of 128 threads with eight float4s each for widths past 2048 took 156
// registers a thread, three blocks per multiprocessor: d36's norms (width 2304, 576 float4s in 1024 slots)
// moved 2.5 TB/s where d30's (width 1920, four float4s a thread, 94 registers, five blocks) moved 3.3.
// With a branch, the gated residual step comes first (x += gate · branch, written back), so the block's
// residual add and the norm that reads its result share one pass over x and one launch.
constexpr int kNormQuads = 4;
constexpr int kNormMaxThreads = 256;
// Widths the block-per-token kernel takes, and the threads of a width's block: its float4s, kNormQuads to a
// thread, in whole warps (at most kNormMaxThreads, which block_sum_once's shared array is sized for).
inline bool norm_vec_width(int64_t width) {
  return width > 0 && width % 4 == 0 && width <= 4 * kNormQuads * kNormMaxThreads;
}
inline int norm_threads(int64_t width) {
  return static_cast<int>((width / 4 + 32 * kNormQuads - 1) / (32 * kNormQuads)) * 32;
}
template <class Y, class B>
__global__ void __launch_bounds__(kNormMaxThreads) layer_norm_modulate_vec_kernel(
    float* __restrict__ x, const B* __restrict__ branch, const float* __restrict__ gate, int64_t gate_stride,
    int64_t tokens, int width, const float* __restrict__ scale, const float* __restrict__ shift, int64_t mod_stride,
    Y* __restrict__ y) {
  const int64_t token = blockIdx.x, r = token / tokens;
  const int quads = width / 4;
  float* xi = x + token * width;
  const float* sc = scale + r * mod_stride;
  const float* sh = shift + r * mod_stride;
  float4 v[kNormQuads], mul[kNormQuads], add[kNormQuads];
  // Small batches make this kernel a chain of latencies: the modulation is read before the statistics
  // (nothing waits on it), and the mean and the mean square share one reduction. Both sums are float64
  // (each thread's values squared in float64 too), so E[x²] − mean² keeps float32 accuracy.
  double s = 0.0, q = 0.0;
#pragma unroll
  for (int i = 0; i < kNormQuads; ++i) {
    const int c = threadIdx.x + i * blockDim.x;
    v[i] = c < quads ? load4(xi + 4 * c) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (c < quads) mul[i] = load4(sc + 4 * c), add[i] = load4(sh + 4 * c);
    if (branch && c < quads) {
      const float4 g = load4(gate + r * gate_stride + 4 * c), b = load4(branch + token * width + 4 * c);
      v[i].x += g.x * b.x, v[i].y += g.y * b.y, v[i].z += g.z * b.z, v[i].w += g.w * b.w;
      store4(xi + 4 * c, v[i]);
    }
    const double a = v[i].x, b = v[i].y, cc = v[i].z, d = v[i].w;
    s += (a + b) + (cc + d);
    q += (a * a + b * b) + (cc * cc + d * d);
  }
  block_sum_once<kNormMaxThreads>(s, q);
  const double mean = s / width, var = fmax(q / width - mean * mean, 0.0);
  const float m = static_cast<float>(mean);
  const float inv = static_cast<float>(1.0 / sqrt(var + 1e-6));
  Y* yi = y + token * width;
#pragma unroll
  for (int i = 0; i < kNormQuads; ++i) {
    const int c = threadIdx.x + i * blockDim.x;
    if (c < quads) {
      const float4 a = mul[i], b = add[i];
      store4(yi + 4 * c, make_float4((v[i].x - m) * inv * (1.0f + a.x) + b.x, (v[i].y - m) * inv * (1.0f + a.y) + b.y,
                                     (v[i].z - m) * inv * (1.0f + a.z) + b.z, (v[i].w - m) * inv * (1.0f + a.w) + b.w));
    }
  }
}

// Item `item` = (row, token, head) of the q/k split: its head in the fused qkv row and in the [rows][heads][n]
// outputs. False (`it` left as it was) past the end.
struct QkItem {
  int64_t head, src, dst;
};
__device__ __forceinline__ bool qk_item(int64_t item, int64_t rows, int64_t n, int64_t heads, int64_t dh,
                                        QkItem& it) {
  if (item >= rows * n * heads) return false;
  const int64_t h = item % heads, t = (item / heads) % n, r = item / (heads * n);
  it = {h, (r * n + t) * 3 * heads * dh + h * dh, ((r * heads + h) * n + t) * dh};
  return true;
}

// One warp per (row, token, head): split the fused qkv, l2-normalise q and k, scale q by the head's tau.
template <class T>
__global__ void qk_norm_split_kernel(const T* qkv, int64_t rows, int64_t n, int64_t heads, int64_t dh,
                                     const float* tau, T* q, T* k, T* v) {
  QkItem it;
  if (!qk_item(blockIdx.x * int64_t{blockDim.x / 32} + threadIdx.x / 32, rows, n, heads, dh, it)) return;
  const int lane = threadIdx.x & 31;
  const int64_t C = heads * dh, h = it.head, dst = it.dst;
  const T* src = qkv + it.src;
  float qq = 0.0f, kk = 0.0f;
  for (int64_t d = lane; d < dh; d += 32) {
    const float a = to_float(src[d]), b = to_float(src[C + d]);
    qq += a * a;
    kk += b * b;
  }
  qq = warp_sum(qq);
  kk = warp_sum(kk);
  const float qs = tau[h] / fmaxf(sqrtf(qq), 1e-12f);
  const float ks = 1.0f / fmaxf(sqrtf(kk), 1e-12f);
  for (int64_t d = lane; d < dh; d += 32) {
    q[dst + d] = from_float<T>(to_float(src[d]) * qs);
    k[dst + d] = from_float<T>(to_float(src[C + d]) * ks);
    v[dst + d] = src[2 * C + d];
  }
}

// Head widths that are a multiple of 64 (every VAR model: 64): half a warp per (row, token, head), each lane
// moving four neighbours of q, k and v per 64 dims in one access each (load4/store4), all loaded before the
// reductions. A warp per head with two-element accesses kept too few bytes in flight: 2.4 TB/s at d16
// batch 128, where this kernel moves 63 GB per two generations.
template <class T, int kQuads>  // kQuads = dh / 64
__global__ void qk_norm_split_vec_kernel(const T* __restrict__ qkv, int64_t rows, int64_t n, int64_t heads,
                                         const float* __restrict__ tau, T* __restrict__ q, T* __restrict__ k,
                                         T* __restrict__ v) {
  constexpr int dh = 64 * kQuads;
  QkItem it{};  // a dead half warp keeps zeros: nothing of it is read or written
  // Both halves of a warp take part in the reductions.
  const bool live = qk_item((blockIdx.x * int64_t{blockDim.x} + threadIdx.x) >> 4, rows, n, heads, dh, it);
  const int64_t C = heads * dh, h = it.head, dst = it.dst;
  const T* src = qkv + it.src;
  const int i4 = 4 * (threadIdx.x & 15);
  float4 a[kQuads], b[kQuads], c[kQuads];
  float qq = 0.0f, kk = 0.0f;
#pragma unroll
  for (int j = 0; j < kQuads; ++j) {
    const int d = 64 * j + i4;
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    a[j] = live ? load4(src + d) : zero, b[j] = live ? load4(src + C + d) : zero;
    c[j] = live ? load4(src + 2 * C + d) : zero;
    qq += (a[j].x * a[j].x + a[j].y * a[j].y) + (a[j].z * a[j].z + a[j].w * a[j].w);
    kk += (b[j].x * b[j].x + b[j].y * b[j].y) + (b[j].z * b[j].z + b[j].w * b[j].w);
  }
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) {  // within the half warp
    qq += __shfl_xor_sync(0xffffffffu, qq, o);
    kk += __shfl_xor_sync(0xffffffffu, kk, o);
  }
  if (!live) return;
  const float qs = tau[h] / fmaxf(sqrtf(qq), 1e-12f);
  const float ks = 1.0f / fmaxf(sqrtf(kk), 1e-12f);
#pragma unroll
  for (int j = 0; j < kQuads; ++j) {
    const int d = 64 * j + i4;
    store4(q + dst + d, make_float4(a[j].x * qs, a[j].y * qs, a[j].z * qs, a[j].w * qs));
    store4(k + dst + d, make_float4(b[j].x * ks, b[j].y * ks, b[j].z * ks, b[j].w * ks));
    store4(v + dst + d, c[j]);
  }
}

// Widths that are a multiple of four (every real model): x, the gate and the branch in 4-element accesses.
template <class B>
__global__ void gated_residual_vec_kernel(float* __restrict__ x, const B* __restrict__ branch, int64_t tokens,
                                          int64_t quads_per_token, int64_t quads, const float* __restrict__ gate,
                                          int64_t gate_stride) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < quads; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t t = i / quads_per_token, c = i - t * quads_per_token;
    const float4 g = load4(gate + (t / tokens) * gate_stride + 4 * c), b = load4(branch + 4 * i);
    float4 v = load4(x + 4 * i);
    v.x += g.x * b.x, v.y += g.y * b.y, v.z += g.z * b.z, v.w += g.w * b.w;
    store4(x + 4 * i, v);
  }
}

// One block per token (grid-stride over tokens): the row's gate is read once per element, no division per
// element.
template <class B>
__global__ void gated_residual_kernel(float* x, const B* branch, int64_t rows, int64_t tokens, int64_t width,
                                      const float* gate, int64_t gate_stride) {
  for (int64_t t = blockIdx.x; t < rows * tokens; t += gridDim.x) {
    const float* g = gate + (t / tokens) * gate_stride;
    float* xi = x + t * width;
    const B* bi = branch + t * width;
    for (int64_t c = threadIdx.x; c < width; c += blockDim.x) xi[c] += g[c] * to_float(bi[c]);
  }
}

template <class Y>
__global__ void silu_kernel(const float* x, Y* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const float v = x[i];
    y[i] = from_float<Y>(v / (1.0f + expf(-v)));
  }
}

template <class T>
__global__ void gelu_tanh_kernel(T* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const float v = to_float(x[i]);
    const float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
    x[i] = from_float<T>(0.5f * v * (1.0f + tanhf(u)));
  }
}

__global__ void gather_rows_kernel(const float* table, int64_t width, int64_t table_rows, const int64_t* ids,
                                   int64_t count, float* out, int* bad) {
  const int64_t total = count * width;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t row = i / width, c = i % width, id = ids[row];
    if (id < 0 || id >= table_rows) {
      *bad = 1;
      out[i] = 0.0f;
    } else {
      out[i] = table[id * width + c];
    }
  }
}

// One CTA per (row, head) block. Tokens move in chunks staged in shared memory: a chunk reads all of its
// sources before writing any destination, and a later chunk's sources (picks[j] >= j) lie at or after every
// position an earlier chunk wrote, so the in-place compaction never reads a token it already overwrote.
constexpr int64_t kKeepStageUnits = 8192;  // 16 KB of 2-byte units
__global__ void keep_tokens_kernel(uint16_t* store, int64_t store_stride, const uint16_t* fresh, int64_t fresh_tokens,
                                   const int32_t* picks, int64_t blocks, int64_t count, int64_t held, int64_t token) {
  __shared__ uint16_t stage[kKeepStageUnits];
  const int64_t chunk = kKeepStageUnits / token;
  for (int64_t b = blockIdx.x; b < blocks; b += gridDim.x) {
    uint16_t* blk = store + b * store_stride;
    const uint16_t* fr = fresh + b * fresh_tokens * token;
    const int32_t* pk = picks + b * count;
    for (int64_t j0 = 0; j0 < count; j0 += chunk) {
      const int64_t units = min(chunk, count - j0) * token;
      for (int64_t i = threadIdx.x; i < units; i += blockDim.x) {
        const int64_t src = pk[j0 + i / token], c = i % token;
        stage[i] = src < held ? blk[src * token + c] : fr[(src - held) * token + c];
      }
      __syncthreads();
      for (int64_t i = threadIdx.x; i < units; i += blockDim.x) blk[j0 * token + i] = stage[i];
      __syncthreads();
    }
  }
}

__global__ void add_rows_kernel(float* x, int64_t groups, const float* table, int64_t n) {
  const int64_t total = groups * n;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x)
    x[i] += table[i % n];
}

template <class Y>
__global__ void transpose_kernel(const float* x, int64_t batch, int64_t a, int64_t b, Y* y) {
  const int64_t total = batch * a * b;
  for (int64_t o = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; o < total; o += int64_t{gridDim.x} * blockDim.x) {
    // o indexes y [batch, b, a]
    const int64_t i = o % a, j = (o / a) % b, n = o / (a * b);
    y[o] = from_float<Y>(x[(n * a + i) * b + j]);
  }
}

__global__ void cfg_blend_kernel(const float* logits, float t, float* guided, int64_t half) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < half; i += int64_t{gridDim.x} * blockDim.x)
    guided[i] = (1.0f + t) * logits[i] - t * logits[half + i];
}

template <class T>
__global__ void add_bias_columns_kernel(T* d, int64_t m, int64_t n, int64_t ldd, int64_t batch, int64_t stride,
                                        const float* bias) {
  const int64_t total = batch * m * n;
  for (int64_t o = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; o < total; o += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = o % m, j = (o / m) % n, b = o / (m * n);
    T* p = d + b * stride + j * ldd + i;
    *p = from_float<T>(to_float(*p) + bias[i]);
  }
}

// grid.y walks the (image, channel) planes.
template <class Y>
__global__ void bias_planes_kernel(Y* y, int64_t planes, int64_t channels, int64_t plane, const float* bias,
                                   bool accumulate) {
  for (int64_t p = blockIdx.y; p < planes; p += gridDim.y) {
    const float v = bias ? bias[p % channels] : 0.0f;
    Y* d = y + p * plane;
    for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < plane; i += int64_t{gridDim.x} * blockDim.x)
      d[i] = from_float<Y>(accumulate ? to_float(d[i]) + v : v);
  }
}

__global__ void accumulate_kernel(float* y, float a, const float* x1, float b, const float* x2, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    y[i] += x1[i] * a + x2[i] * b;
}

__global__ void to_unit_range_kernel(float* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    x[i] = (fminf(fmaxf(x[i], -1.0f), 1.0f) + 1.0f) * 0.5f;
}

// The block-per-token norm.
template <class Y, class B>
void launch_norm_vec(int64_t items, float* x, const B* branch, const float* gate, int64_t gate_stride, int64_t tokens,
                     int64_t width, const float* scale, const float* shift, int64_t mod_stride, Y* y, cudaStream_t s) {
  layer_norm_modulate_vec_kernel<Y, B><<<static_cast<unsigned>(items), norm_threads(width), 0, s>>>(
      x, branch, gate, gate_stride, tokens, static_cast<int>(width), scale, shift, mod_stride, y);
}

}  // namespace

void launch_convert(const void* src, DType from, void* dst, DType to, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  AMSKV_DISPATCH_FLOAT(from, S, AMSKV_DISPATCH_FLOAT(to, D, {
    convert_kernel<S, D><<<blocks_for(n, kThreads), kThreads, 0, s>>>(static_cast<const S*>(src), static_cast<D*>(dst), n);
  }));
  AMSKV_CUDA_LAUNCHED();
}

void launch_layer_norm_modulate(const float* x, int64_t rows, int64_t tokens, int64_t width, const float* scale,
                                const float* shift, int64_t mod_stride, void* y, DType y_type, cudaStream_t s) {
  const int64_t items = rows * tokens;
  if (items == 0) return;
  const size_t ys = dtype_size(y_type);
  const bool vec = norm_vec_width(width) && mod_stride % 4 == 0 && aligned4(x, 4) && aligned4(scale, 4) &&
                   aligned4(shift, 4) && aligned4(y, ys);
  AMSKV_DISPATCH_FLOAT(y_type, Y, {
    if (vec) {
      launch_norm_vec<Y, float>(items, const_cast<float*>(x), nullptr, nullptr, 0, tokens, width, scale, shift,
                                mod_stride, static_cast<Y*>(y), s);  // no branch: x is only read
    } else {
      constexpr int kWarps = 4;
      const auto blocks = static_cast<unsigned>((items + kWarps - 1) / kWarps);
      layer_norm_modulate_kernel<Y><<<blocks, 32 * kWarps, 0, s>>>(x, rows, tokens, width, scale, shift, mod_stride,
                                                                   static_cast<Y*>(y));
    }
  });
  AMSKV_CUDA_LAUNCHED();
}

bool launch_gated_residual_layer_norm(float* x, const void* branch, DType branch_type, int64_t rows, int64_t tokens,
                                      int64_t width, const float* gate, int64_t gate_stride, const float* scale,
                                      const float* shift, int64_t mod_stride, void* y, DType y_type, cudaStream_t s) {
  const int64_t items = rows * tokens;
  if (items == 0) return true;
  const size_t ys = dtype_size(y_type), bs = dtype_size(branch_type);
  if (!(norm_vec_width(width) && mod_stride % 4 == 0 && gate_stride % 4 == 0 && aligned4(x, 4) && aligned4(scale, 4) &&
        aligned4(shift, 4) && aligned4(gate, 4) && aligned4(y, ys) && aligned4(branch, bs)))
    return false;
  AMSKV_DISPATCH_FLOAT(branch_type, B, AMSKV_DISPATCH_FLOAT(y_type, Y, {
    launch_norm_vec<Y, B>(items, x, static_cast<const B*>(branch), gate, gate_stride, tokens, width, scale, shift,
                          mod_stride, static_cast<Y*>(y), s);
  }));
  AMSKV_CUDA_LAUNCHED();
  return true;
}

void launch_qk_norm_split(const void* qkv, DType t, int64_t rows, int64_t n, int64_t heads, int64_t head_dim,
                          const float* tau, void* q, void* k, void* v, cudaStream_t s) {
  const int64_t items = rows * n * heads;
  if (items == 0) return;
  constexpr int kWarps = 8;
  const auto blocks = static_cast<unsigned>((items + kWarps - 1) / kWarps);
  const auto half_warp_blocks = static_cast<unsigned>((items + 2 * kWarps - 1) / (2 * kWarps));
  const size_t es = dtype_size(t);
  const bool vec = (head_dim == 64 || head_dim == 128) && aligned4(qkv, es) && aligned4(q, es) && aligned4(k, es) &&
                   aligned4(v, es);
  AMSKV_DISPATCH_FLOAT(t, T, {
    const auto* src = static_cast<const T*>(qkv);
    auto *qd = static_cast<T*>(q), *kd = static_cast<T*>(k), *vd = static_cast<T*>(v);
    if (vec && head_dim == 64)
      qk_norm_split_vec_kernel<T, 1><<<half_warp_blocks, 32 * kWarps, 0, s>>>(src, rows, n, heads, tau, qd, kd, vd);
    else if (vec)
      qk_norm_split_vec_kernel<T, 2><<<half_warp_blocks, 32 * kWarps, 0, s>>>(src, rows, n, heads, tau, qd, kd, vd);
    else
      qk_norm_split_kernel<T><<<blocks, 32 * kWarps, 0, s>>>(src, rows, n, heads, head_dim, tau, qd, kd, vd);
  });
  AMSKV_CUDA_LAUNCHED();
}

void launch_gated_residual_add(float* x, const void* branch, DType branch_type, int64_t rows, int64_t tokens,
                               int64_t width, const float* gate, int64_t gate_stride, cudaStream_t s) {
  const int64_t n = rows * tokens * width;
  if (n == 0) return;
  const bool vec = width % 4 == 0 && gate_stride % 4 == 0 && aligned4(x, 4) && aligned4(gate, 4) &&
                   aligned4(branch, dtype_size(branch_type));
  AMSKV_DISPATCH_FLOAT(branch_type, B, {
    if (vec) {
      gated_residual_vec_kernel<B><<<blocks_for(n / 4, kThreads), kThreads, 0, s>>>(
          x, static_cast<const B*>(branch), tokens, width / 4, n / 4, gate, gate_stride);
    } else {
      const auto blocks = static_cast<unsigned>(std::min<int64_t>(rows * tokens, kMaxBlocks));
      gated_residual_kernel<B><<<blocks, kThreads, 0, s>>>(x, static_cast<const B*>(branch), rows, tokens, width, gate,
                                                           gate_stride);
    }
  });
  AMSKV_CUDA_LAUNCHED();
}

void launch_silu(const float* x, void* y, DType y_type, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  AMSKV_DISPATCH_FLOAT(y_type, Y, { silu_kernel<Y><<<blocks_for(n, kThreads), kThreads, 0, s>>>(x, static_cast<Y*>(y), n); });
  AMSKV_CUDA_LAUNCHED();
}

void launch_gelu_tanh(void* x, DType t, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  AMSKV_DISPATCH_FLOAT(t, T, { gelu_tanh_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, s>>>(static_cast<T*>(x), n); });
  AMSKV_CUDA_LAUNCHED();
}

void launch_gather_rows(const float* table, int64_t width, int64_t table_rows, const int64_t* ids, int64_t count,
                        float* out, int* bad, cudaStream_t s) {
  if (count * width == 0) return;
  gather_rows_kernel<<<blocks_for(count * width, kThreads), kThreads, 0, s>>>(table, width, table_rows, ids, count, out,
                                                                               bad);
  AMSKV_CUDA_LAUNCHED();
}

void launch_keep_tokens(void* store, int64_t store_stride, const void* fresh, int64_t fresh_tokens, const int32_t* picks,
                        int64_t blocks, int64_t count, int64_t held, int64_t width, int64_t elem_bytes, cudaStream_t s) {
  if (blocks * count == 0) return;
  // Every dtype here is a whole number of 2-byte units.
  const int64_t u = elem_bytes / 2, token = width * u;
  AMSKV_CHECK(elem_bytes % 2 == 0 && token <= kKeepStageUnits, "cuda keep_tokens: tokens of ", width, " x ",
              elem_bytes, " bytes are not supported");
  keep_tokens_kernel<<<static_cast<unsigned>(std::min<int64_t>(blocks, kMaxBlocks)), kThreads, 0, s>>>(
      static_cast<uint16_t*>(store), store_stride * u, static_cast<const uint16_t*>(fresh), fresh_tokens, picks, blocks,
      count, held, token);
  AMSKV_CUDA_LAUNCHED();
}

void launch_add_rows(float* x, int64_t groups, const float* table, int64_t n, cudaStream_t s) {
  if (groups * n == 0) return;
  add_rows_kernel<<<blocks_for(groups * n, kThreads), kThreads, 0, s>>>(x, groups, table, n);
  AMSKV_CUDA_LAUNCHED();
}

void launch_transpose(const float* x, int64_t batch, int64_t a, int64_t b, void* y, DType y_type, cudaStream_t s) {
  const int64_t n = batch * a * b;
  if (n == 0) return;
  AMSKV_DISPATCH_FLOAT(y_type, Y, {
    transpose_kernel<Y><<<blocks_for(n, kThreads), kThreads, 0, s>>>(x, batch, a, b, static_cast<Y*>(y));
  });
  AMSKV_CUDA_LAUNCHED();
}

void launch_cfg_blend(const float* logits, float t, float* guided, int64_t half, cudaStream_t s) {
  if (half == 0) return;
  cfg_blend_kernel<<<blocks_for(half, kThreads), kThreads, 0, s>>>(logits, t, guided, half);
  AMSKV_CUDA_LAUNCHED();
}

void launch_add_bias_columns(void* d, DType t, int64_t m, int64_t n, int64_t ldd, int64_t batch, int64_t stride,
                             const float* bias, cudaStream_t s) {
  const int64_t total = m * n * batch;
  if (total == 0) return;
  AMSKV_DISPATCH_FLOAT(t, T, {
    add_bias_columns_kernel<T><<<blocks_for(total, kThreads), kThreads, 0, s>>>(static_cast<T*>(d), m, n, ldd, batch,
                                                                                 stride, bias);
  });
  AMSKV_CUDA_LAUNCHED();
}

void launch_bias_planes(void* y, DType y_type, int64_t batch, int64_t channels, int64_t plane, const float* bias,
                        bool accumulate, cudaStream_t s) {
  const int64_t n = batch * channels * plane;
  if (n == 0 || (accumulate && !bias)) return;
  AMSKV_DISPATCH_FLOAT(y_type, Y, {
    bias_planes_kernel<Y><<<plane_grid(batch * channels, plane, kThreads), kThreads, 0, s>>>(
        static_cast<Y*>(y), batch * channels, channels, plane, bias, accumulate);
  });
  AMSKV_CUDA_LAUNCHED();
}

void launch_accumulate(float* y, float a, const float* x1, float b, const float* x2, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  accumulate_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(y, a, x1, b, x2, n);
  AMSKV_CUDA_LAUNCHED();
}

void launch_to_unit_range(float* x, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  to_unit_range_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(x, n);
  AMSKV_CUDA_LAUNCHED();
}

}  // namespace amskv::backend::cuda
