#include "model/var_model.h"

#include <chrono>
#include <cmath>

#include "backend/cpu/activations.h"
#include "backend/cpu/attention.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/transformer_ops.h"

namespace amskv::model {

Workspace::Workspace(const VarConfig& c, int64_t rows) {
  int64_t n = 0;
  for (int k = 0; k < c.schedule.num_scales(); ++k) n = std::max(n, c.schedule.tokens(k));
  const auto tokens = static_cast<size_t>(rows * n);
  normed.resize(tokens * c.width);
  qkv.resize(tokens * 3 * c.width);
  q.resize(tokens * c.width);
  attn.resize(tokens * c.width);
  branch.resize(tokens * c.width);
  hidden.resize(tokens * c.ffn_hidden);
}

const float* VarModel::weight(const std::string& key) {
  const Tensor& t = tensors_.at(key);
  if (t.dtype() != DType::F32) tensors_.insert(key, t.to_f32());  // fp16/bf16 checkpoints: one fp32 copy
  return tensors_.at(key).data<float>();
}

VarModel::VarModel(const io::TensorMap& tensors, const std::vector<int64_t>& patch_nums_override)
    : tensors_(tensors), config_(infer_var_config(tensors, patch_nums_override)) {
  const int64_t C = config_.width, H = config_.heads, L = config_.schedule.total_tokens;
  word_w_ = weight("word_embed.weight");
  word_b_ = weight("word_embed.bias");
  class_emb_ = weight("class_emb.weight");
  pos_start_ = weight("pos_start");
  head_nm_w_ = weight("head_nm.ada_lin.1.weight");
  head_nm_b_ = weight("head_nm.ada_lin.1.bias");
  head_w_ = weight("head.weight");
  head_b_ = weight("head.bias");
  if (config_.shared_aln) {
    shared_w_ = weight("shared_ada_lin.1.weight");
    shared_b_ = weight("shared_ada_lin.1.bias");
  }
  const float* pos = weight("pos_1LC");
  const float* lvl = weight("lvl_embed.weight");
  lvl_pos_.resize(static_cast<size_t>(L * C));
  for (int k = 0; k < config_.schedule.num_scales(); ++k)
    for (int64_t t = config_.schedule.starts[k]; t < config_.schedule.starts[k] + config_.schedule.tokens(k); ++t)
      for (int64_t c = 0; c < C; ++c) lvl_pos_[t * C + c] = lvl[k * C + c] + pos[t * C + c];

  const float ln100 = std::log(100.0f);
  for (int64_t b = 0; b < config_.depth; ++b) {
    const std::string p = cat("blocks.", b, ".");
    Block blk;
    blk.qkv_w = weight(p + "attn.mat_qkv.weight");
    blk.proj_w = weight(p + "attn.proj.weight");
    blk.proj_b = weight(p + "attn.proj.bias");
    blk.fc1_w = weight(p + "ffn.fc1.weight");
    blk.fc1_b = weight(p + "ffn.fc1.bias");
    blk.fc2_w = weight(p + "ffn.fc2.weight");
    blk.fc2_b = weight(p + "ffn.fc2.bias");
    if (config_.shared_aln) {
      blk.ada_gss = weight(p + "ada_gss");
    } else {
      blk.ada_w = weight(p + "ada_lin.1.weight");
      blk.ada_b = weight(p + "ada_lin.1.bias");
    }
    const float* qb = weight(p + "attn.q_bias");
    const float* vb = weight(p + "attn.v_bias");
    blk.qkv_bias.assign(static_cast<size_t>(3 * C), 0.0f);
    std::copy(qb, qb + C, blk.qkv_bias.begin());
    std::copy(vb, vb + C, blk.qkv_bias.begin() + 2 * C);
    const float* mul = weight(p + "attn.scale_mul_1H11");
    for (int64_t h = 0; h < H; ++h) blk.tau.push_back(std::exp(std::min(mul[h], ln100)));
    blocks_.push_back(std::move(blk));
  }
}

Conditioning VarModel::condition(const std::vector<int64_t>& class_ids) const {
  const int64_t C = config_.width, R = static_cast<int64_t>(class_ids.size()), D = config_.depth;
  Conditioning cond;
  cond.rows = R;
  cond.class_emb.resize(static_cast<size_t>(R * C));
  for (int64_t r = 0; r < R; ++r) {
    const int64_t id = class_ids[r];
    AMSKV_CHECK(id >= 0 && id <= config_.num_classes, "class id ", id, " out of range [0, ", config_.num_classes, "]");
    std::copy(class_emb_ + id * C, class_emb_ + (id + 1) * C, cond.class_emb.begin() + r * C);
  }
  std::vector<float> act(cond.class_emb.size());
  cpu::silu(cond.class_emb.data(), act.data(), R * C);
  cond.block_mod.resize(static_cast<size_t>(D * R * 6 * C));
  if (config_.shared_aln) {
    std::vector<float> shared(static_cast<size_t>(R * 6 * C));
    cpu::linear(act.data(), R, C, shared_w_, shared_b_, 6 * C, shared.data());
    for (int64_t b = 0; b < D; ++b)
      for (int64_t r = 0; r < R; ++r)
        for (int64_t i = 0; i < 6 * C; ++i)
          cond.block_mod[(b * R + r) * 6 * C + i] = shared[r * 6 * C + i] + blocks_[b].ada_gss[i];
  } else {
    for (int64_t b = 0; b < D; ++b)
      cpu::linear(act.data(), R, C, blocks_[b].ada_w, blocks_[b].ada_b, 6 * C, cond.block_mod.data() + b * R * 6 * C);
  }
  cond.head_mod.resize(static_cast<size_t>(R * 2 * C));
  cpu::linear(act.data(), R, C, head_nm_w_, head_nm_b_, 2 * C, cond.head_mod.data());
  return cond;
}

void VarModel::first_input(const Conditioning& cond, float* x) const {
  const int64_t C = config_.width;
  for (int64_t r = 0; r < cond.rows; ++r)
    for (int64_t c = 0; c < C; ++c) x[r * C + c] = cond.class_emb[r * C + c] + pos_start_[c] + lvl_pos_[c];
}

void VarModel::scale_input(int k, const float* next_map, int64_t batch, float* x) const {
  const int64_t C = config_.width, Cv = config_.cvae, n = config_.schedule.tokens(k);
  std::vector<float> tokens(static_cast<size_t>(batch * n * Cv));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t ch = 0; ch < Cv; ++ch)
      for (int64_t t = 0; t < n; ++t) tokens[(b * n + t) * Cv + ch] = next_map[(b * Cv + ch) * n + t];
  cpu::linear(tokens.data(), batch * n, Cv, word_w_, word_b_, C, x);
  const float* lp = lvl_pos_.data() + config_.schedule.starts[k] * C;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < n * C; ++i) x[b * n * C + i] += lp[i];
  std::copy(x, x + batch * n * C, x + batch * n * C);  // the unconditional half sees the same map
}

void VarModel::forward_blocks(int k, float* x, const Conditioning& cond, kv::KvCache& cache, Workspace& ws) const {
  const int64_t C = config_.width, H = config_.heads, dh = config_.head_dim, F = config_.ffn_hidden;
  const int64_t R = cond.rows, n = config_.schedule.tokens(k), M = R * n;
  for (int64_t b = 0; b < config_.depth; ++b) {
    const Block& blk = blocks_[b];
    const float* mod = cond.block_mod.data() + b * R * 6 * C;
    const int64_t ms = 6 * C;  // stride between rows' modulation vectors
    // Attention branch.
    cpu::layer_norm_modulate(x, R, n, C, mod + 2 * C, mod + 4 * C, ms, ws.normed.data());
    cpu::linear(ws.normed.data(), M, C, blk.qkv_w, blk.qkv_bias.data(), 3 * C, ws.qkv.data());
    cpu::split_qkv_l2norm(ws.qkv.data(), R, n, H, dh, blk.tau.data(), ws.q.data(), cache.transient_k(),
                          cache.transient_v());
    const auto t0 = std::chrono::steady_clock::now();
    const auto segments = cache.attention_segments(static_cast<int>(b));
    cpu::segmented_attention(ws.q.data(), R, H, n, dh, segments, ws.attn.data(), cache.segment_mass());
    ws.attention_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    cache.finish_layer(static_cast<int>(b));
    cpu::linear(ws.attn.data(), M, C, blk.proj_w, blk.proj_b, C, ws.branch.data());
    cpu::gated_residual_add(x, ws.branch.data(), R, n, C, mod, ms);
    // FFN branch.
    cpu::layer_norm_modulate(x, R, n, C, mod + 3 * C, mod + 5 * C, ms, ws.normed.data());
    cpu::linear(ws.normed.data(), M, C, blk.fc1_w, blk.fc1_b, F, ws.hidden.data());
    cpu::gelu_tanh(ws.hidden.data(), M * F);
    cpu::linear(ws.hidden.data(), M, F, blk.fc2_w, blk.fc2_b, C, ws.branch.data());
    cpu::gated_residual_add(x, ws.branch.data(), R, n, C, mod + C, ms);
  }
}

void VarModel::head(const float* x, int64_t n, const Conditioning& cond, Workspace& ws, float* logits) const {
  const int64_t C = config_.width, R = cond.rows;
  cpu::layer_norm_modulate(x, R, n, C, cond.head_mod.data(), cond.head_mod.data() + C, 2 * C, ws.normed.data());
  cpu::linear(ws.normed.data(), R * n, C, head_w_, head_b_, config_.vocab, logits);
}

}  // namespace amskv::model
