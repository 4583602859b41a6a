// Token sampling on the GPU, one block per position: top-k by a radix select of the k-th largest logit
// (ties at the k-th value survive, as in the reference), top-p by a radix search of the smallest logit whose
// ascending cumulative mass exceeds 1 − p (everything below it removed; the largest is never removed), then
// one draw from the softmax in vocabulary order with the same counter-based uniform as the CPU
// (seed, image, scale, position). The masked logits are written back (the more_smooth path reads them).
#include "backend/cuda/kernels.h"
#include "backend/cuda/kernels_common.cuh"
#include "core/philox.h"

namespace amskv::backend::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxVocab = 12288;  // logits of one position in shared memory (48 KB)

// Order-preserving map of floats to unsigned keys: a < b  <=>  key(a) < key(b).
__device__ __forceinline__ uint32_t order_key(float x) {
  const uint32_t b = __float_as_uint(x);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float from_order_key(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// Inclusive prefix sum of one value per thread across the block (blockDim.x == kThreads).
__device__ double block_inclusive_scan(double v, double* warp_totals) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int o = 1; o < 32; o <<= 1) {
    const double u = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += u;
  }
  __syncthreads();
  if (lane == 31) warp_totals[warp] = v;
  __syncthreads();
  double before = 0.0;
  for (int w = 0; w < warp; ++w) before += warp_totals[w];
  return v + before;
}

__global__ void __launch_bounds__(kThreads) sample_kernel(float* guided, int64_t n, int64_t vocab, int64_t top_k,
                                                          double top_p, uint64_t seed, uint64_t first_image,
                                                          int scale, int64_t* tokens) {
  extern __shared__ float vals[];
  __shared__ unsigned count_hist[256];
  __shared__ double mass_hist[256];
  __shared__ uint32_t s_prefix;
  __shared__ int64_t s_remaining;
  __shared__ double s_base;
  __shared__ double warp_totals[kThreads / 32];
  __shared__ int64_t s_choice;
  __shared__ int64_t s_last;

  const int64_t row = blockIdx.x;
  float* x = guided + row * vocab;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) vals[v] = x[v];
  __syncthreads();

  // Top-k: the key of the k-th largest value, one byte at a time from the top.
  if (top_k > 0 && top_k < vocab) {
    if (threadIdx.x == 0) s_prefix = 0, s_remaining = top_k;
    uint32_t mask = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int i = threadIdx.x; i < 256; i += blockDim.x) count_hist[i] = 0;
      __syncthreads();
      const uint32_t prefix = s_prefix;
      for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
        const uint32_t k = order_key(vals[v]);
        if ((k & mask) == prefix) atomicAdd(&count_hist[(k >> shift) & 0xffu], 1u);
      }
      __syncthreads();
      if (threadIdx.x == 0) {
        int64_t left = s_remaining;
        for (int d = 255; d >= 0; --d) {  // descending: the k-th largest
          if (count_hist[d] >= left) {
            s_prefix = prefix | (static_cast<uint32_t>(d) << shift);
            s_remaining = left;
            break;
          }
          left -= count_hist[d];
        }
      }
      mask |= 0xffu << shift;
      __syncthreads();
    }
    const float kth = from_order_key(s_prefix);
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x)
      if (vals[v] < kth) vals[v] = -INFINITY;
    __syncthreads();
  }

  float mx = -INFINITY;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) mx = fmaxf(mx, vals[v]);
  mx = block_max(mx);

  // Top-p: the smallest key whose ascending cumulative mass exceeds (1 − p)·total; smaller ones are removed.
  if (top_p > 0.0) {
    double local = 0.0;
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x)
      if (vals[v] != -INFINITY) local += exp(static_cast<double>(vals[v]) - mx);
    const double total = block_sum(local);
    const double limit = (1.0 - top_p) * total;
    if (threadIdx.x == 0) s_prefix = 0, s_base = 0.0;
    uint32_t mask = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int i = threadIdx.x; i < 256; i += blockDim.x) mass_hist[i] = 0.0;
      __syncthreads();
      const uint32_t prefix = s_prefix;
      for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
        if (vals[v] == -INFINITY) continue;
        const uint32_t k = order_key(vals[v]);
        if ((k & mask) == prefix) atomicAdd(&mass_hist[(k >> shift) & 0xffu], exp(static_cast<double>(vals[v]) - mx));
      }
      __syncthreads();
      if (threadIdx.x == 0) {
        double base = s_base;
        int chosen = 255;
        for (int d = 0; d < 256; ++d) {  // ascending
          if (base + mass_hist[d] > limit) {
            chosen = d;
            break;
          }
          base += mass_hist[d];
        }
        s_prefix = prefix | (static_cast<uint32_t>(chosen) << shift);
        s_base = base;
      }
      mask |= 0xffu << shift;
      __syncthreads();
    }
    const uint32_t threshold = s_prefix;
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x)
      if (vals[v] != -INFINITY && order_key(vals[v]) < threshold && vals[v] != mx) vals[v] = -INFINITY;
    __syncthreads();
  }

  // Draw: the first entry (vocabulary order) whose cumulative weight reaches u·total.
  const int64_t per = (vocab + blockDim.x - 1) / blockDim.x;
  const int64_t begin = threadIdx.x * per, end = min(vocab, begin + per);
  double own = 0.0;
  for (int64_t v = begin; v < end; ++v)
    if (vals[v] != -INFINITY) own += exp(static_cast<double>(vals[v]) - mx);
  const double through = block_inclusive_scan(own, warp_totals);
  if (threadIdx.x == blockDim.x - 1) s_base = through;  // the total
  if (threadIdx.x == 0) s_choice = vocab, s_last = 0;  // s_last: 1 + the last entry with weight, 0 if none
  __syncthreads();
  const int64_t b = row / n, pos = row % n;
  const double target = uniform_at(seed, first_image + static_cast<uint64_t>(b), static_cast<uint32_t>(scale),
                                   static_cast<uint32_t>(pos), RandomStream::Token) *
                        s_base;
  double cumulative = through - own;
  int64_t last = -1;
  for (int64_t v = begin; v < end; ++v) {
    if (vals[v] == -INFINITY) continue;
    const double p = exp(static_cast<double>(vals[v]) - mx);
    if (p == 0.0) continue;
    cumulative += p;
    last = v;
    if (cumulative >= target) {
      atomicMin(reinterpret_cast<unsigned long long*>(&s_choice), static_cast<unsigned long long>(v));
      break;
    }
  }
  if (last >= 0) atomicMax(reinterpret_cast<unsigned long long*>(&s_last), static_cast<unsigned long long>(last + 1));
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) x[v] = vals[v];
  __syncthreads();
  if (threadIdx.x == 0) tokens[row] = s_choice < vocab ? s_choice : s_last - 1;  // rounding at the very top
}

}  // namespace

void launch_sample_tokens(float* guided, int64_t batch, int64_t n, int64_t vocab, int64_t top_k, double top_p,
                          uint64_t seed, uint64_t first_image, int scale, int64_t* tokens, cudaStream_t s) {
  const int64_t rows = batch * n;
  if (rows == 0) return;
  AMSKV_CHECK(vocab <= kMaxVocab, "cuda sampling: a vocabulary of ", vocab, " entries (at most ", kMaxVocab, ")");
  sample_kernel<<<static_cast<unsigned>(rows), kThreads, static_cast<size_t>(vocab) * sizeof(float), s>>>(
      guided, n, vocab, top_k, top_p, seed, first_image, scale, tokens);
  AMSKV_CUDA_LAUNCHED();
}

}  // namespace amskv::backend::cuda
