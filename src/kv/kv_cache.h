// What the model talks to: the layer's segments to attend at the current scale, and "this layer has
// computed this scale". It owns the store and the one transient buffer for the current scale (both in
// backend memory), asks the policy what to keep, plans the reservation from the policy, keeps the memory
// accounting, and runs the optional analysis (inter-scale key similarity through the backend, attention
// density from the attention kernel's per-segment mass).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "kv/cache_policy.h"
#include "kv/kv_store.h"

namespace amskv::kv {

struct KvAnalysisOptions {
  bool similarity = false;  // measure sim_l(s) whenever scale s-1 is still stored
  bool density = false;     // accumulate d(i <- j) per layer
};

// Token counts (summed over layers) and their byte sizes for all rows of the batch.
struct KvFootprint {
  int64_t stored_tokens = 0;     // largest total of past-scale tokens held, over the run
  int64_t resident_tokens = 0;   // largest total alive at any moment (stored + the transient scale)
  int64_t allocated_tokens = 0;  // largest total reserved (slabs + transient buffer)
  // The resident peak while each scale is computed (its tokens included), and the transient buffer's size:
  // the current scale's tokens are kept at the compute dtype's width whatever the store's, so the peak in
  // bytes of an 8-bit store can come at another scale than the peak in tokens.
  std::vector<int64_t> resident_by_scale;
  int64_t allocated_transient_tokens = 0;
};

struct KvStats {
  KvFootprint footprint;
  int64_t bytes_per_token = 0;            // K and V of one stored token in one layer for all rows
  int64_t transient_bytes_per_token = 0;  // the same for a token of the transient buffer (the compute dtype)
  std::vector<int64_t> layer_peak_tokens;      // per layer, most tokens stored at once
  std::vector<int64_t> layer_reserved_tokens;  // per layer, slab size at the end
  std::vector<std::vector<int>> layer_final_scales;  // per layer, scales held after the last stored scale
};

class KvCache {
 public:
  KvCache(backend::Backend& backend, CachePolicy& policy, const ScheduleInfo& schedule,
          std::vector<int64_t> scale_sides, int64_t rows, int64_t heads, int64_t head_dim,
          KvAnalysisOptions analysis = {});

  // Before any layer computes `scale`: lets the policy decide and grows reservations if it raised budgets.
  void begin_scale(int scale);
  // Where the model writes the current scale's K and V, [rows][heads][n][head_dim] (backend memory).
  backend::DeviceSpan transient_k() const { return transient_k_; }
  backend::DeviceSpan transient_v() const { return transient_v_; }
  // Segments layer `layer` attends at the current scale: its stored scales, then the current scale.
  std::vector<AttentionSegment> attention_segments(int layer);
  // Buffer the attention kernel fills with per-segment mass when density analysis is on, else null.
  double* segment_mass() { return analysis_.density ? mass_.data() : nullptr; }
  // Buffer the attention kernel fills with per-key mass [rows][heads][keys] when the policy keeps tokens
  // (H2O), else null.
  float* key_mass() { return policy_.token_level() ? key_mass_.data() : nullptr; }
  // The layer has computed the current scale (attention done): analysis, then the policy's decision.
  void finish_layer(int layer);

  KvStats stats() const;
  // Every similarity measured so far (reads back those still on the device).
  const SimilarityLog& similarity();
  // density[l][j][i]: mass from queries of scale j onto keys of scale i, per key of i (zero where not seen).
  std::vector<std::vector<std::vector<double>>> density() const;
  const KvStore& store() const { return store_; }
  CachePolicy& policy() { return policy_; }

 private:
  void reserve_plan();
  void read_similarity();
  AttentionSegment transient_segment(int64_t tokens) const;
  // Token-level policies: accumulates the attention every held and new token received, then keeps or
  // evicts tokens per (row, head) as the policy picks.
  void finish_token_layer(int layer, int64_t n, bool last_scale);

  CachePolicy& policy_;
  ScheduleInfo schedule_;
  std::vector<int64_t> sides_;
  int64_t rows_, heads_, head_dim_;
  KvAnalysisOptions analysis_;
  KvStore store_;
  backend::Backend& backend_;
  backend::DeviceBuffer transient_k_, transient_v_;
  int64_t transient_tokens_ = 0;
  int scale_ = -1;
  std::vector<int> segment_scales_;  // scales of the segments handed out for the current layer
  std::vector<double> mass_;
  std::vector<float> key_mass_;                            // [rows][heads][keys] of the current layer
  std::vector<std::vector<std::vector<float>>> scores_;    // token-level: [layer][row·head][held token]
  std::vector<std::vector<std::vector<double>>> density_sum_;  // [l][j][i], mass summed over rows and heads
  SimilarityLog similarity_;
  backend::DeviceBuffer similarity_device_;          // [layer][scale] F64, written by the backend
  std::vector<std::pair<int, int>> similarity_pending_;  // (layer, scale) measured, not read back yet
  KvFootprint peak_;
  std::vector<int64_t> layer_peak_;
};

}  // namespace amskv::kv
