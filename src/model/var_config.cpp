#include "model/var_config.h"

#include <cmath>
#include <set>
#include <sstream>

#include "core/parse.h"

namespace amskv::model {

ScaleSchedule ScaleSchedule::from_patch_nums(std::vector<int64_t> pn) {
  AMSKV_CHECK(!pn.empty(), "empty scale schedule");
  ScaleSchedule s;
  s.patch_nums = std::move(pn);
  for (int64_t p : s.patch_nums) {
    AMSKV_CHECK(p > 0 && p <= 4096, "scale side ", p, " out of range");
    s.starts.push_back(s.total_tokens);
    s.total_tokens += p * p;
  }
  for (size_t i = 1; i < s.patch_nums.size(); ++i)
    AMSKV_CHECK(s.patch_nums[i] > s.patch_nums[i - 1], "scale sides must increase: ", s.str());
  return s;
}

std::string ScaleSchedule::str() const {
  std::ostringstream out;
  for (size_t i = 0; i < patch_nums.size(); ++i) out << (i ? "," : "") << patch_nums[i];
  return out.str();
}

namespace {

std::vector<int64_t> schedule_from_levels(const io::TensorMap& t) {
  const Tensor& lvl = t.at("lvl_1L");
  AMSKV_CHECK(lvl.ndim() == 2 && lvl.dim(0) == 1, t.source(), ": lvl_1L has shape ", shape_str(lvl.shape()),
              ", expected [1, L]");
  const auto levels = lvl.to_f64_vector();
  std::vector<int64_t> counts;
  for (size_t i = 0; i < levels.size(); ++i) {
    const double v = levels[i];
    AMSKV_CHECK(v >= 0 && v == std::floor(v) && v < 64, t.source(), ": lvl_1L[", i, "] = ", v,
                " is not a scale index");
    const auto k = static_cast<size_t>(v);
    AMSKV_CHECK(k == counts.size() - 1 || k == counts.size(), t.source(),
                ": lvl_1L is not sorted by scale at token ", i);
    if (k == counts.size()) counts.push_back(0);
    ++counts[k];
  }
  std::vector<int64_t> pn;
  for (size_t k = 0; k < counts.size(); ++k) {
    const auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(counts[k]))));
    AMSKV_CHECK(side * side == counts[k], t.source(), ": lvl_1L gives scale ", k, " ", counts[k],
                " tokens, not a square");
    pn.push_back(side);
  }
  return pn;
}

}  // namespace

VarConfig infer_var_config(const io::TensorMap& t, const std::vector<int64_t>& patch_nums_override) {
  VarConfig c;
  const std::string& f = t.source();
  const Tensor& cls = t.at("class_emb.weight");
  AMSKV_CHECK(cls.ndim() == 2 && cls.dim(0) >= 2, f, ": class_emb.weight has shape ", shape_str(cls.shape()),
              ", expected [classes + 1, C]");
  c.num_classes = cls.dim(0) - 1;
  c.width = cls.dim(1);
  const Tensor& mul = t.at("blocks.0.attn.scale_mul_1H11");
  AMSKV_CHECK(mul.ndim() == 4 && mul.dim(1) > 0, f, ": blocks.0.attn.scale_mul_1H11 has shape ",
              shape_str(mul.shape()), ", expected [1, H, 1, 1]");
  c.heads = mul.dim(1);
  AMSKV_CHECK(c.width % c.heads == 0, f, ": width ", c.width, " is not divisible by ", c.heads, " heads");
  c.head_dim = c.width / c.heads;
  while (t.contains(cat("blocks.", c.depth, ".attn.mat_qkv.weight"))) ++c.depth;
  AMSKV_CHECK(c.depth > 0, f, ": no transformer blocks (blocks.0.attn.mat_qkv.weight missing)");
  c.shared_aln = t.contains("shared_ada_lin.1.weight");
  const Tensor& word = t.weight("word_embed.weight", {c.width, -1});
  c.cvae = word.dim(1);
  const Tensor& head = t.weight("head.weight", {-1, c.width});
  c.vocab = head.dim(0);
  c.ffn_hidden = t.weight("blocks.0.ffn.fc1.weight", {-1, c.width}).dim(0);

  if (t.contains("lvl_1L")) {
    auto pn = schedule_from_levels(t);
    if (!patch_nums_override.empty() && patch_nums_override != pn)
      fail(f, ": --patch-nums ", ScaleSchedule::from_patch_nums(patch_nums_override).str(),
           " disagrees with the checkpoint's lvl_1L schedule ", ScaleSchedule::from_patch_nums(pn).str());
    c.schedule = ScaleSchedule::from_patch_nums(pn);
  } else {
    AMSKV_CHECK(!patch_nums_override.empty(), f,
                ": the checkpoint has no lvl_1L buffer; give the scale schedule with --patch-nums");
    c.schedule = ScaleSchedule::from_patch_nums(patch_nums_override);
  }
  const int64_t C = c.width, L = c.schedule.total_tokens, K = c.schedule.num_scales();

  // Validate every tensor the model uses, so a wrong file fails here with a clear message.
  int64_t params = 0;
  std::set<std::string> used;
  auto need = [&](const std::string& key, const Shape& shape) {
    params += t.weight(key, shape).numel();
    used.insert(key);
  };
  need("pos_start", {1, 1, C});
  need("pos_1LC", {1, L, C});
  need("word_embed.weight", {C, c.cvae});
  need("word_embed.bias", {C});
  need("class_emb.weight", {c.num_classes + 1, C});
  need("lvl_embed.weight", {K, C});
  need("head_nm.ada_lin.1.weight", {2 * C, C});
  need("head_nm.ada_lin.1.bias", {2 * C});
  need("head.weight", {c.vocab, C});
  need("head.bias", {c.vocab});
  if (c.shared_aln) {
    need("shared_ada_lin.1.weight", {6 * C, C});
    need("shared_ada_lin.1.bias", {6 * C});
  }
  for (int64_t b = 0; b < c.depth; ++b) {
    const std::string p = cat("blocks.", b, ".");
    need(p + "attn.scale_mul_1H11", {1, c.heads, 1, 1});
    need(p + "attn.q_bias", {C});
    need(p + "attn.v_bias", {C});
    need(p + "attn.mat_qkv.weight", {3 * C, C});
    need(p + "attn.proj.weight", {C, C});
    need(p + "attn.proj.bias", {C});
    need(p + "ffn.fc1.weight", {c.ffn_hidden, C});
    need(p + "ffn.fc1.bias", {c.ffn_hidden});
    need(p + "ffn.fc2.weight", {C, c.ffn_hidden});
    need(p + "ffn.fc2.bias", {C});
    if (c.shared_aln) {
      need(p + "ada_gss", {1, 1, 6, C});
    } else {
      need(p + "ada_lin.1.weight", {6 * C, C});
      need(p + "ada_lin.1.bias", {6 * C});
    }
  }
  // Strict key set, as for the VQVAE: a key we would ignore means the file is not the model we think it is
  // (another architecture, a renamed layer). The reference's buffers are known and unused: the token levels
  // (read above), the causal mask and the zero key bias.
  used.insert("lvl_1L");
  used.insert("attn_bias_for_masking");
  for (int64_t b = 0; b < c.depth; ++b) used.insert(cat("blocks.", b, ".attn.zero_k_bias"));
  for (const auto& [key, tensor] : t.all())
    if (!used.count(key)) fail(f, ": unexpected key ", key, " in a VAR checkpoint (a different architecture?)");
  c.param_count = params;
  return c;
}

std::string VarConfig::summary() const {
  std::ostringstream out;
  out << "VAR depth " << depth << ", width " << width << ", heads " << heads << " (head dim " << head_dim
      << "), FFN " << ffn_hidden << ", vocabulary " << vocab << ", latent channels " << cvae << ", classes "
      << num_classes << (shared_aln ? ", shared AdaLN" : "") << ", scales " << schedule.str() << " (L = "
      << schedule.total_tokens << ", latent " << schedule.last_side() << "x" << schedule.last_side()
      << "; the image side is the VQVAE's upsampling factor times it), " << param_count << " parameters";
  return out.str();
}

}  // namespace amskv::model
