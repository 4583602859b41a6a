// Per-layer storage of past scales' K/V in backend memory. Each layer owns one slab laid out
// [rows][heads][capacity][head_dim] for K and the same for V, reserved from the memory plan and written in
// place; a stored scale occupies a contiguous token range of the slab, so it is one attention segment.
// Evicting a scale frees its range; when no free range is long enough the slab is compacted (the policy's
// budget guarantees the total fits). Only block copies go through the backend; nothing here reads K/V.
// With an 8-bit store (Backend::kv_dtype() == I8) the slabs hold integers, each layer has a scale slab
// [rows][heads][capacity] per K and V beside them, and store() quantizes instead of copying.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/attention_segment.h"
#include "backend/backend.h"

namespace amskv::kv {

class KvStore {
 public:
  KvStore(backend::Backend& backend, int depth, int64_t rows, int64_t heads, int64_t head_dim);

  // Grows (never shrinks) a layer's slab to hold `tokens` tokens, keeping what it stores.
  void reserve(int layer, int64_t tokens);
  // Copies one scale's K/V, laid out [rows][heads][tokens][head_dim], into the layer's slab.
  void store(int layer, int scale, int64_t tokens, backend::DeviceSpan k, backend::DeviceSpan v);
  void evict(int layer, int scale);
  void clear();

  // Token-level layers (H2O): one entry of hand-picked tokens per (row, head), in time order, at the start of
  // the slab (scale id kPickedTokens). append_tokens adds a whole new scale after them; keep_tokens replaces
  // them by picks[block] (ascending indices into the held tokens followed by the n new ones; every block
  // picks the same number).
  static constexpr int kPickedTokens = -1;
  int64_t picked_tokens(int layer) const;
  void append_tokens(int layer, backend::DeviceSpan k, backend::DeviceSpan v, int64_t n);
  void keep_tokens(int layer, const std::vector<std::vector<int64_t>>& picks, backend::DeviceSpan k,
                   backend::DeviceSpan v, int64_t n);

  // Segments of the stored scales of a layer, in ascending scale order.
  std::vector<AttentionSegment> segments(int layer) const;
  // The stored K of one scale as a segment (for the similarity analysis); tokens == 0 if not stored.
  AttentionSegment segment_of(int layer, int scale) const;
  std::vector<int> stored_scales(int layer) const;
  int64_t stored_tokens(int layer) const;
  int64_t stored_tokens_total() const;
  int64_t reserved_tokens(int layer) const { return layers_[layer].capacity; }
  int64_t reserved_tokens_total() const;

  int depth() const { return static_cast<int>(layers_.size()); }
  int64_t rows() const { return rows_; }
  DType dtype() const { return dtype_; }
  bool quantized() const { return dtype_ == DType::I8; }
  // Bytes of K plus V for one token of one row of one layer.
  int64_t bytes_per_token_row() const { return token_row_bytes(dtype_, heads_, head_dim_); }
  // The same for a store of `dtype` (I8: the integers and the two float32 scales per head).
  static int64_t token_row_bytes(DType dtype, int64_t heads, int64_t head_dim) {
    const int64_t scales = dtype == DType::I8 ? 2 * heads * int64_t{sizeof(float)} : 0;
    return 2 * heads * head_dim * static_cast<int64_t>(dtype_size(dtype)) + scales;
  }

 private:
  struct Entry {
    int scale;
    int64_t offset;
    int64_t tokens;
  };
  struct Layer {
    int64_t capacity = 0;
    backend::DeviceBuffer k, v;  // [rows][heads][capacity][head_dim]
    backend::DeviceBuffer k_scale, v_scale;  // I8 stores: [rows][heads][capacity]
    std::vector<Entry> entries;  // sorted by scale
  };
  int64_t find_free_range(const Layer& layer, int64_t tokens) const;
  void compact(Layer& layer);
  // Copies `tokens` tokens of every (row, head) block from one slab position to another (through a scratch
  // buffer when the ranges overlap).
  void move_range(Layer& layer, int64_t from, int64_t to, int64_t tokens);
  // One of move_range's copies: `width` elements per token of a slab with `capacity` tokens per block.
  void move_slab(backend::DeviceBuffer& slab, int64_t capacity, int64_t width, int64_t from, int64_t to,
                 int64_t tokens);
  void refuse_quantized(int layer) const;
  AttentionSegment segment(const Layer& layer, const Entry& e) const;

  backend::Backend& backend_;
  DType dtype_;
  int64_t rows_, heads_, head_dim_;
  std::vector<Layer> layers_;
};

}  // namespace amskv::kv
