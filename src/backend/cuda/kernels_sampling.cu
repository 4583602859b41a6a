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

// Inclusive prefix sum of one value per lane across the warp.
template <class V>
__device__ V warp_inclusive_scan(V v) {
  const int lane = threadIdx.x & 31;
  for (int o = 1; o < 32; o <<= 1) {
    const V u = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += u;
  }
  return v;
}

// Inclusive prefix sum of one value per thread across the block (blockDim.x == kThreads).
__device__ double block_inclusive_scan(double v, double* warp_totals) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_inclusive_scan(v);
  __syncthreads();
  if (lane == 31) warp_totals[warp] = v;
  __syncthreads();
  double before = 0.0;
  for (int w = 0; w < warp; ++w) before += warp_totals[w];
  return v + before;
}

// The histograms of the radix searches are per warp and filled without atomics: in each step of a warp's
// loop, the lanes whose values fall into one bin are grouped (match_any) and the group's lowest lane adds the
// group's count or mass (summed in lane order from a staging row), so the sums are deterministic. One warp
// then finds the bin: each lane sums eight bins over the warps, a scan across the lanes gives every lane its
// starting total, and the first lane whose bins reach the target picks the bin. A position cost ~90 us with
// shared-memory atomics (a pass's values mostly share one or two bins, and a double add is a compare-and-swap
// loop) and a serial scan of the 256 bins by one thread.
constexpr int kWarps = kThreads / 32, kBins = 256;

__global__ void __launch_bounds__(kThreads) sample_kernel(float* guided, int64_t n, int64_t vocab, int64_t top_k,
                                                          double top_p, uint64_t seed, const int64_t* image_base,
                                                          uint64_t first_image, int scale, int64_t* tokens) {
  extern __shared__ float vals[];
  __shared__ unsigned count_hist[kWarps][kBins];
  __shared__ double mass_hist[kWarps][kBins];
  __shared__ double stage[kWarps][32];
  __shared__ uint32_t s_prefix;
  __shared__ int64_t s_remaining;
  __shared__ double s_base;
  __shared__ double warp_totals[kThreads / 32];
  __shared__ int64_t s_choice;
  __shared__ int64_t s_last;

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t row = blockIdx.x;
  float* x = guided + row * vocab;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) vals[v] = x[v];
  __syncthreads();

  // Top-k: the key of the k-th largest value, one byte at a time from the top.
  if (top_k > 0 && top_k < vocab) {
    if (threadIdx.x == 0) s_prefix = 0, s_remaining = top_k;
    uint32_t mask = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int i = lane; i < kBins; i += 32) count_hist[warp][i] = 0;
      __syncthreads();
      const uint32_t prefix = s_prefix;
      for (int64_t v0 = warp * 32; v0 < vocab; v0 += kThreads) {
        const int64_t v = v0 + lane;
        int bin = -1;
        if (v < vocab) {
          const uint32_t k = order_key(vals[v]);
          if ((k & mask) == prefix) bin = static_cast<int>((k >> shift) & 0xffu);
        }
        const unsigned peers = __match_any_sync(0xffffffffu, bin);
        if (bin >= 0 && lane == __ffs(peers) - 1) count_hist[warp][bin] += __popc(peers);
        __syncwarp();
      }
      __syncthreads();
      if (warp == 0) {  // descending: lane l holds bins 255 - 8l .. 248 - 8l
        int64_t c[8], own = 0;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          unsigned t = 0;
          for (int w = 0; w < kWarps; ++w) t += count_hist[w][255 - 8 * lane - i];
          c[i] = t, own += t;
        }
        const int64_t through = warp_inclusive_scan(own);
        int64_t left = s_remaining - (through - own);
        int chosen = -1;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          if (chosen < 0 && c[i] >= left) chosen = 255 - 8 * lane - i;
          if (chosen < 0) left -= c[i];
        }
        const unsigned hit = __ballot_sync(0xffffffffu, chosen >= 0);
        if (hit != 0 && lane == __ffs(hit) - 1) {
          s_prefix = prefix | (static_cast<uint32_t>(chosen) << shift);
          s_remaining = left;
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
      for (int i = lane; i < kBins; i += 32) mass_hist[warp][i] = 0.0;
      __syncthreads();
      const uint32_t prefix = s_prefix;
      for (int64_t v0 = warp * 32; v0 < vocab; v0 += kThreads) {
        const int64_t v = v0 + lane;
        int bin = -1;
        double m = 0.0;
        if (v < vocab && vals[v] != -INFINITY) {
          const uint32_t k = order_key(vals[v]);
          if ((k & mask) == prefix) bin = static_cast<int>((k >> shift) & 0xffu), m = exp(static_cast<double>(vals[v]) - mx);
        }
        stage[warp][lane] = m;
        const unsigned peers = __match_any_sync(0xffffffffu, bin);
        __syncwarp();
        if (bin >= 0 && lane == __ffs(peers) - 1) {
          double sum = 0.0;
          for (unsigned q = peers; q != 0; q &= q - 1) sum += stage[warp][__ffs(q) - 1];
          mass_hist[warp][bin] += sum;
        }
        __syncwarp();
      }
      __syncthreads();
      if (warp == 0) {  // ascending: lane l holds bins 8l .. 8l + 7
        double m[8], own = 0.0;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          double t = 0.0;
          for (int w = 0; w < kWarps; ++w) t += mass_hist[w][8 * lane + i];
          m[i] = t, own += t;
        }
        const double through = warp_inclusive_scan(own);
        const double below = __shfl_up_sync(0xffffffffu, through, 1);  // the lanes before this one
        double base = s_base + (lane > 0 ? below : 0.0);
        int chosen = -1;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          if (chosen < 0 && base + m[i] > limit) chosen = 8 * lane + i;
          if (chosen < 0) base += m[i];
        }
        const unsigned hit = __ballot_sync(0xffffffffu, chosen >= 0);
        // No bin reaches the limit: the last one, with everything below it (as the serial search had it).
        const int picker = hit != 0 ? __ffs(hit) - 1 : 31;
        if (lane == picker) {
          s_prefix = prefix | (static_cast<uint32_t>(chosen >= 0 ? chosen : 255) << shift);
          s_base = base;
        }
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
  const uint64_t image = (image_base ? static_cast<uint64_t>(*image_base) : 0) + first_image + static_cast<uint64_t>(b);
  const double target = uniform_at(seed, image, static_cast<uint32_t>(scale),
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
                          uint64_t seed, const int64_t* image_base, uint64_t first_image, int scale,
                          int64_t* tokens, cudaStream_t s) {
  const int64_t rows = batch * n;
  if (rows == 0) return;
  AMSKV_CHECK(vocab <= kMaxVocab, "cuda sampling: a vocabulary of ", vocab, " entries (at most ", kMaxVocab, ")");
  static const bool configured = [] {  // the logits beside the per-warp histograms pass 48 KB for large vocabularies
    AMSKV_CUDA_CHECK(cudaFuncSetAttribute(sample_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(kMaxVocab * sizeof(float))));
    return true;
  }();
  (void)configured;
  sample_kernel<<<static_cast<unsigned>(rows), kThreads, static_cast<size_t>(vocab) * sizeof(float), s>>>(
      guided, n, vocab, top_k, top_p, seed, image_base, first_image, scale, tokens);
  AMSKV_CUDA_LAUNCHED();
}

}  // namespace amskv::backend::cuda
