#include "kv/kv_store.h"

#include <algorithm>

#include "core/error.h"

namespace amskv::kv {

KvStore::KvStore(backend::Backend& backend, int depth, int64_t rows, int64_t heads, int64_t head_dim)
    : backend_(backend),
      dtype_(backend.kv_dtype()),
      rows_(rows),
      heads_(heads),
      head_dim_(head_dim),
      layers_(static_cast<size_t>(depth)) {}

void KvStore::reserve(int layer, int64_t tokens) {
  Layer& L = layers_.at(layer);
  if (tokens <= L.capacity) return;
  const int64_t blocks = rows_ * heads_;
  Layer grown;
  grown.capacity = tokens;
  grown.k = backend_.alloc(dtype_, blocks * tokens * head_dim_);
  grown.v = backend_.alloc(dtype_, blocks * tokens * head_dim_);
  if (quantized()) {
    grown.k_scale = backend_.alloc(DType::F32, blocks * tokens);
    grown.v_scale = backend_.alloc(DType::F32, blocks * tokens);
  }
  for (const Entry& e : L.entries) {  // same offsets in the larger slab
    const int64_t at = e.offset * head_dim_, n = e.tokens * head_dim_;
    backend_.copy_blocks(grown.k.slice(at), tokens * head_dim_, L.k.slice(at), L.capacity * head_dim_, n, blocks);
    backend_.copy_blocks(grown.v.slice(at), tokens * head_dim_, L.v.slice(at), L.capacity * head_dim_, n, blocks);
    if (quantized()) {
      backend_.copy_blocks(grown.k_scale.slice(e.offset), tokens, L.k_scale.slice(e.offset), L.capacity, e.tokens, blocks);
      backend_.copy_blocks(grown.v_scale.slice(e.offset), tokens, L.v_scale.slice(e.offset), L.capacity, e.tokens, blocks);
    }
  }
  grown.entries = std::move(L.entries);
  L = std::move(grown);
}

int64_t KvStore::find_free_range(const Layer& L, int64_t tokens) const {
  std::vector<Entry> by_offset = L.entries;
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry& a, const Entry& b) { return a.offset < b.offset; });
  int64_t cursor = 0;
  for (const Entry& e : by_offset) {
    if (e.offset - cursor >= tokens) return cursor;
    cursor = e.offset + e.tokens;
  }
  return L.capacity - cursor >= tokens ? cursor : -1;
}

void KvStore::move_slab(backend::DeviceBuffer& slab, int64_t capacity, int64_t width, int64_t from, int64_t to,
                        int64_t tokens) {
  const int64_t blocks = rows_ * heads_, stride = capacity * width, n = tokens * width;
  if (std::max(from, to) < std::min(from, to) + tokens) {  // block copies must not overlap: through a scratch buffer
    backend::DeviceBuffer tmp = backend_.alloc(slab.dtype(), blocks * n);
    backend_.copy_blocks(tmp, n, slab.slice(from * width), stride, n, blocks);
    backend_.copy_blocks(slab.slice(to * width), stride, tmp, n, n, blocks);
  } else {
    backend_.copy_blocks(slab.slice(to * width), stride, slab.slice(from * width), stride, n, blocks);
  }
}

void KvStore::move_range(Layer& L, int64_t from, int64_t to, int64_t tokens) {
  move_slab(L.k, L.capacity, head_dim_, from, to, tokens);
  move_slab(L.v, L.capacity, head_dim_, from, to, tokens);
  if (quantized()) {
    move_slab(L.k_scale, L.capacity, 1, from, to, tokens);
    move_slab(L.v_scale, L.capacity, 1, from, to, tokens);
  }
}

void KvStore::compact(Layer& L) {
  std::vector<Entry*> by_offset;
  for (Entry& e : L.entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) { return a->offset < b->offset; });
  int64_t cursor = 0;
  for (Entry* e : by_offset) {
    if (e->offset != cursor) move_range(L, e->offset, cursor, e->tokens);
    e->offset = cursor;
    cursor += e->tokens;
  }
}

void KvStore::store(int layer, int scale, int64_t tokens, backend::DeviceSpan k, backend::DeviceSpan v) {
  Layer& L = layers_.at(layer);
  for (const Entry& e : L.entries)
    AMSKV_CHECK(e.scale != scale, "KV store: scale ", scale, " of layer ", layer, " is stored already");
  AMSKV_CHECK(stored_tokens(layer) + tokens <= L.capacity, "KV store: layer ", layer, " would hold ",
              stored_tokens(layer) + tokens, " tokens, more than the ", L.capacity, " planned");
  int64_t offset = find_free_range(L, tokens);
  if (offset < 0) {
    compact(L);
    offset = find_free_range(L, tokens);
  }
  const int64_t blocks = rows_ * heads_, n = tokens * head_dim_;
  if (quantized()) {
    backend_.quantize_blocks(L.k.slice(offset * head_dim_), L.capacity * head_dim_, L.k_scale.slice(offset), L.capacity,
                             k, n, tokens, head_dim_, blocks);
    backend_.quantize_blocks(L.v.slice(offset * head_dim_), L.capacity * head_dim_, L.v_scale.slice(offset), L.capacity,
                             v, n, tokens, head_dim_, blocks);
  } else {
    backend_.copy_blocks(L.k.slice(offset * head_dim_), L.capacity * head_dim_, k, n, n, blocks);
    backend_.copy_blocks(L.v.slice(offset * head_dim_), L.capacity * head_dim_, v, n, n, blocks);
  }
  L.entries.push_back({scale, offset, tokens});
  std::sort(L.entries.begin(), L.entries.end(), [](const Entry& a, const Entry& b) { return a.scale < b.scale; });
}

void KvStore::evict(int layer, int scale) {
  auto& entries = layers_.at(layer).entries;
  auto it = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.scale == scale; });
  AMSKV_CHECK(it != entries.end(), "KV store: evicting scale ", scale, " that layer ", layer, " does not hold");
  entries.erase(it);
}

void KvStore::refuse_quantized(int layer) const {
  AMSKV_CHECK(!quantized(), "KV store: layer ", layer, " keeps single tokens (a token-level policy such as h2o), "
              "which the 8-bit store (--kv-dtype int8) does not support; it stores whole scales");
}

int64_t KvStore::picked_tokens(int layer) const {
  const auto& entries = layers_.at(layer).entries;
  return entries.empty() ? 0 : entries.front().tokens;
}

void KvStore::append_tokens(int layer, backend::DeviceSpan k, backend::DeviceSpan v, int64_t n) {
  refuse_quantized(layer);
  Layer& L = layers_.at(layer);
  const int64_t held = picked_tokens(layer);
  AMSKV_CHECK(L.entries.empty() || L.entries.front().scale == kPickedTokens, "KV store: layer ", layer,
              " holds whole scales, not picked tokens");
  AMSKV_CHECK(held + n <= L.capacity, "KV store: layer ", layer, " would hold ", held + n, " tokens, more than the ",
              L.capacity, " planned");
  const int64_t blocks = rows_ * heads_, stride = L.capacity * head_dim_;
  backend_.copy_blocks(L.k.slice(held * head_dim_), stride, k, n * head_dim_, n * head_dim_, blocks);
  backend_.copy_blocks(L.v.slice(held * head_dim_), stride, v, n * head_dim_, n * head_dim_, blocks);
  L.entries.assign(1, {kPickedTokens, 0, held + n});
}

void KvStore::keep_tokens(int layer, const std::vector<std::vector<int64_t>>& picks, backend::DeviceSpan k,
                          backend::DeviceSpan v, int64_t n) {
  refuse_quantized(layer);
  Layer& L = layers_.at(layer);
  const int64_t held = picked_tokens(layer), blocks = rows_ * heads_, stride = L.capacity * head_dim_;
  AMSKV_CHECK(static_cast<int64_t>(picks.size()) == blocks, "KV store: ", picks.size(), " token picks for ", blocks,
              " (row, head) blocks");
  const int64_t count = static_cast<int64_t>(picks.front().size());
  AMSKV_CHECK(count <= L.capacity, "KV store: layer ", layer, " would hold ", count, " tokens, more than the ",
              L.capacity, " planned");
  std::vector<int32_t> flat;  // checked here, moved by the backend in one operation per slab
  flat.reserve(static_cast<size_t>(blocks * count));
  for (int64_t b = 0; b < blocks; ++b) {
    const auto& p = picks[static_cast<size_t>(b)];
    AMSKV_CHECK(static_cast<int64_t>(p.size()) == count, "KV store: blocks pick different numbers of tokens");
    // Ascending picks move held tokens only towards the front (destination j <= source p[j]): the backend
    // compacts in place; new tokens come from the transient buffer.
    for (int64_t j = 0; j < count; ++j) {
      const int64_t src = p[static_cast<size_t>(j)];
      AMSKV_CHECK(src >= 0 && src < held + n && (j == 0 || src > p[static_cast<size_t>(j - 1)]),
                  "KV store: token picks must be ascending indices below ", held + n);
      flat.push_back(static_cast<int32_t>(src));
    }
  }
  backend_.keep_tokens(L.k, stride, k, n, flat, blocks, count, held, head_dim_);
  backend_.keep_tokens(L.v, stride, v, n, flat, blocks, count, held, head_dim_);
  L.entries.assign(1, {kPickedTokens, 0, count});
}

void KvStore::clear() {
  for (Layer& L : layers_) L.entries.clear();
}

AttentionSegment KvStore::segment(const Layer& L, const Entry& e) const {
  AttentionSegment s{L.k.slice(e.offset * head_dim_).raw(), L.v.slice(e.offset * head_dim_).raw(), e.tokens,
                     L.capacity * head_dim_, dtype_};
  if (quantized()) {
    s.k_scale = static_cast<const float*>(L.k_scale.slice(e.offset).raw());
    s.v_scale = static_cast<const float*>(L.v_scale.slice(e.offset).raw());
    s.scale_stride = L.capacity;
  }
  return s;
}

std::vector<AttentionSegment> KvStore::segments(int layer) const {
  const Layer& L = layers_.at(layer);
  std::vector<AttentionSegment> out;
  for (const Entry& e : L.entries) out.push_back(segment(L, e));
  return out;
}

AttentionSegment KvStore::segment_of(int layer, int scale) const {
  const Layer& L = layers_.at(layer);
  for (const Entry& e : L.entries)
    if (e.scale == scale) return segment(L, e);
  return {};
}

std::vector<int> KvStore::stored_scales(int layer) const {
  std::vector<int> out;
  for (const Entry& e : layers_.at(layer).entries) out.push_back(e.scale);
  return out;
}

int64_t KvStore::stored_tokens(int layer) const {
  int64_t n = 0;
  for (const Entry& e : layers_.at(layer).entries) n += e.tokens;
  return n;
}

int64_t KvStore::stored_tokens_total() const {
  int64_t n = 0;
  for (int l = 0; l < depth(); ++l) n += stored_tokens(l);
  return n;
}

int64_t KvStore::reserved_tokens_total() const {
  int64_t n = 0;
  for (const Layer& L : layers_) n += L.capacity;
  return n;
}

}  // namespace amskv::kv
