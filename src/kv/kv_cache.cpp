#include "kv/kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace amskv::kv {

KvCache::KvCache(backend::Backend& backend, CachePolicy& policy, const ScheduleInfo& schedule,
                 std::vector<int64_t> scale_sides, int64_t rows, int64_t heads, int64_t head_dim,
                 KvAnalysisOptions analysis)
    : policy_(policy),
      schedule_(schedule),
      sides_(std::move(scale_sides)),
      rows_(rows),
      heads_(heads),
      head_dim_(head_dim),
      analysis_(analysis),
      store_(backend, schedule.depth, rows, heads, head_dim),
      backend_(backend) {
  const int K = schedule.num_scales();
  transient_tokens_ = *std::max_element(schedule.tokens.begin(), schedule.tokens.end());
  transient_k_ = backend.alloc(backend.compute_dtype(), rows * heads * transient_tokens_ * head_dim);
  transient_v_ = backend.alloc(backend.compute_dtype(), rows * heads * transient_tokens_ * head_dim);
  mass_.assign(static_cast<size_t>(rows * heads * (K + 1)), 0.0);
  density_sum_.assign(static_cast<size_t>(schedule.depth),
                      std::vector<std::vector<double>>(static_cast<size_t>(K), std::vector<double>(K, 0.0)));
  similarity_.reset(schedule.depth, K);
  similarity_device_ = backend.alloc(DType::F64, static_cast<int64_t>(schedule.depth) * K);
  layer_peak_.assign(static_cast<size_t>(schedule.depth), 0);
  peak_.resident_by_scale.assign(static_cast<size_t>(K), 0);
  policy_.begin(schedule_);
  if (policy_.token_level()) {
    AMSKV_CHECK(!analysis_.density, "the attention density analysis needs a scale-level policy, not ", policy_.name());
    int64_t keys = transient_tokens_;
    for (int l = 0; l < schedule.depth; ++l) keys = std::max(keys, planned_layer_tokens(policy_, l) + transient_tokens_);
    key_mass_.assign(static_cast<size_t>(rows * heads * keys), 0.0f);
    scores_.assign(static_cast<size_t>(schedule.depth), std::vector<std::vector<float>>(static_cast<size_t>(rows * heads)));
  }
  reserve_plan();
}

void KvCache::reserve_plan() {
  for (int l = 0; l < schedule_.depth; ++l) store_.reserve(l, planned_layer_tokens(policy_, l));
  peak_.allocated_tokens = std::max(peak_.allocated_tokens, store_.reserved_tokens_total() + transient_tokens_);
  peak_.allocated_transient_tokens = transient_tokens_;
}

void KvCache::read_similarity() {
  if (similarity_pending_.empty()) return;
  std::vector<double> all(static_cast<size_t>(similarity_device_.size()));
  backend_.download(similarity_device_, all.data());
  const size_t K = static_cast<size_t>(schedule_.num_scales());
  for (auto [layer, s] : similarity_pending_)
    similarity_.sim[static_cast<size_t>(layer)][static_cast<size_t>(s)] = all[static_cast<size_t>(layer) * K + s];
  similarity_pending_.clear();
}

const SimilarityLog& KvCache::similarity() {
  read_similarity();
  return similarity_;
}

void KvCache::begin_scale(int scale) {
  scale_ = scale;
  read_similarity();  // one read-back per scale for every layer's measurement
  policy_.before_scale(scale, similarity_);
  reserve_plan();
}

AttentionSegment KvCache::transient_segment(int64_t tokens) const {
  return {transient_k_.span().raw(), transient_v_.span().raw(), tokens, tokens * head_dim_, transient_k_.dtype()};
}

std::vector<AttentionSegment> KvCache::attention_segments(int layer) {
  std::vector<AttentionSegment> segs = store_.segments(layer);
  segment_scales_ = store_.stored_scales(layer);
  const int64_t n = schedule_.tokens.at(static_cast<size_t>(scale_));
  segs.push_back(transient_segment(n));
  segment_scales_.push_back(scale_);
  // The transient scale is alive now, beside everything every layer stores.
  const int64_t resident = store_.stored_tokens_total() + n;
  peak_.resident_tokens = std::max(peak_.resident_tokens, resident);
  int64_t& at_scale = peak_.resident_by_scale.at(static_cast<size_t>(scale_));
  at_scale = std::max(at_scale, resident);
  return segs;
}

void KvCache::finish_layer(int layer) {
  const int s = scale_;
  const int64_t n = schedule_.tokens.at(static_cast<size_t>(s));
  if (analysis_.density) {
    auto& row = density_sum_[layer][s];
    const size_t nseg = segment_scales_.size();
    for (int64_t rh = 0; rh < rows_ * heads_; ++rh)
      for (size_t i = 0; i < nseg; ++i) row[segment_scales_[i]] += mass_[rh * nseg + i];
  }
  if ((analysis_.similarity || policy_.wants_similarity()) && s >= 1) {
    const AttentionSegment prev = store_.segment_of(layer, s - 1);
    if (prev.tokens > 0) {
      backend_.key_similarity_into(prev, sides_[s - 1], transient_segment(n), sides_[s], rows_, heads_, head_dim_,
                                   similarity_device_.slice(static_cast<int64_t>(layer) * schedule_.num_scales() + s, 1));
      similarity_pending_.emplace_back(layer, s);
    }
  }
  if (policy_.token_level()) {
    finish_token_layer(layer, n, s + 1 >= schedule_.num_scales());
    return;
  }
  if (s + 1 >= schedule_.num_scales()) return;  // the last scale is never stored: nothing reads it

  const std::vector<int> stored = store_.stored_scales(layer);
  const std::vector<int> kept = policy_.retain(layer, s, stored);
  check_retained(policy_, layer, s, stored, kept);
  for (int old : stored)
    if (std::find(kept.begin(), kept.end(), old) == kept.end()) store_.evict(layer, old);
  if (std::find(kept.begin(), kept.end(), s) != kept.end())
    store_.store(layer, s, n, transient_k_.slice(0, rows_ * heads_ * n * head_dim_),
                 transient_v_.slice(0, rows_ * heads_ * n * head_dim_));
  layer_peak_[layer] = std::max(layer_peak_[layer], store_.stored_tokens(layer));
  peak_.stored_tokens = std::max(peak_.stored_tokens, store_.stored_tokens_total());
}

void KvCache::finish_token_layer(int layer, int64_t n, bool last_scale) {
  const int64_t held = store_.picked_tokens(layer), keys = held + n, blocks = rows_ * heads_;
  auto& scores = scores_[static_cast<size_t>(layer)];
  // Attention received so far: the held tokens' running sums, then the new scale's tokens.
  for (int64_t b = 0; b < blocks; ++b) {
    auto& sc = scores[static_cast<size_t>(b)];
    const float* mass = key_mass_.data() + b * keys;
    for (int64_t i = 0; i < held; ++i) sc[static_cast<size_t>(i)] += mass[i];
    sc.insert(sc.end(), mass + held, mass + keys);
  }
  if (last_scale) return;  // the last scale is never stored: nothing reads it
  const auto k = transient_k_.slice(0, blocks * n * head_dim_), v = transient_v_.slice(0, blocks * n * head_dim_);
  if (keys <= policy_.token_budget(layer)) {
    store_.append_tokens(layer, k, v, n);
  } else {
    std::vector<std::vector<int64_t>> picks(static_cast<size_t>(blocks));
    for (int64_t b = 0; b < blocks; ++b) {
      auto& sc = scores[static_cast<size_t>(b)];
      picks[static_cast<size_t>(b)] = policy_.select_tokens(layer, sc.data(), keys);
      const auto& p = picks[static_cast<size_t>(b)];
      AMSKV_CHECK(static_cast<int64_t>(p.size()) <= policy_.token_budget(layer), "cache policy '", policy_.name(),
                  "' kept ", p.size(), " tokens in layer ", layer, ", over its budget of ", policy_.token_budget(layer));
      std::vector<float> kept;
      for (int64_t i : p) kept.push_back(sc.at(static_cast<size_t>(i)));
      sc = std::move(kept);
    }
    store_.keep_tokens(layer, picks, k, v, n);
  }
  layer_peak_[layer] = std::max(layer_peak_[layer], store_.stored_tokens(layer));
  peak_.stored_tokens = std::max(peak_.stored_tokens, store_.stored_tokens_total());
}

KvStats KvCache::stats() const {
  KvStats st;
  st.footprint = peak_;
  st.bytes_per_token = rows_ * store_.bytes_per_token_row();
  st.transient_bytes_per_token = rows_ * KvStore::token_row_bytes(transient_k_.dtype(), heads_, head_dim_);
  st.layer_peak_tokens = layer_peak_;
  for (int l = 0; l < schedule_.depth; ++l) {
    st.layer_reserved_tokens.push_back(store_.reserved_tokens(l));
    st.layer_final_scales.push_back(store_.stored_scales(l));
  }
  return st;
}

std::vector<std::vector<std::vector<double>>> KvCache::density() const {
  auto out = density_sum_;
  const double per = static_cast<double>(rows_ * heads_);
  for (auto& layer : out)
    for (auto& row : layer)
      for (size_t i = 0; i < row.size(); ++i) row[i] /= per * static_cast<double>(schedule_.tokens[i]);
  return out;
}

}  // namespace amskv::kv
