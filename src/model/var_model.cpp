#include "model/var_model.h"

#include <algorithm>
#include <cmath>

namespace amskv::model {

using backend::Activation;
using backend::DeviceBuffer;
using backend::DeviceSpan;

kv::ScheduleInfo kv_schedule(const VarConfig& c) { return kv::ScheduleInfo::from_sides(c.schedule.patch_nums, c.depth); }

namespace {

int64_t max_tokens(const VarConfig& c) {
  int64_t n = 0;
  for (int k = 0; k < c.schedule.num_scales(); ++k) n = std::max(n, c.schedule.tokens(k));
  return n;
}

// Sizes of the workspace buffers, in the order of Workspace's members: residual x, then per-chunk scratch.
struct WorkspaceSizes {
  int64_t x, normed, qkv, q, attn, branch, hidden;
};

WorkspaceSizes workspace_sizes(const VarConfig& c, int64_t rows, int64_t chunk_rows) {
  const int64_t n = max_tokens(c), C = c.width, tokens = chunk_rows * n;
  // The head reuses `normed` for `chunk_rows` rows; scale_input reuses `qkv` for the embedded latent tokens of
  // all images (rows / 2 · n · Cvae), which is smaller than 3C per chunk row for every real model.
  return {rows * n * C,           tokens * C,
          std::max(tokens * 3 * C, (rows / 2) * n * c.cvae), tokens * C, tokens * C,
          tokens * C,             tokens * c.ffn_hidden};
}

}  // namespace

Workspace::Workspace(backend::Backend& b, const VarConfig& c, int64_t rows_, int64_t chunk_rows_, bool time_ops)
    : rows(rows_), chunk_rows(std::clamp<int64_t>(chunk_rows_, 1, rows_)) {
  const auto s = workspace_sizes(c, rows, chunk_rows);
  const DType T = b.compute_dtype();
  x = b.alloc(DType::F32, s.x);
  normed = b.alloc(T, s.normed);
  qkv = b.alloc(T, s.qkv);
  q = b.alloc(T, s.q);
  attn = b.alloc(T, s.attn);
  branch = b.alloc(T, s.branch);  // attention projection and FFN outputs, read once by the gated residual
  hidden = b.alloc(T, s.hidden);
  attention_timer = time_ops ? b.make_timer() : std::make_unique<backend::NullTimer>();
  matmul_timer = time_ops ? b.make_timer() : std::make_unique<backend::NullTimer>();
}

int64_t Workspace::bytes(const VarConfig& c, DType compute, int64_t rows, int64_t chunk_rows) {
  const auto s = workspace_sizes(c, rows, std::clamp<int64_t>(chunk_rows, 1, rows));
  const auto t = static_cast<int64_t>(dtype_size(compute));
  return 4 * s.x + t * (s.normed + s.qkv + s.q + s.attn + s.branch + s.hidden);
}

VarModel::VarModel(backend::Backend& b, const io::TensorMap& t, const std::vector<int64_t>& patch_nums_override)
    : backend_(b), config_(infer_var_config(t, patch_nums_override)) {
  const int64_t C = config_.width, H = config_.heads, L = config_.schedule.total_tokens, D = config_.depth;
  auto linear = [&](const std::string& prefix) { return b.make_linear(t.at(prefix + ".weight"), &t.at(prefix + ".bias")); };
  word_ = linear("word_embed");
  head_nm_ = linear("head_nm.ada_lin.1");
  head_ = linear("head");
  class_table_ = b.constant(t.at("class_emb.weight"), DType::F32);

  // Level + position embedding of every token, and the scale-0 extra bias (spec C.1: pos_start is added too).
  const Tensor pos = t.f32("pos_1LC"), lvl = t.f32("lvl_embed.weight");
  const Tensor start = t.f32("pos_start");
  Tensor lvl_pos = Tensor::zeros(DType::F32, {L, C});
  float* lp = lvl_pos.mutable_data<float>();
  for (int k = 0; k < config_.schedule.num_scales(); ++k)
    for (int64_t i = config_.schedule.starts[k]; i < config_.schedule.starts[k] + config_.schedule.tokens(k); ++i)
      for (int64_t c = 0; c < C; ++c) lp[i * C + c] = lvl.data<float>()[k * C + c] + pos.data<float>()[i * C + c];
  Tensor first = Tensor::zeros(DType::F32, {C});
  for (int64_t c = 0; c < C; ++c) first.mutable_data<float>()[c] = start.data<float>()[c] + lp[c];
  lvl_pos_ = b.constant(lvl_pos, DType::F32);
  first_bias_ = b.constant(first, DType::F32);

  // Shared AdaLN (d36): one weight for every block, each block's offset ada_gss folded into its bias.
  backend::LinearWeight shared;
  Tensor shared_bias;
  if (config_.shared_aln) {
    shared = linear("shared_ada_lin.1");
    shared_bias = t.f32("shared_ada_lin.1.bias");
  }
  const float ln100 = std::log(100.0f);
  for (int64_t i = 0; i < D; ++i) {
    const std::string p = cat("blocks.", i, ".");
    Block blk;
    Tensor qkv_bias = Tensor::zeros(DType::F32, {3 * C});  // [q_bias; 0; v_bias]: k has no bias
    const Tensor qb = t.f32(p + "attn.q_bias"), vb = t.f32(p + "attn.v_bias");
    std::copy(qb.data<float>(), qb.data<float>() + C, qkv_bias.mutable_data<float>());
    std::copy(vb.data<float>(), vb.data<float>() + C, qkv_bias.mutable_data<float>() + 2 * C);
    blk.qkv = b.make_linear(t.at(p + "attn.mat_qkv.weight"), &qkv_bias);
    blk.proj = linear(p + "attn.proj");
    blk.fc1 = linear(p + "ffn.fc1");
    blk.fc2 = linear(p + "ffn.fc2");
    if (config_.shared_aln) {
      Tensor bias = Tensor::zeros(DType::F32, {6 * C});
      const Tensor gss = t.f32(p + "ada_gss");
      for (int64_t j = 0; j < 6 * C; ++j)
        bias.mutable_data<float>()[j] = shared_bias.data<float>()[j] + gss.data<float>()[j];
      blk.ada = shared;
      blk.ada.bias = b.constant(bias, DType::F32);
    } else {
      blk.ada = linear(p + "ada_lin.1");
    }
    const Tensor mul = t.f32(p + "attn.scale_mul_1H11");
    Tensor tau = Tensor::zeros(DType::F32, {H});
    for (int64_t h = 0; h < H; ++h) tau.mutable_data<float>()[h] = std::exp(std::min(mul.data<float>()[h], ln100));
    blk.tau = b.constant(tau, DType::F32);
    blocks_.push_back(std::move(blk));
  }
}

Conditioning VarModel::conditioning_for(int64_t rows) const {
  const int64_t C = config_.width;
  Conditioning cond;
  cond.rows = rows;
  cond.class_emb = backend_.alloc(DType::F32, rows * C);
  cond.block_mod = backend_.alloc(DType::F32, config_.depth * rows * 6 * C);
  cond.head_mod = backend_.alloc(DType::F32, rows * 2 * C);
  return cond;
}

void VarModel::condition_into(DeviceSpan ids, Conditioning& cond) const {
  const int64_t C = config_.width, R = cond.rows;
  AMSKV_CHECK(ids.size() == R, "condition: ", ids.size(), " class ids for ", R, " rows");
  backend_.gather_rows(class_table_, C, ids, cond.class_emb);
  DeviceBuffer act = backend_.alloc(backend_.compute_dtype(), R * C);
  backend_.silu(cond.class_emb, act);
  for (int64_t i = 0; i < config_.depth; ++i)
    backend_.linear(act, R, blocks_[i].ada, cond.block_mod.slice(i * R * 6 * C, R * 6 * C));
  backend_.linear(act, R, head_nm_, cond.head_mod);
}

void VarModel::first_input(const Conditioning& cond, Workspace& ws) const {
  const DeviceSpan x = ws.x.slice(0, cond.rows * config_.width);
  backend_.copy(x, cond.class_emb);
  backend_.add_rows(x, cond.rows, first_bias_);
}

void VarModel::scale_input(int k, DeviceSpan next_map, int64_t batch, Workspace& ws) const {
  const int64_t C = config_.width, Cv = config_.cvae, n = config_.schedule.tokens(k), half = batch * n * C;
  const DeviceSpan tokens = ws.qkv.slice(0, batch * n * Cv);  // [B, n, Cvae], the next map token-major
  backend_.transpose(next_map.slice(0, batch * Cv * n), batch, Cv, n, tokens);
  const DeviceSpan x = ws.x.slice(0, half);
  backend_.linear(tokens, batch * n, word_, x);
  backend_.add_rows(x, batch, lvl_pos_.slice(config_.schedule.starts[k] * C, n * C));
  backend_.copy(ws.x.slice(half, half), x);  // the unconditional half sees the same map
}

void VarModel::forward_blocks(int k, const Conditioning& cond, kv::KvCache& cache, Workspace& ws) const {
  const int64_t C = config_.width, H = config_.heads, dh = config_.head_dim;
  const int64_t R = cond.rows, n = config_.schedule.tokens(k), ms = 6 * C;  // ms: stride of rows' modulations
  const int64_t row_kv = H * n * dh;  // elements of one row in the transient K/V
  // With every row in one chunk, a layer's last residual step also normalises x for the next layer (one pass
  // over x instead of two); with several chunks the next chunk would overwrite that output first.
  const bool one_chunk = ws.chunk_rows >= R;
  bool normed_ready = false;
  for (int64_t b = 0; b < config_.depth; ++b) {
    const Block& blk = blocks_[b];
    const DeviceSpan mod = cond.block_mod.slice(b * R * ms, R * ms);
    const std::vector<AttentionSegment> segments = cache.attention_segments(static_cast<int>(b));
    double* mass = cache.segment_mass();
    float* key_mass = cache.key_mass();
    int64_t keys = 0;
    for (const AttentionSegment& s : segments) keys += s.tokens;
    for (int64_t r0 = 0; r0 < R; r0 += ws.chunk_rows) {
      const int64_t rc = std::min(ws.chunk_rows, R - r0), M = rc * n;
      const DeviceSpan x = ws.x.slice(r0 * n * C, M * C);
      const DeviceSpan m = mod.slice(r0 * ms);
      // Attention branch: the chunk's rows of the current scale land in the cache's transient K/V.
      if (!normed_ready) backend_.layer_norm_modulate(x, rc, n, C, m.slice(2 * C), m.slice(4 * C), ms, ws.normed);
      normed_ready = false;
      ws.matmul_timer->start();
      backend_.linear(ws.normed, M, blk.qkv, ws.qkv);
      ws.matmul_timer->stop();
      backend_.qk_norm_split(ws.qkv, rc, n, H, dh, blk.tau, ws.q, cache.transient_k().slice(r0 * row_kv, rc * row_kv),
                             cache.transient_v().slice(r0 * row_kv, rc * row_kv));
      std::vector<AttentionSegment> rows_segments;  // the same segments, starting at row r0
      for (const AttentionSegment& s : segments) rows_segments.push_back(segment_from_block(s, r0 * H));
      ws.attention_timer->start();
      backend_.attention(ws.q, rc, H, n, dh, rows_segments, ws.attn,
                         mass ? mass + r0 * H * static_cast<int64_t>(segments.size()) : nullptr,
                         key_mass ? key_mass + r0 * H * keys : nullptr);
      ws.attention_timer->stop();
      ws.matmul_timer->start();
      backend_.linear(ws.attn, M, blk.proj, ws.branch);
      ws.matmul_timer->stop();
      // Residual, then the FFN branch's norm.
      backend_.gated_residual_layer_norm(x, ws.branch, rc, n, C, m, ms, m.slice(3 * C), m.slice(5 * C), ms, ws.normed);
      ws.matmul_timer->start();
      backend_.linear(ws.normed, M, blk.fc1, ws.hidden, Activation::GeluTanh);
      backend_.linear(ws.hidden, M, blk.fc2, ws.branch);
      ws.matmul_timer->stop();
      if (one_chunk && b + 1 < config_.depth) {
        const DeviceSpan next = cond.block_mod.slice((b + 1) * R * ms, R * ms);  // the next layer's, rows from 0
        backend_.gated_residual_layer_norm(x, ws.branch, rc, n, C, m.slice(C), ms, next.slice(2 * C), next.slice(4 * C),
                                           ms, ws.normed);
        normed_ready = true;
      } else {
        backend_.gated_residual_add(x, ws.branch, rc, n, C, m.slice(C), ms);
      }
    }
    cache.finish_layer(static_cast<int>(b));
  }
}

void VarModel::head(int64_t n, const Conditioning& cond, Workspace& ws, int64_t first_row, int64_t count,
                    DeviceSpan logits) const {
  const int64_t C = config_.width;
  AMSKV_CHECK(count <= ws.chunk_rows, "head: ", count, " rows exceed the workspace chunk of ", ws.chunk_rows);
  const DeviceSpan mod = cond.head_mod.slice(first_row * 2 * C);
  backend_.layer_norm_modulate(ws.x.slice(first_row * n * C, count * n * C), count, n, C, mod, mod.slice(C), 2 * C,
                               ws.normed);
  backend_.linear(ws.normed, count * n, head_, logits);
}

}  // namespace amskv::model
