#include "model/vqvae_config.h"

#include <set>
#include <sstream>

namespace amskv::model {

namespace {

constexpr int64_t kGroups = 32;  // GroupNorm groups in every norm of the VQVAE

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

struct Checker {
  const io::TensorMap& t;
  std::set<std::string> used;

  const Tensor& need(const std::string& key, const Shape& shape) {
    used.insert(key);
    return t.weight(key, shape);
  }
  void conv(const std::string& p, int64_t cout, int64_t cin, int64_t k) {
    need(p + ".weight", {cout, cin, k, k});
    need(p + ".bias", {cout});
  }
  void norm(const std::string& p, int64_t c) {
    AMSKV_CHECK(c % kGroups == 0, t.source(), ": ", p, " normalizes ", c, " channels, not a multiple of the ",
                kGroups, " GroupNorm groups");
    need(p + ".weight", {c});
    need(p + ".bias", {c});
  }
  void resblock(const std::string& p, int64_t cin, int64_t cout) {
    norm(p + ".norm1", cin);
    conv(p + ".conv1", cout, cin, 3);
    norm(p + ".norm2", cout);
    conv(p + ".conv2", cout, cout, 3);
    if (cin != cout) {
      conv(p + ".nin_shortcut", cout, cin, 1);
    } else {
      AMSKV_CHECK(!t.contains(p + ".nin_shortcut.weight"), t.source(), ": unexpected key ", p,
                  ".nin_shortcut.weight (block keeps ", cin, " channels)");
    }
  }
  void attn(const std::string& p, int64_t c) {
    norm(p + ".norm", c);
    conv(p + ".qkv", 3 * c, c, 1);
    conv(p + ".proj_out", c, c, 1);
  }
};

}  // namespace

std::string VqvaeConfig::phi_key(int64_t j) const {
  switch (phi_layout) {
    case PhiLayout::PartiallyShared: return cat("quantize.quant_resi.qresi_ls.", j);
    case PhiLayout::Shared: return "quantize.quant_resi.qresi";
    case PhiLayout::NonShared: return cat("quantize.quant_resi.", j);
    case PhiLayout::None: break;
  }
  fail("VQVAE: φ ", j, " requested but the checkpoint has no φ convolutions");
}

std::string VqvaeConfig::summary() const {
  std::ostringstream out;
  out << "VQVAE V=" << vocab << " Cvae=" << cvae << " ch=" << ch << " ch_mult=";
  for (size_t i = 0; i < ch_mult.size(); ++i) out << (i ? "," : "") << ch_mult[i];
  out << " res_blocks=" << num_res_blocks << " attn=";
  bool any = false;
  for (size_t i = 0; i < level_has_attn.size(); ++i)
    if (level_has_attn[i]) out << (any ? "," : "") << "L" << i, any = true;
  if (mid_attn) out << (any ? "," : "") << "mid", any = true;
  if (!any) out << "none";
  out << " phi=" << num_phi << " encoder=" << (has_encoder ? "yes" : "no") << " params=" << param_count;
  return out.str();
}

VqvaeConfig infer_vqvae_config(const io::TensorMap& t) {
  const std::string& f = t.source();
  AMSKV_CHECK(!t.contains("class_emb.weight"), f,
              ": this is a VAR transformer checkpoint (class_emb.weight), not a VQVAE");
  VqvaeConfig c;
  Checker ck{t, {}};

  const Tensor& emb = t.at("quantize.embedding.weight");
  AMSKV_CHECK(emb.ndim() == 2 && emb.dim(0) > 0 && emb.dim(1) > 0, f, ": key quantize.embedding.weight has shape ",
              shape_str(emb.shape()), ", expected [V, Cvae]");
  c.vocab = emb.dim(0);
  c.cvae = emb.dim(1);
  ck.used.insert("quantize.embedding.weight");

  const Tensor& pq = t.at("post_quant_conv.weight");
  AMSKV_CHECK(pq.ndim() == 4 && pq.dim(2) == pq.dim(3) && pq.dim(2) % 2 == 1, f,
              ": key post_quant_conv.weight has shape ", shape_str(pq.shape()), ", expected [", c.cvae, ", ", c.cvae,
              ", k, k] with k odd");
  c.post_quant_ks = pq.dim(2);
  ck.conv("post_quant_conv", c.cvae, c.cvae, c.post_quant_ks);

  const Tensor& out = t.at("decoder.conv_out.weight");
  AMSKV_CHECK(out.ndim() == 4 && out.dim(1) > 0, f, ": key decoder.conv_out.weight has shape ",
              shape_str(out.shape()), ", expected [3, ch, 3, 3]");
  c.ch = out.dim(1);

  // Levels, their widths and block counts.
  int levels = 0;
  while (t.contains(cat("decoder.up.", levels, ".block.0.conv1.weight"))) ++levels;
  AMSKV_CHECK(levels > 0, f, ": missing key decoder.up.0.block.0.conv1.weight (no decoder levels)");
  AMSKV_CHECK(levels <= 12, f, ": ", levels, " decoder levels is implausible");
  for (int i = 0; i < levels; ++i) {
    const std::string key = cat("decoder.up.", i, ".block.0.conv1.weight");
    const Tensor& w = t.at(key);
    AMSKV_CHECK(w.ndim() == 4 && w.dim(0) > 0 && w.dim(0) % c.ch == 0, f, ": key ", key, " has shape ",
                shape_str(w.shape()), ", expected [ch·ch_mult[", i, "], cin, 3, 3] with ch = ", c.ch,
                " (from decoder.conv_out.weight)");
    c.ch_mult.push_back(w.dim(0) / c.ch);
  }
  int blocks = 0;
  while (t.contains(cat("decoder.up.0.block.", blocks, ".conv1.weight"))) ++blocks;
  c.num_res_blocks = blocks - 1;
  for (int i = 0; i < levels; ++i) {
    AMSKV_CHECK(!t.contains(cat("decoder.up.", i, ".block.", blocks, ".conv1.weight")), f,
                ": decoder level ", i, " has more than the ", blocks, " blocks of level 0");
    c.level_has_attn.push_back(t.contains(cat("decoder.up.", i, ".attn.0.norm.weight")));
  }
  c.mid_attn = t.contains("decoder.mid.attn_1.norm.weight");

  // Walk the decoder in execution order, checking every tensor it uses.
  int64_t block_in = c.level_channels(levels - 1);
  ck.conv("decoder.conv_in", block_in, c.cvae, 3);
  ck.resblock("decoder.mid.block_1", block_in, block_in);
  if (c.mid_attn) ck.attn("decoder.mid.attn_1", block_in);
  ck.resblock("decoder.mid.block_2", block_in, block_in);
  for (int i = levels - 1; i >= 0; --i) {
    const int64_t block_out = c.level_channels(i);
    for (int j = 0; j < blocks; ++j) {
      ck.resblock(cat("decoder.up.", i, ".block.", j), block_in, block_out);
      block_in = block_out;
      if (c.level_has_attn[static_cast<size_t>(i)]) ck.attn(cat("decoder.up.", i, ".attn.", j), block_in);
    }
    if (i != 0) ck.conv(cat("decoder.up.", i, ".upsample.conv"), block_in, block_in, 3);
  }
  ck.norm("decoder.norm_out", block_in);
  ck.conv("decoder.conv_out", 3, block_in, 3);

  // φ convolutions: partially shared (official), shared, or one per scale; none when quant_resi was 0.
  if (t.contains("quantize.quant_resi.qresi_ls.0.weight")) {
    c.phi_layout = VqvaeConfig::PhiLayout::PartiallyShared;
    while (t.contains(cat("quantize.quant_resi.qresi_ls.", c.num_phi, ".weight"))) ++c.num_phi;
  } else if (t.contains("quantize.quant_resi.qresi.weight")) {
    c.phi_layout = VqvaeConfig::PhiLayout::Shared;
    c.num_phi = 1;
  } else if (t.contains("quantize.quant_resi.0.weight")) {
    c.phi_layout = VqvaeConfig::PhiLayout::NonShared;
    while (t.contains(cat("quantize.quant_resi.", c.num_phi, ".weight"))) ++c.num_phi;
  }
  for (int64_t j = 0; j < c.num_phi; ++j) ck.conv(c.phi_key(j), c.cvae, c.cvae, 3);

  // Strict key set: everything under the decoder/quantizer/post_quant_conv must have been used.
  for (const auto& [key, tensor] : t.all()) {
    if (starts_with(key, "encoder.")) {
      c.has_encoder = true;
    } else if (starts_with(key, "quant_conv.") || key == "quantize.ema_vocab_hit_SV") {
      // encoder side / training statistics: ignored
    } else if (!ck.used.count(key)) {
      fail(f, ": unexpected key ", key, " in a VQVAE checkpoint");
    }
    if (key != "quantize.ema_vocab_hit_SV") c.param_count += tensor.numel();
  }
  return c;
}

}  // namespace amskv::model
