// The VAR transformer on the CPU in float32 (spec section C): conditioning, the per-scale input maps, the
// AdaLN blocks with l2-normalised attention over the KV cache's segments, and the head.
#pragma once
#include <cstdint>
#include <vector>

#include "io/tensor_map.h"
#include "kv/kv_cache.h"
#include "model/var_config.h"

namespace amskv::model {

// Per-request values that depend only on the class rows (2B of them: conditional then unconditional),
// computed once per request rather than once per scale.
struct Conditioning {
  int64_t rows = 0;
  std::vector<float> class_emb;   // [rows, C]
  std::vector<float> block_mod;   // [depth, rows, 6C]: gamma1, gamma2, scale1, scale2, shift1, shift2
  std::vector<float> head_mod;    // [rows, 2C]: scale, shift
};

// Scratch buffers sized once for the largest scale and reused by every layer and scale.
struct Workspace {
  Workspace(const VarConfig& config, int64_t rows);
  std::vector<float> normed, qkv, q, attn, branch, hidden;
  double attention_seconds = 0.0;
};

class VarModel {
 public:
  VarModel(const io::TensorMap& tensors, const std::vector<int64_t>& patch_nums_override = {});
  const VarConfig& config() const { return config_; }

  // class_ids: one class per row (the null class is config().num_classes).
  Conditioning condition(const std::vector<int64_t>& class_ids) const;
  // Scale 0 input [rows, 1, C]: class embedding + pos_start + level/position embedding of token 0.
  void first_input(const Conditioning& cond, float* x) const;
  // Input of scale k >= 1 [2B, n_k, C] from the next map [B, Cvae, pn_k, pn_k] (both CFG halves equal).
  void scale_input(int k, const float* next_map, int64_t batch, float* x) const;
  // All blocks for scale k over x [rows, n_k, C], in place, attending through `cache`.
  void forward_blocks(int k, float* x, const Conditioning& cond, kv::KvCache& cache, Workspace& ws) const;
  // Logits [rows, n, V] of the final AdaLN head.
  void head(const float* x, int64_t n, const Conditioning& cond, Workspace& ws, float* logits) const;

 private:
  struct Block {
    const float *qkv_w, *proj_w, *proj_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
    const float *ada_w = nullptr, *ada_b = nullptr, *ada_gss = nullptr;
    std::vector<float> qkv_bias;  // [q_bias; 0; v_bias]
    std::vector<float> tau;       // exp(min(scale_mul, ln 100)) per head
  };
  const float* weight(const std::string& key);

  io::TensorMap tensors_;  // keeps the (memory-mapped) weights alive
  VarConfig config_;
  std::vector<Block> blocks_;
  std::vector<float> lvl_pos_;  // [L, C]
  const float *word_w_, *word_b_, *class_emb_, *pos_start_, *head_nm_w_, *head_nm_b_, *head_w_, *head_b_;
  const float *shared_w_ = nullptr, *shared_b_ = nullptr;
};

}  // namespace amskv::model
