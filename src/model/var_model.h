// The VAR transformer (spec section C) on any backend: conditioning, the per-scale input maps, the AdaLN
// blocks with l2-normalised attention over the KV cache's segments, and the head. Weights are converted to
// the backend's compute dtype and uploaded once; every activation lives in backend memory.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "io/tensor_map.h"
#include "kv/kv_cache.h"
#include "model/var_config.h"

namespace amskv::model {

// The VAR schedule as the cache policies see it (token counts per scale and the depth).
kv::ScheduleInfo kv_schedule(const VarConfig& config);

// Per-request values that depend only on the class rows (2B of them: conditional then unconditional),
// computed once per request rather than once per scale. float32, backend memory.
struct Conditioning {
  int64_t rows = 0;
  backend::DeviceBuffer class_emb;  // [rows, C]
  backend::DeviceBuffer block_mod;  // [depth, rows, 6C]: gamma1, gamma2, scale1, scale2, shift1, shift2
  backend::DeviceBuffer head_mod;   // [rows, 2C]: scale, shift
};

// Activation buffers: the residual stream for every row, and scratch for `chunk_rows` rows at a time (the
// blocks run over the rows in chunks so that large batches need scratch for one chunk only).
struct Workspace {
  // time_ops: real timers for the attention and the matrix products (else NullTimer).
  Workspace(backend::Backend& backend, const VarConfig& config, int64_t rows, int64_t chunk_rows,
            bool time_ops = true);
  // Bytes the workspace takes for these sizes (for memory planning before anything is allocated).
  static int64_t bytes(const VarConfig& config, DType compute, int64_t rows, int64_t chunk_rows);

  int64_t rows, chunk_rows;
  backend::DeviceBuffer x;  // [rows, n_max, C] float32: the residual stream of the current scale
  backend::DeviceBuffer normed, qkv, q, attn, branch, hidden;
  std::unique_ptr<backend::OpTimer> attention_timer, matmul_timer;
};

class VarModel {
 public:
  VarModel(backend::Backend& backend, const io::TensorMap& tensors,
           const std::vector<int64_t>& patch_nums_override = {});
  const VarConfig& config() const { return config_; }
  backend::Backend& backend() const { return backend_; }

  // The conditioning in two parts: the buffers for `rows` class rows, then their values from ids (I64 [rows]
  // in backend memory, one class per row; the null class is config().num_classes). The second part reads
  // nothing from the host, so a recorded step can hold it.
  Conditioning conditioning_for(int64_t rows) const;
  void condition_into(backend::DeviceSpan ids, Conditioning& cond) const;
  // Scale 0 input into ws.x [rows, 1, C]: class embedding + pos_start + level/position embedding of token 0.
  void first_input(const Conditioning& cond, Workspace& ws) const;
  // Input of scale k >= 1 into ws.x [2B, n_k, C] from the next map [B, Cvae, pn_k, pn_k] (both CFG halves
  // equal).
  void scale_input(int k, backend::DeviceSpan next_map, int64_t batch, Workspace& ws) const;
  // All blocks for scale k over ws.x [rows, n_k, C], in place, attending through `cache`.
  void forward_blocks(int k, const Conditioning& cond, kv::KvCache& cache, Workspace& ws) const;
  // Logits [count, n, V] (float32) of the final AdaLN head for rows [first_row, first_row + count) of ws.x.
  void head(int64_t n, const Conditioning& cond, Workspace& ws, int64_t first_row, int64_t count,
            backend::DeviceSpan logits) const;

 private:
  struct Block {
    backend::LinearWeight qkv, proj, fc1, fc2, ada;
    backend::DeviceBuffer tau;  // exp(min(scale_mul, ln 100)) per head, float32
  };

  backend::Backend& backend_;
  VarConfig config_;
  std::vector<Block> blocks_;
  backend::DeviceBuffer lvl_pos_;      // [L, C] float32: level + position embedding of every token
  backend::DeviceBuffer first_bias_;   // [C]: pos_start + lvl_pos[0]
  backend::DeviceBuffer class_table_;  // [classes + 1, C] float32
  backend::LinearWeight word_, head_nm_, head_;
};

}  // namespace amskv::model
