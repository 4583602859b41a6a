// Token sampling on the GPU, one block per position: top-k by a radix select of the k-th largest logit
// (ties at the k-th value survive, as in the reference), top-p by a radix search of the smallest logit whose
// ascending cumulative mass exceeds 1 − p (everything below it removed; the largest is never removed), then
// one draw from the softmax in vocabulary order with the same counter-based uniform as the CPU
// (seed, image, scale, position). The masked logits are written back (the more_smooth path reads them).
#include <type_traits>

#include "backend/cuda/kernels.h"
#include "backend/cuda/kernels_common.cuh"
#include "core/philox.h"

namespace amskv::backend::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxVocab = 12288;
// One position's logits and candidate list in shared memory (72 KB at most).
constexpr size_t kSharedPerEntry = sizeof(float) + sizeof(uint16_t);
static_assert(kMaxVocab <= 65536, "candidates are listed as 16-bit vocabulary indices");

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
//
// After top-k, the entries that survive it (in vocabulary order) are listed once, and top-p, the maximum and
// the draw walk that list (900 of 4096 entries at VAR's settings) rather than the whole vocabulary: the passes
// after top-k over the whole vocabulary were about 70% of the kernel's instructions (Nsight Compute, d16).
constexpr int kWarps = kThreads / 32, kBins = 256;

// One step of a warp's radix histogram: the lanes whose values fall into one bin (bin < 0: none) add their
// count, or with M = double their mass m summed in lane order, to the warp's row.
template <class M>
__device__ __forceinline__ void add_to_bin(int bin, M m, M* row, M* stage) {
  const int lane = threadIdx.x & 31;
  const unsigned peers = __match_any_sync(0xffffffffu, bin);
  if constexpr (std::is_same_v<M, double>) {
    stage[lane] = m;
    __syncwarp();
    if (bin >= 0 && lane == __ffs(peers) - 1) {
      double sum = 0.0;
      for (unsigned q = peers; q != 0; q &= q - 1) sum += stage[__ffs(q) - 1];
      row[bin] += sum;
    }
  } else {
    if (bin >= 0 && lane == __ffs(peers) - 1) row[bin] += __popc(peers);
  }
  __syncwarp();
}

__global__ void __launch_bounds__(kThreads) sample_kernel(float* guided, int64_t n, int vocab, int64_t top_k,
                                                          double top_p, uint64_t seed, const int64_t* image_base,
                                                          uint64_t first_image, int scale, int64_t* tokens) {
  extern __shared__ float vals[];  // [vocab] logits, then [vocab] uint16 candidate entries
  uint16_t* cand = reinterpret_cast<uint16_t*>(vals + vocab);
  __shared__ union {
    unsigned count[kWarps][kBins];
    double mass[kWarps][kBins];
  } hist;
  __shared__ double stage[kWarps][32];
  __shared__ uint32_t s_prefix;
  __shared__ int s_remaining;
  __shared__ double s_base;
  __shared__ double warp_totals[kWarps];
  __shared__ int warp_counts[kWarps];
  __shared__ int s_choice;
  __shared__ int s_last;

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t row = blockIdx.x;
  float* x = guided + row * vocab;
  for (int v = threadIdx.x; v < vocab; v += kThreads) vals[v] = x[v];
  __syncthreads();

  // Top-k: the key of the k-th largest value, one byte at a time from the top.
  const bool use_k = top_k > 0 && top_k < vocab;
  float kth = -INFINITY;
  if (use_k) {
    if (threadIdx.x == 0) s_prefix = 0, s_remaining = static_cast<int>(top_k);
    uint32_t mask = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int i = lane; i < kBins; i += 32) hist.count[warp][i] = 0;
      __syncthreads();
      const uint32_t prefix = s_prefix;
      for (int v0 = warp * 32; v0 < vocab; v0 += kThreads) {
        const int v = v0 + lane;
        int bin = -1;
        if (v < vocab) {
          const uint32_t k = order_key(vals[v]);
          if ((k & mask) == prefix) bin = static_cast<int>((k >> shift) & 0xffu);
        }
        add_to_bin<unsigned>(bin, 0u, hist.count[warp], nullptr);
      }
      __syncthreads();
      if (warp == 0) {  // descending: lane l holds bins 255 - 8l .. 248 - 8l
        int c[8], own = 0;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          unsigned t = 0;
          for (int w = 0; w < kWarps; ++w) t += hist.count[w][255 - 8 * lane - i];
          c[i] = static_cast<int>(t), own += c[i];
        }
        const int through = warp_inclusive_scan(own);
        int left = s_remaining - (through - own);
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
    kth = from_order_key(s_prefix);
  }

  // The candidates: entries that top-k keeps and that carry mass, in vocabulary order (each warp lists one
  // contiguous part of the vocabulary; the parts' counts are scanned across the warps).
  const int part = (vocab + kWarps * 32 - 1) / (kWarps * 32) * 32;
  const int part_begin = warp * part, part_end = min(vocab, part_begin + part);
  auto candidate = [&](int v) { return v < part_end && vals[v] != -INFINITY && !(use_k && vals[v] < kth); };
  int found = 0;
  for (int base = part_begin; base < part_end; base += 32) found += __popc(__ballot_sync(0xffffffffu, candidate(base + lane)));
  if (lane == 0) warp_counts[warp] = found;
  __syncthreads();
  int at = 0, m = 0;
  for (int w = 0; w < kWarps; ++w) at += w < warp ? warp_counts[w] : 0, m += warp_counts[w];
  for (int base = part_begin; base < part_end; base += 32) {
    const bool keep = candidate(base + lane);
    const unsigned ballot = __ballot_sync(0xffffffffu, keep);
    if (keep) cand[at + __popc(ballot & ((1u << lane) - 1u))] = static_cast<uint16_t>(base + lane);
    at += __popc(ballot);
  }
  __syncthreads();

  float mx = -INFINITY;
  for (int j = threadIdx.x; j < m; j += kThreads) mx = fmaxf(mx, vals[cand[j]]);
  mx = block_max(mx);

  // Top-p: the smallest key whose ascending cumulative mass exceeds (1 − p)·total; smaller ones are removed
  // (the largest never is).
  const bool use_p = top_p > 0.0;
  uint32_t threshold = 0;
  if (use_p && m > 0) {
    double local = 0.0;
    for (int j = threadIdx.x; j < m; j += kThreads) local += exp(static_cast<double>(vals[cand[j]]) - mx);
    const double total = block_sum(local);
    const double limit = (1.0 - top_p) * total;
    if (threadIdx.x == 0) s_prefix = 0, s_base = 0.0;
    uint32_t mask = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int i = lane; i < kBins; i += 32) hist.mass[warp][i] = 0.0;
      __syncthreads();
      const uint32_t prefix = s_prefix;
      for (int j0 = warp * 32; j0 < m; j0 += kThreads) {
        const int j = j0 + lane;
        int bin = -1;
        double mass = 0.0;
        if (j < m) {
          const float val = vals[cand[j]];
          const uint32_t k = order_key(val);
          if ((k & mask) == prefix) bin = static_cast<int>((k >> shift) & 0xffu), mass = exp(static_cast<double>(val) - mx);
        }
        add_to_bin<double>(bin, mass, hist.mass[warp], stage[warp]);
      }
      __syncthreads();
      if (warp == 0) {  // ascending: lane l holds bins 8l .. 8l + 7
        double bins[8], own = 0.0;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          double t = 0.0;
          for (int w = 0; w < kWarps; ++w) t += hist.mass[w][8 * lane + i];
          bins[i] = t, own += t;
        }
        const double through = warp_inclusive_scan(own);
        const double below = __shfl_up_sync(0xffffffffu, through, 1);  // the lanes before this one
        double base = s_base + (lane > 0 ? below : 0.0);
        int chosen = -1;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          if (chosen < 0 && base + bins[i] > limit) chosen = 8 * lane + i;
          if (chosen < 0) base += bins[i];
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
    threshold = s_prefix;
  }
  // Whether an entry keeps its logit: top-k's and top-p's masks (its own logit v).
  auto kept = [&](float v) {
    if (v == -INFINITY || (use_k && v < kth)) return false;
    return !use_p || order_key(v) >= threshold || v == mx;
  };

  // Draw: the first candidate (vocabulary order) whose cumulative weight reaches u·total.
  const int per = (m + kThreads - 1) / kThreads;
  const int begin = min(m, static_cast<int>(threadIdx.x) * per), end = min(m, begin + per);
  double own = 0.0;
  for (int j = begin; j < end; ++j) {
    const float v = vals[cand[j]];
    if (kept(v)) own += exp(static_cast<double>(v) - mx);
  }
  const double through = block_inclusive_scan(own, warp_totals);
  if (threadIdx.x == kThreads - 1) s_base = through;  // the total
  if (threadIdx.x == 0) s_choice = vocab, s_last = 0;  // s_last: 1 + the last entry with weight, 0 if none
  __syncthreads();
  const int64_t b = row / n, pos = row % n;
  const uint64_t image = (image_base ? static_cast<uint64_t>(*image_base) : 0) + first_image + static_cast<uint64_t>(b);
  const double target = uniform_at(seed, image, static_cast<uint32_t>(scale),
                                   static_cast<uint32_t>(pos), RandomStream::Token) *
                        s_base;
  double cumulative = through - own;
  int last = -1;
  for (int j = begin; j < end; ++j) {
    const float val = vals[cand[j]];
    if (!kept(val)) continue;
    const double p = exp(static_cast<double>(val) - mx);
    if (p == 0.0) continue;
    cumulative += p;
    last = cand[j];
    if (cumulative >= target) {
      atomicMin(&s_choice, last);
      break;
    }
  }
  if (last >= 0) atomicMax(&s_last, last + 1);
  for (int v = threadIdx.x; v < vocab; v += kThreads) {
    const float val = vals[v];
    x[v] = kept(val) ? val : -INFINITY;
  }
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
  // Dynamic shared memory beside the static histograms passes 48 KB for vocabularies above ~4.9k: opt in once.
  static const bool configured = [] {
    AMSKV_CUDA_CHECK(cudaFuncSetAttribute(sample_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(kMaxVocab * kSharedPerEntry)));
    return true;
  }();
  (void)configured;
  sample_kernel<<<static_cast<unsigned>(rows), kThreads, static_cast<size_t>(vocab) * kSharedPerEntry, s>>>(
      guided, n, static_cast<int>(vocab), top_k, top_p, seed, image_base, first_image, scale, tokens);
  AMSKV_CUDA_LAUNCHED();
}

}  // namespace amskv::backend::cuda
