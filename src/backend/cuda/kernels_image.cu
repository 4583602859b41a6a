// Kernels of the latent path and the VQVAE decoder: PyTorch-exact resampling (bicubic taps computed in double
// exactly like the CPU's, float accumulation in the same order), GroupNorm (statistics in double), padded-plane
// layout changes, the convolution epilogue, row softmax, and the inter-scale key similarity.
#include <algorithm>

#include <type_traits>

#include "backend/cuda/kernels.h"
#include "backend/cuda/kernels_common.cuh"
#include "backend/cuda/kernels_conv_input.cuh"

namespace amskv::backend::cuda {

namespace {

constexpr int kThreads = 256;
constexpr double kCubicA = -0.75;

__device__ __forceinline__ double cubic_near(double x) { return ((kCubicA + 2.0) * x - (kCubicA + 3.0)) * x * x + 1.0; }
__device__ __forceinline__ double cubic_far(double x) {
  return ((kCubicA * x - 5.0 * kCubicA) * x + 8.0 * kCubicA) * x - 4.0 * kCubicA;
}

// The 4 taps of output index o of a 1-D bicubic resize in -> out (spec C.7, as cpu::bicubic_taps).
__device__ __forceinline__ void cubic_taps(int64_t in, int64_t out, int64_t o, int64_t (&idx)[4], float (&w)[4]) {
  const double src = static_cast<double>(in) / static_cast<double>(out) * (static_cast<double>(o) + 0.5) - 0.5;
  const int64_t base = min(static_cast<int64_t>(floor(src)), in - 1);
  const double t = fmin(fmax(src - static_cast<double>(base), 0.0), 1.0);
  w[0] = static_cast<float>(cubic_far(t + 1.0));
  w[1] = static_cast<float>(cubic_near(t));
  w[2] = static_cast<float>(cubic_near(1.0 - t));
  w[3] = static_cast<float>(cubic_far(2.0 - t));
  for (int j = 0; j < 4; ++j) idx[j] = min(max(base - 1 + j, int64_t{0}), in - 1);
}

// One bicubic sample from a plane read through `at(y, x)`: along x for 4 rows, then along y.
template <class At>
__device__ __forceinline__ float bicubic_sample(const At& at, const int64_t (&iy)[4], const float (&wy)[4],
                                                const int64_t (&ix)[4], const float (&wx)[4]) {
  float rows[4];
  for (int i = 0; i < 4; ++i) {
    float acc = at(iy[i], ix[0]) * wx[0];
    acc += at(iy[i], ix[1]) * wx[1];
    acc += at(iy[i], ix[2]) * wx[2];
    acc += at(iy[i], ix[3]) * wx[3];
    rows[i] = acc;
  }
  float acc = rows[0] * wy[0];
  acc += rows[1] * wy[1];
  acc += rows[2] * wy[2];
  acc += rows[3] * wy[3];
  return acc;
}

__global__ void bicubic_kernel(const float* x, int64_t planes, int64_t ih, int64_t iw, int64_t oh, int64_t ow, float* y) {
  const int64_t total = planes * oh * ow;
  for (int64_t o = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; o < total; o += int64_t{gridDim.x} * blockDim.x) {
    const int64_t ox = o % ow, oy = (o / ow) % oh, p = o / (oh * ow);
    int64_t iy[4], ix[4];
    float wy[4], wx[4];
    cubic_taps(ih, oh, oy, iy, wy);
    cubic_taps(iw, ow, ox, ix, wx);
    const float* plane = x + p * ih * iw;
    y[o] = bicubic_sample([&](int64_t r, int64_t c) { return plane[r * iw + c]; }, iy, wy, ix, wx);
  }
}

__global__ void area_kernel(const float* x, int64_t planes, int64_t ih, int64_t iw, int64_t oh, int64_t ow, float* y) {
  const int64_t total = planes * oh * ow;
  for (int64_t o = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; o < total; o += int64_t{gridDim.x} * blockDim.x) {
    const int64_t ox = o % ow, oy = (o / ow) % oh, p = o / (oh * ow);
    const int64_t y0 = oy * ih / oh, y1 = ((oy + 1) * ih + oh - 1) / oh;
    const int64_t x0 = ox * iw / ow, x1 = ((ox + 1) * iw + ow - 1) / ow;
    const float* plane = x + p * ih * iw;
    double s = 0.0;
    for (int64_t r = y0; r < y1; ++r)
      for (int64_t c = x0; c < x1; ++c) s += plane[r * iw + c];
    y[o] = static_cast<float>(s / static_cast<double>((y1 - y0) * (x1 - x0)));
  }
}

// Plane-wise kernels: grid.y walks the planes, so positions inside a plane use 32-bit arithmetic.

template <class X, class Y>
__global__ void nearest2x_kernel(const X* x, int64_t planes, int h, int w, Y* y, int pad) {
  const int hp = 2 * h + 2 * pad, wp = 2 * w + 2 * pad;
  for (int64_t p = blockIdx.y; p < planes; p += gridDim.y) {
    const X* src = x + p * h * w;
    Y* dst = y + p * hp * wp;
    for (int o = blockIdx.x * blockDim.x + threadIdx.x; o < hp * wp; o += gridDim.x * blockDim.x) {
      const int r = o / wp - pad, c = o % wp - pad;
      const bool inside = r >= 0 && r < 2 * h && c >= 0 && c < 2 * w;
      dst[o] = from_float<Y>(inside ? to_float(src[(r / 2) * w + c / 2]) : 0.0f);
    }
  }
}

// GroupNorm statistics in two steps, so that a group is spread over several blocks (at batch 1 one block per
// group left most of the card idle: 65 µs per call): each block sums (x − pivot) and its square over a slice
// of its group in double, pivot = the group's first value (which keeps the variance free of cancellation:
// activations of a group are of similar magnitude); then one block per group adds the slices up.
template <class X>
__global__ void group_norm_partial_kernel(const X* __restrict__ x, int64_t count, int64_t slice,
                                          double* __restrict__ partial) {
  const int64_t unit = blockIdx.x, part = blockIdx.y;  // (image, group), slice of it
  const X* p = x + unit * count;
  const double pivot = to_float(p[0]);
  const int64_t begin = part * slice, end = min(count, begin + slice);
  double s = 0.0, q = 0.0;
  if (count % 4 == 0 && slice % 4 == 0 && reinterpret_cast<uintptr_t>(p) % (4 * sizeof(X)) == 0) {
    for (int64_t i = begin + 4 * threadIdx.x; i < end; i += 4 * blockDim.x) {
      const float4 v = load4(p + i);
      const double a = v.x - pivot, b = v.y - pivot, c = v.z - pivot, d = v.w - pivot;
      s += (a + b) + (c + d);
      q += (a * a + b * b) + (c * c + d * d);
    }
  } else {
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      const double d = to_float(p[i]) - pivot;
      s += d;
      q += d * d;
    }
  }
  s = block_sum(s);
  q = block_sum(q);
  if (threadIdx.x == 0) {
    partial[2 * (unit * gridDim.y + part)] = s;
    partial[2 * (unit * gridDim.y + part) + 1] = q;
  }
}

template <class X>
__global__ void group_norm_finish_kernel(const X* __restrict__ x, int64_t channels, int64_t hw, int64_t groups,
                                         int64_t parts, const double* __restrict__ partial,
                                         const float* __restrict__ gamma, const float* __restrict__ beta, float eps,
                                         float* __restrict__ scale, float* __restrict__ shift) {
  const int64_t unit = blockIdx.x;
  const int64_t b = unit / groups, g = unit % groups, cpg = channels / groups, count = cpg * hw;
  double s = 0.0, q = 0.0;
  for (int64_t i = 0; i < parts; ++i) s += partial[2 * (unit * parts + i)], q += partial[2 * (unit * parts + i) + 1];
  const double pivot = to_float(x[unit * count]);
  const double shifted_mean = s / static_cast<double>(count);
  const double mean = pivot + shifted_mean;
  const double var = fmax(q / static_cast<double>(count) - shifted_mean * shifted_mean, 0.0);
  const double rstd = 1.0 / sqrt(var + static_cast<double>(eps));
  for (int64_t j = threadIdx.x; j < cpg; j += blockDim.x) {
    const int64_t c = g * cpg + j;
    const double a = rstd * (gamma ? static_cast<double>(gamma[c]) : 1.0);
    scale[b * channels + c] = static_cast<float>(a);
    shift[b * channels + c] = static_cast<float>((beta ? static_cast<double>(beta[c]) : 0.0) - mean * a);
  }
}

template <class X, class Y>
__global__ void group_norm_apply_kernel(const X* x, int64_t planes, int h, int w, int pad, const float* scale,
                                        const float* shift, bool silu, Y* y) {
  const int hp = h + 2 * pad, wp = w + 2 * pad;
  for (int64_t p = blockIdx.y; p < planes; p += gridDim.y) {
    const X* src = x + p * h * w;
    Y* dst = y + p * hp * wp;
    const float a = scale[p], b = shift[p];
    for (int o = blockIdx.x * blockDim.x + threadIdx.x; o < hp * wp; o += gridDim.x * blockDim.x) {
      const int r = o / wp - pad, c = o % wp - pad;
      float v = 0.0f;
      if (r >= 0 && r < h && c >= 0 && c < w) {
        v = to_float(src[r * w + c]) * a + b;
        if (silu) v = v / (1.0f + expf(-v));
      }
      dst[o] = from_float<Y>(v);
    }
  }
}

// One thread per column entry of one image; grid.y covers (image, input channel) pairs.
template <class X, class Y, class F>
__global__ void im2col_kernel(const X* x, int64_t planes, int64_t cin, int64_t image_stride, int h, int w, int in_pad,
                              int kh, int kw, int pad, int oh, int ow, Y* cols, F f) {
  const int per_tap = oh * ow;
  const int ih = h + 2 * in_pad, iw = w + 2 * in_pad;
  // Plane p = image · cin + channel; its rows of the image's columns are (ky, kx, channel), one per tap.
  for (int64_t p = blockIdx.y; p < planes; p += gridDim.y) {
    const X* plane = x + p * ih * iw;
    Y* dst = cols + (p / cin) * image_stride + (p % cin) * per_tap;  // row (tap, channel): tap · cin + channel
    const int64_t tap_rows = cin * per_tap;
    const auto g = f.at(p);
    // One thread per output position writes its value for every tap: consecutive threads write
    // consecutive positions of each tap's row, and the division happens once per position.
    for (int q = blockIdx.x * blockDim.x + threadIdx.x; q < per_tap; q += gridDim.x * blockDim.x) {
      const int oy = q / ow, ox = q - oy * ow;
      for (int ky = 0; ky < kh; ++ky) {
        const int yy = oy + ky - pad;
        const bool row_in = yy >= 0 && yy < h;
        for (int kx = 0; kx < kw; ++kx) {
          const int xx = ox + kx - pad;
          const bool inside = row_in && xx >= 0 && xx < w;
          dst[(ky * kw + kx) * tap_rows + q] =
              from_float<Y>(inside ? transform_for<Y>(g, to_float(plane[(yy + in_pad) * iw + xx + in_pad])) : 0.0f);
        }
      }
    }
  }
}

// cols[b][begin .. stride) = 1 for every image b.
template <class Y>
__global__ void ones_tail_kernel(Y* cols, int64_t batch, int64_t stride, int64_t begin) {
  const int64_t per = stride - begin, total = batch * per;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x)
    cols[(i / per) * stride + begin + i % per] = from_float<Y>(1.0f);
}

// Eight values of a 16-bit or float type in 16-byte stores (the address aligned to 8 elements).
template <class T>
__device__ __forceinline__ void store8(T* p, const float (&v)[8]) {
  if constexpr (sizeof(T) == 4) {
    reinterpret_cast<float4*>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
  } else {
    uint4 raw;
    T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
    for (int i = 0; i < 8; ++i) e[i] = from_float<T>(v[i]);
    *reinterpret_cast<uint4*>(p) = raw;
  }
}

// Output rows that are a multiple of 8 wide and kernels at most 3 wide (every decoder convolution): a thread
// writes 8 neighbouring positions of each tap's row in one 16-byte store, reading the input row window once
// for all taps of that row (the scalar kernel stored 2 bytes at a time: im2col was 10% of a d30 image's GPU
// time).
template <class X, class Y, class F>
__global__ void im2col8_kernel(const X* __restrict__ x, int64_t planes, int64_t cin, int64_t image_stride, int h, int w,
                               int in_pad, int kh, int kw, int pad, int oh, int ow, Y* __restrict__ cols, F f) {
  const int per_tap = oh * ow, groups = per_tap / 8;
  const int ih = h + 2 * in_pad, iw = w + 2 * in_pad;
  for (int64_t p = blockIdx.y; p < planes; p += gridDim.y) {
    const X* plane = x + p * ih * iw;
    Y* dst = cols + (p / cin) * image_stride + (p % cin) * per_tap;  // row (tap, channel): tap · cin + channel
    const int64_t tap_rows = cin * per_tap;
    const auto g = f.at(p);
    for (int gidx = blockIdx.x * blockDim.x + threadIdx.x; gidx < groups; gidx += gridDim.x * blockDim.x) {
      const int q = 8 * gidx, oy = q / ow, ox = q - oy * ow;
      for (int ky = 0; ky < kh; ++ky) {
        const int yy = oy + ky - pad;
        const bool row_in = yy >= 0 && yy < h;
        float window[10];  // input columns ox − pad .. ox − pad + 9
#pragma unroll
        for (int j = 0; j < 10; ++j) {
          const int xx = ox - pad + j;
          window[j] = row_in && xx >= 0 && xx < w ? transform_for<Y>(g, to_float(plane[(yy + in_pad) * iw + xx + in_pad]))
                                                   : 0.0f;
        }
        for (int kx = 0; kx < kw; ++kx) {
          float v[8];
#pragma unroll
          for (int j = 0; j < 8; ++j) v[j] = window[kx + j];
          store8(dst + (ky * kw + kx) * tap_rows + q, v);
        }
      }
    }
  }
}

template <class P>
__global__ void softmax_rows_kernel(const float* s, int64_t cols, float scale, P* p) {
  const float* r = s + blockIdx.x * cols;
  P* out = p + blockIdx.x * cols;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) mx = fmaxf(mx, scale * r[j]);
  mx = block_max(mx);
  double sum = 0.0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) sum += expf(scale * r[j] - mx);
  const float inv = static_cast<float>(1.0 / block_sum(sum));
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) out[j] = from_float<P>(expf(scale * r[j] - mx) * inv);
}

// kVec consecutive elements of a key row as floats. When kVec is 8 (the launcher has checked the alignment):
// one 16-byte access of 8 16-bit values, two 16-byte accesses of 4 floats, or one 8-byte access of 8 int8
// values times the token's scale. When kVec is 1: one element.
template <int kVec, class P>
__device__ __forceinline__ void load_keys(const P* p, float scale, float (&v)[kVec]) {
  if constexpr (kVec == 1) {
    if constexpr (std::is_same_v<P, int8_t>)
      v[0] = static_cast<float>(*p) * scale;
    else
      v[0] = to_float(*p);
  } else if constexpr (std::is_same_v<P, int8_t>) {
    const uint2 raw = *reinterpret_cast<const uint2*>(p);
    const int8_t* e = reinterpret_cast<const int8_t*>(&raw);
    for (int i = 0; i < 8; ++i) v[i] = static_cast<float>(e[i]) * scale;
  } else if constexpr (sizeof(P) == 4) {
    const float4 a = load4(p), b = load4(p + 4);
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  } else {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const P* e = reinterpret_cast<const P*>(&raw);
    for (int i = 0; i < 8; ++i) v[i] = to_float(e[i]);
  }
}

constexpr int kSimilarityLanes = 8;  // lanes per current token: a warp compares 4 tokens at once

// P: the previous keys' element type, T or int8_t (an 8-bit store's, times prev_scale per token).
template <class T, class P, int kVec>
__global__ void key_similarity_kernel(const P* prev, const float* prev_scale, int64_t prev_scale_stride, const T* cur,
                                      int64_t prev_stride, int64_t cur_stride, int64_t blocks, int ps, int cs, int dh,
                                      double* partial) {
  // One warp per (row, head), its 8-lane groups taking 4 current tokens at a time, each lane kVec elements of
  // the head dimension per step. The taps of every output row and column depend on the sides alone: they are
  // computed once per block (in double, as cpu::bicubic_taps) into shared memory. A block per (row, head) and
  // a warp per token, with per-token taps and reductions, took 0.23 ms a layer (scales 1-6 at d30 batch 128,
  // 41 ms of a 1.1 s generation) and made AMS-KV's online decision slower than the full cache; this takes 56 µs.
  extern __shared__ int4 similarity_taps[];
  int4* tap_index = similarity_taps;                               // [cs] source indices, clamped
  float4* tap_weight = reinterpret_cast<float4*>(tap_index + cs);  // [cs]
  for (int o = threadIdx.x; o < cs; o += blockDim.x) {
    int64_t idx[4];
    float w[4];
    cubic_taps(ps, cs, o, idx, w);
    tap_index[o] = make_int4(static_cast<int>(idx[0]), static_cast<int>(idx[1]), static_cast<int>(idx[2]),
                             static_cast<int>(idx[3]));
    tap_weight[o] = make_float4(w[0], w[1], w[2], w[3]);
  }
  __syncthreads();
  const int lane = threadIdx.x & 31, group = lane / kSimilarityLanes, sub = lane % kSimilarityLanes;
  const int64_t rh = blockIdx.x * int64_t{blockDim.x / 32} + (threadIdx.x >> 5);
  if (rh >= blocks) return;  // after the only barrier
  const P* kp = prev + rh * prev_stride;  // [ps·ps][dh]
  const float* kp_scale = prev_scale ? prev_scale + rh * prev_scale_stride : nullptr;  // [ps·ps] (int8 keys)
  const T* kc = cur + rh * cur_stride;    // [cs·cs][dh]
  // Lane sub's elements: d = sub·kVec + step·8·kVec + e, e < kVec.
  constexpr int kStep = kSimilarityLanes * kVec;
  double sum = 0.0;  // the cosines of this group's tokens, in token order (lane sub == 0)
  const int n = cs * cs;
  for (int t0 = 0; t0 < n; t0 += 32 / kSimilarityLanes) {
    const int t = t0 + group;
    const bool live = t < n;
    const int tc = live ? t : n - 1;  // a dead group reads a live token and discards its sums
    const int oy = tc / cs, ox = tc - oy * cs;
    const int4 iy = tap_index[oy], ix = tap_index[ox];
    const float4 wy = tap_weight[oy], wx = tap_weight[ox];
    const int rows[4] = {iy.x * ps, iy.y * ps, iy.z * ps, iy.w * ps}, cols[4] = {ix.x, ix.y, ix.z, ix.w};
    const float wys[4] = {wy.x, wy.y, wy.z, wy.w}, wxs[4] = {wx.x, wx.y, wx.z, wx.w};
    float dot = 0.0f, uu = 0.0f, kk = 0.0f;
    for (int d0 = sub * kVec; d0 < dh; d0 += kStep) {
      // Along x for 4 rows, then along y: the order of bicubic_sample.
      float u[kVec];
      for (int i = 0; i < 4; ++i) {
        float r[kVec];
        for (int j = 0; j < 4; ++j) {
          const int token = rows[i] + cols[j];
          float v[kVec];
          load_keys<kVec>(kp + token * dh + d0, kp_scale ? kp_scale[token] : 1.0f, v);
          for (int e = 0; e < kVec; ++e) r[e] = j == 0 ? v[e] * wxs[0] : r[e] + v[e] * wxs[j];
        }
        for (int e = 0; e < kVec; ++e) u[e] = i == 0 ? r[e] * wys[0] : u[e] + r[e] * wys[i];
      }
      float k[kVec];
      load_keys<kVec>(kc + tc * dh + d0, 1.0f, k);
      for (int e = 0; e < kVec; ++e) {
        dot += u[e] * k[e];
        uu += u[e] * u[e];
        kk += k[e] * k[e];
      }
    }
    for (int o = kSimilarityLanes / 2; o > 0; o >>= 1) {
      dot += __shfl_xor_sync(0xffffffffu, dot, o);
      uu += __shfl_xor_sync(0xffffffffu, uu, o);
      kk += __shfl_xor_sync(0xffffffffu, kk, o);
    }
    if (live && sub == 0) sum += static_cast<double>(dot) / fmax(sqrt(static_cast<double>(uu) * kk), 1e-30);
  }
  // The groups' sums in a fixed order: the result depends on the data and the access width (the head
  // dimension and the alignment), not on the launch.
  for (int o = kSimilarityLanes; o < 32; o <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (lane == 0) partial[rh] = sum;
}

__global__ void mean_of_kernel(const double* values, int64_t count, double divisor, double* out) {
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += values[i];
  sum = block_sum(sum);
  if (threadIdx.x == 0) *out = sum / divisor;
}

}  // namespace

void launch_mean_of(const double* values, int64_t count, double divisor, double* out, cudaStream_t s) {
  mean_of_kernel<<<1, kThreads, 0, s>>>(values, count, divisor, out);
  AMSKV_CUDA_LAUNCHED();
}

void launch_bicubic(const float* x, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w, float* y,
                    cudaStream_t s) {
  const int64_t n = planes * out_h * out_w;
  if (n == 0) return;
  bicubic_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(x, planes, in_h, in_w, out_h, out_w, y);
  AMSKV_CUDA_LAUNCHED();
}

void launch_area(const float* x, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w, float* y,
                 cudaStream_t s) {
  const int64_t n = planes * out_h * out_w;
  if (n == 0) return;
  area_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(x, planes, in_h, in_w, out_h, out_w, y);
  AMSKV_CUDA_LAUNCHED();
}

void launch_nearest_upsample2x(const void* x, DType x_type, int64_t planes, int64_t h, int64_t w, void* y,
                               DType y_type, int64_t pad, cudaStream_t s) {
  const int64_t n = planes * (2 * h + 2 * pad) * (2 * w + 2 * pad);
  if (n == 0) return;
  AMSKV_DISPATCH_FLOAT(x_type, X, AMSKV_DISPATCH_FLOAT(y_type, Y, {
    nearest2x_kernel<X, Y><<<plane_grid(planes, n / planes, kThreads), kThreads, 0, s>>>(
        static_cast<const X*>(x), planes, static_cast<int>(h), static_cast<int>(w), static_cast<Y*>(y),
        static_cast<int>(pad));
  }));
  AMSKV_CUDA_LAUNCHED();
}

int64_t group_norm_parts(int64_t batch, int64_t groups, int64_t count) {
  const int64_t units = std::max<int64_t>(batch * groups, 1);
  const int64_t by_card = (1024 + units - 1) / units, by_size = (count + 8191) / 8192;  // >= 8192 values a block
  return std::clamp<int64_t>(std::min(by_card, by_size), 1, 64);
}

void launch_group_norm_stats(const void* x, DType x_type, int64_t batch, int64_t channels, int64_t hw, int64_t groups,
                             const float* gamma, const float* beta, float eps, double* partial, float* scale,
                             float* shift, cudaStream_t s) {
  if (batch * groups == 0) return;
  const int64_t count = channels / groups * hw, parts = group_norm_parts(batch, groups, count);
  const int64_t slice = ((count + parts - 1) / parts + 3) / 4 * 4;
  AMSKV_DISPATCH_FLOAT(x_type, X, {
    const auto* xs = static_cast<const X*>(x);
    group_norm_partial_kernel<X>
        <<<dim3(static_cast<unsigned>(batch * groups), static_cast<unsigned>(parts)), 256, 0, s>>>(xs, count, slice,
                                                                                                  partial);
    AMSKV_CUDA_LAUNCHED();
    group_norm_finish_kernel<X><<<static_cast<unsigned>(batch * groups), 128, 0, s>>>(
        xs, channels, hw, groups, parts, partial, gamma, beta, eps, scale, shift);
  });
  AMSKV_CUDA_LAUNCHED();
}

void launch_group_norm_apply(const void* x, DType x_type, int64_t batch, int64_t channels, int64_t h, int64_t w,
                             int64_t pad, const float* scale, const float* shift, bool silu, void* y, DType y_type,
                             cudaStream_t s) {
  const int64_t n = batch * channels * (h + 2 * pad) * (w + 2 * pad);
  if (n == 0) return;
  AMSKV_DISPATCH_FLOAT(x_type, X, AMSKV_DISPATCH_FLOAT(y_type, Y, {
    group_norm_apply_kernel<X, Y><<<plane_grid(batch * channels, n / (batch * channels), kThreads), kThreads, 0, s>>>(
        static_cast<const X*>(x), batch * channels, static_cast<int>(h), static_cast<int>(w), static_cast<int>(pad),
        scale, shift, silu, static_cast<Y*>(y));
  }));
  AMSKV_CUDA_LAUNCHED();
}

namespace {

template <class F>
void im2col(const void* x, DType x_type, int64_t batch, int64_t cin, int64_t h, int64_t w, int64_t in_pad, int64_t kh,
            int64_t kw, int64_t pad, int64_t rows, void* cols, DType cols_type, F f, cudaStream_t s) {
  const int64_t oh = h + 2 * pad - kh + 1, ow = w + 2 * pad - kw + 1, count = kh * kw * oh * ow;
  const int64_t planes = batch * cin, taps = cin * kh * kw, stride = rows * oh * ow;
  if (planes == 0 || count == 0) return;
  AMSKV_CHECK(rows >= taps, "im2col: ", rows, " rows for ", taps, " taps");
  AMSKV_CHECK(count < (int64_t{1} << 31) && (h + 2 * in_pad) * (w + 2 * in_pad) < (int64_t{1} << 31),
              "im2col: a plane of ", count, " column entries is too large");
  const bool by8 = ow % 8 == 0 && kw <= 3 && reinterpret_cast<uintptr_t>(cols) % (8 * dtype_size(cols_type)) == 0 &&
                   stride % 8 == 0;
  const int ih = static_cast<int>(h), iw = static_cast<int>(w), ip = static_cast<int>(in_pad), ikh = static_cast<int>(kh),
            ikw = static_cast<int>(kw), ipad = static_cast<int>(pad), ioh = static_cast<int>(oh),
            iow = static_cast<int>(ow);
  AMSKV_DISPATCH_FLOAT(x_type, X, AMSKV_DISPATCH_FLOAT(cols_type, Y, {
    const auto* src = static_cast<const X*>(x);
    auto* dst = static_cast<Y*>(cols);
    if (by8)
      im2col8_kernel<X, Y, F><<<plane_grid(planes, count / (kh * kw * 8), kThreads), kThreads, 0, s>>>(
          src, planes, cin, stride, ih, iw, ip, ikh, ikw, ipad, ioh, iow, dst, f);
    else
      im2col_kernel<X, Y, F><<<plane_grid(planes, count / (kh * kw), kThreads), kThreads, 0, s>>>(
          src, planes, cin, stride, ih, iw, ip, ikh, ikw, ipad, ioh, iow, dst, f);
    if (rows > taps)
      ones_tail_kernel<Y><<<blocks_for(batch * (rows - taps) * oh * ow, kThreads), kThreads, 0, s>>>(
          dst, batch, stride, taps * oh * ow);
  }));
  AMSKV_CUDA_LAUNCHED();
}

}  // namespace

void launch_im2col(const void* x, DType x_type, int64_t batch, int64_t cin, int64_t h, int64_t w, int64_t in_pad,
                   int64_t kh, int64_t kw, int64_t pad, int64_t rows, void* cols, DType cols_type, cudaStream_t s) {
  im2col(x, x_type, batch, cin, h, w, in_pad, kh, kw, pad, rows, cols, cols_type, AsIs{}, s);
}

void launch_im2col_group_norm(const void* x, DType x_type, int64_t batch, int64_t cin, int64_t h, int64_t w,
                              int64_t kh, int64_t kw, int64_t pad, int64_t rows, const float* scale, const float* shift,
                              bool silu, void* cols, DType cols_type, cudaStream_t s) {
  im2col(x, x_type, batch, cin, h, w, 0, kh, kw, pad, rows, cols, cols_type, Normalised{scale, shift, silu}, s);
}

void launch_softmax_rows(const float* sc, int64_t rows, int64_t cols, float scale, void* p, DType p_type,
                         cudaStream_t s) {
  if (rows * cols == 0) return;
  AMSKV_DISPATCH_FLOAT(p_type, P, {
    softmax_rows_kernel<P><<<static_cast<unsigned>(rows), kThreads, 0, s>>>(sc, cols, scale, static_cast<P*>(p));
  });
  AMSKV_CUDA_LAUNCHED();
}

void launch_key_similarity(const void* prev, const float* prev_scale, int64_t prev_scale_stride, const void* cur,
                           DType t, int64_t blocks, int64_t prev_stride, int64_t cur_stride, int64_t prev_side,
                           int64_t cur_side, int64_t head_dim, double* partial, cudaStream_t s) {
  if (blocks == 0) return;
  AMSKV_CHECK(prev_side * prev_side * head_dim < (int64_t{1} << 31) && cur_side * cur_side * head_dim < (int64_t{1} << 31),
              "similarity: a scale of ", cur_side, "x", cur_side, " tokens of ", head_dim, " exceeds 32-bit indexing");
  constexpr int kWarps = kThreads / 32;
  const auto grid = static_cast<unsigned>((blocks + kWarps - 1) / kWarps);
  const size_t taps = static_cast<size_t>(cur_side) * (sizeof(int4) + sizeof(float4));
  AMSKV_CHECK(taps <= 48 * 1024, "similarity: ", cur_side, " taps per axis exceed the kernel's shared memory");
  const int ps = static_cast<int>(prev_side), cs = static_cast<int>(cur_side), dh = static_cast<int>(head_dim);
  AMSKV_DISPATCH_FLOAT(t, T, {
    // 8 elements per access when every row starts aligned for it: a head dimension, strides and bases that
    // are multiples of 8 elements.
    const size_t prev_elem = prev_scale ? 1 : sizeof(T);
    const bool vec = head_dim % 8 == 0 && prev_stride % 8 == 0 && cur_stride % 8 == 0 &&
                     reinterpret_cast<uintptr_t>(prev) % (8 * prev_elem) == 0 &&
                     reinterpret_cast<uintptr_t>(cur) % (8 * sizeof(T)) == 0;
    auto run = [&](auto vec_width) {
      constexpr int kVec = decltype(vec_width)::value;
      if (prev_scale)
        key_similarity_kernel<T, int8_t, kVec><<<grid, kThreads, taps, s>>>(
            static_cast<const int8_t*>(prev), prev_scale, prev_scale_stride, static_cast<const T*>(cur), prev_stride,
            cur_stride, blocks, ps, cs, dh, partial);
      else
        key_similarity_kernel<T, T, kVec><<<grid, kThreads, taps, s>>>(static_cast<const T*>(prev), nullptr, 0,
                                                                       static_cast<const T*>(cur), prev_stride,
                                                                       cur_stride, blocks, ps, cs, dh, partial);
    };
    if (vec)
      run(std::integral_constant<int, 8>{});
    else
      run(std::integral_constant<int, 1>{});
  });
  AMSKV_CUDA_LAUNCHED();
}

}  // namespace amskv::backend::cuda
