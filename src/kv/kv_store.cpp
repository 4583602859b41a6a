#include "kv/kv_store.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace amskv::kv {

KvStore::KvStore(int depth, int64_t rows, int64_t heads, int64_t head_dim)
    : rows_(rows), heads_(heads), head_dim_(head_dim), layers_(static_cast<size_t>(depth)) {}

void KvStore::reserve(int layer, int64_t tokens) {
  Layer& L = layers_.at(layer);
  if (tokens <= L.capacity) return;
  const int64_t blocks = rows_ * heads_;
  std::vector<float> k(static_cast<size_t>(blocks * tokens * head_dim_));
  std::vector<float> v(k.size());
  for (int64_t b = 0; b < blocks; ++b) {
    for (const Entry& e : L.entries) {
      const int64_t n = e.tokens * head_dim_;
      std::memcpy(&k[(b * tokens + e.offset) * head_dim_], &L.k[(b * L.capacity + e.offset) * head_dim_],
                  n * sizeof(float));
      std::memcpy(&v[(b * tokens + e.offset) * head_dim_], &L.v[(b * L.capacity + e.offset) * head_dim_],
                  n * sizeof(float));
    }
  }
  L.k = std::move(k);
  L.v = std::move(v);
  L.capacity = tokens;
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

void KvStore::move_range(Layer& L, int64_t from, int64_t to, int64_t tokens) {
  for (int64_t b = 0; b < rows_ * heads_; ++b) {
    std::memmove(&L.k[(b * L.capacity + to) * head_dim_], &L.k[(b * L.capacity + from) * head_dim_],
                 tokens * head_dim_ * sizeof(float));
    std::memmove(&L.v[(b * L.capacity + to) * head_dim_], &L.v[(b * L.capacity + from) * head_dim_],
                 tokens * head_dim_ * sizeof(float));
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

void KvStore::store(int layer, int scale, int64_t tokens, const float* k, const float* v) {
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
  for (int64_t b = 0; b < rows_ * heads_; ++b) {
    std::memcpy(&L.k[(b * L.capacity + offset) * head_dim_], k + b * tokens * head_dim_,
                tokens * head_dim_ * sizeof(float));
    std::memcpy(&L.v[(b * L.capacity + offset) * head_dim_], v + b * tokens * head_dim_,
                tokens * head_dim_ * sizeof(float));
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

void KvStore::clear() {
  for (Layer& L : layers_) L.entries.clear();
}

std::vector<AttentionSegment> KvStore::segments(int layer) const {
  const Layer& L = layers_.at(layer);
  std::vector<AttentionSegment> out;
  for (const Entry& e : L.entries)
    out.push_back({L.k.data() + e.offset * head_dim_, L.v.data() + e.offset * head_dim_, e.tokens,
                   L.capacity * head_dim_});
  return out;
}

AttentionSegment KvStore::segment_of(int layer, int scale) const {
  const Layer& L = layers_.at(layer);
  for (const Entry& e : L.entries)
    if (e.scale == scale)
      return {L.k.data() + e.offset * head_dim_, L.v.data() + e.offset * head_dim_, e.tokens, L.capacity * head_dim_};
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
