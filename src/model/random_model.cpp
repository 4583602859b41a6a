#include "model/random_model.h"

#include <cmath>
#include <algorithm>
#include <random>

#include "core/error.h"

namespace amskv::model {

namespace {

// Uniform weights with the given standard deviation; one generator per tensor, seeded from (seed, name),
// so a tensor's values do not depend on which other tensors exist.
class WeightMaker {
 public:
  explicit WeightMaker(uint64_t seed) : seed_(seed) {}

  Tensor uniform(const std::string& name, Shape shape, double stddev) {
    Tensor t = Tensor::zeros(DType::F32, std::move(shape));
    std::mt19937_64 rng(seed_ ^ std::hash<std::string>{}(name));
    const double a = stddev * std::sqrt(3.0);
    std::uniform_real_distribution<float> dist(static_cast<float>(-a), static_cast<float>(a));
    float* p = t.mutable_data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
    return t;
  }
  static Tensor constant(Shape shape, float value) {
    Tensor t = Tensor::zeros(DType::F32, std::move(shape));
    std::fill_n(t.mutable_data<float>(), t.numel(), value);
    return t;
  }

 private:
  uint64_t seed_;
};

}  // namespace

RandomVarSpec official_var_spec(const std::string& name) {
  RandomVarSpec s;
  if (name == "tiny") {
    s.depth = 2, s.width = 128, s.heads = 2, s.vocab = 512, s.cvae = 16, s.num_classes = 10;
    s.patch_nums = {1, 2, 3, 4};
    return s;
  }
  const std::vector<std::string> known = {"d16", "d20", "d24", "d30", "d36"};
  AMSKV_CHECK(name.size() == 3 && name[0] == 'd' && std::find(known.begin(), known.end(), name) != known.end(),
              "unknown model shape '", name, "' (expected d16, d20, d24, d30, d36 or tiny)");
  s.depth = std::stoll(name.substr(1));
  if (s.depth == 36) {
    s.shared_aln = true;
    s.patch_nums = {1, 2, 3, 4, 6, 9, 13, 18, 24, 32};
  }
  return s;
}

NamedTensors random_var_weights(const RandomVarSpec& spec) {
  const int64_t C = spec.width > 0 ? spec.width : 64 * spec.depth;
  const int64_t H = spec.heads > 0 ? spec.heads : spec.depth;
  AMSKV_CHECK(spec.depth > 0 && C > 0 && H > 0 && C % H == 0, "random model: width ", C,
              " must be a positive multiple of heads ", H);
  const int64_t K = static_cast<int64_t>(spec.patch_nums.size());
  int64_t L = 0;
  for (int64_t p : spec.patch_nums) L += p * p;
  const double init = std::sqrt(1.0 / (3.0 * C));  // the reference's automatic init std
  WeightMaker w(spec.seed);
  NamedTensors out;
  auto add = [&](const std::string& name, Tensor t) { out.emplace_back(name, std::move(t)); };

  add("pos_start", w.uniform("pos_start", {1, 1, C}, init));
  add("pos_1LC", w.uniform("pos_1LC", {1, L, C}, init));
  {
    Tensor lvl = Tensor::zeros(DType::I64, {1, L});
    int64_t* p = lvl.mutable_data<int64_t>();
    int64_t t = 0;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t i = 0; i < spec.patch_nums[k] * spec.patch_nums[k]; ++i) p[t++] = k;
    Tensor mask = Tensor::zeros(DType::F32, {1, 1, L, L});
    float* m = mask.mutable_data<float>();
    for (int64_t i = 0; i < L; ++i)
      for (int64_t j = 0; j < L; ++j) m[i * L + j] = p[j] <= p[i] ? 0.0f : -INFINITY;
    add("lvl_1L", std::move(lvl));
    add("attn_bias_for_masking", std::move(mask));
  }
  add("word_embed.weight", w.uniform("word_embed.weight", {C, spec.cvae}, 1.0 / std::sqrt(spec.cvae)));
  add("word_embed.bias", w.uniform("word_embed.bias", {C}, 0.01));
  add("class_emb.weight", w.uniform("class_emb.weight", {spec.num_classes + 1, C}, init));
  add("lvl_embed.weight", w.uniform("lvl_embed.weight", {K, C}, init));
  if (spec.shared_aln) {
    add("shared_ada_lin.1.weight", w.uniform("shared_ada_lin.1.weight", {6 * C, C}, 0.5 * init));
    add("shared_ada_lin.1.bias", w.uniform("shared_ada_lin.1.bias", {6 * C}, 0.01));
  }
  for (int64_t b = 0; b < spec.depth; ++b) {
    const std::string p = cat("blocks.", b, ".");
    auto u = [&](const std::string& key, Shape shape, double std) { add(p + key, w.uniform(p + key, shape, std)); };
    if (spec.shared_aln) u("ada_gss", {1, 1, 6, C}, 0.02);
    add(p + "attn.scale_mul_1H11", WeightMaker::constant({1, H, 1, 1}, std::log(4.0f)));
    u("attn.q_bias", {C}, 0.01);
    u("attn.v_bias", {C}, 0.01);
    add(p + "attn.zero_k_bias", Tensor::zeros(DType::F32, {C}));
    u("attn.mat_qkv.weight", {3 * C, C}, init);
    u("attn.proj.weight", {C, C}, init / std::sqrt(2.0 * (b + 1)));
    u("attn.proj.bias", {C}, 0.01);
    u("ffn.fc1.weight", {4 * C, C}, init);
    u("ffn.fc1.bias", {4 * C}, 0.01);
    u("ffn.fc2.weight", {C, 4 * C}, init / std::sqrt(2.0 * (b + 1)));
    u("ffn.fc2.bias", {C}, 0.01);
    if (!spec.shared_aln) {
      u("ada_lin.1.weight", {6 * C, C}, 0.5 * init);
      u("ada_lin.1.bias", {6 * C}, 0.01);
    }
  }
  add("head_nm.ada_lin.1.weight", w.uniform("head_nm.ada_lin.1.weight", {2 * C, C}, 0.5 * init));
  add("head_nm.ada_lin.1.bias", w.uniform("head_nm.ada_lin.1.bias", {2 * C}, 0.01));
  add("head.weight", w.uniform("head.weight", {spec.vocab, C}, 0.02));
  add("head.bias", Tensor::zeros(DType::F32, {spec.vocab}));
  return out;
}

VarConfig var_config_of(const RandomVarSpec& spec) {
  VarConfig c;
  c.depth = spec.depth;
  c.width = spec.width > 0 ? spec.width : 64 * spec.depth;
  c.heads = spec.heads > 0 ? spec.heads : spec.depth;
  AMSKV_CHECK(c.depth > 0 && c.width > 0 && c.heads > 0 && c.width % c.heads == 0, "model shape: width ", c.width,
              " must be a positive multiple of heads ", c.heads);
  c.head_dim = c.width / c.heads;
  c.ffn_hidden = 4 * c.width;
  c.vocab = spec.vocab;
  c.cvae = spec.cvae;
  c.num_classes = spec.num_classes;
  c.shared_aln = spec.shared_aln;
  c.schedule = ScaleSchedule::from_patch_nums(spec.patch_nums);
  // The tensors infer_var_config counts: everything random_var_weights makes but the three buffers.
  const int64_t C = c.width, H = c.heads, L = c.schedule.total_tokens, K = c.schedule.num_scales();
  int64_t block = H + 2 * C + (3 * C * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C);
  block += c.shared_aln ? 6 * C : 6 * C * C + 6 * C;
  c.param_count = C + L * C + (C * c.cvae + C) + (c.num_classes + 1) * C + K * C +
                  (c.shared_aln ? 6 * C * C + 6 * C : 0) + c.depth * block + (2 * C * C + 2 * C) +
                  (c.vocab * C + c.vocab);
  return c;
}

VqvaeConfig vqvae_config_of(const RandomVqvaeSpec& spec) {
  return infer_vqvae_config(to_tensor_map(random_vqvae_weights(spec), "the official VQVAE shape"));
}

io::TensorMap to_tensor_map(NamedTensors tensors, const std::string& source) {
  io::TensorMap map(source);
  for (auto& [name, t] : tensors) map.insert(name, std::move(t));
  return map;
}

NamedTensors random_vqvae_weights(const RandomVqvaeSpec& spec) {
  WeightMaker w(spec.seed);
  NamedTensors out;
  auto conv = [&](const std::string& p, int64_t cout, int64_t cin, int64_t k) {
    out.emplace_back(p + ".weight", w.uniform(p + ".weight", {cout, cin, k, k}, 1.0 / std::sqrt(cin * k * k)));
    out.emplace_back(p + ".bias", w.uniform(p + ".bias", {cout}, 0.01));
  };
  auto norm = [&](const std::string& p, int64_t c) {  // affine parameters near identity, not exactly it
    Tensor g = w.uniform(p + ".weight", {c}, 0.05);
    for (int64_t i = 0; i < c; ++i) g.mutable_data<float>()[i] += 1.0f;
    out.emplace_back(p + ".weight", std::move(g));
    out.emplace_back(p + ".bias", w.uniform(p + ".bias", {c}, 0.05));
  };
  auto resblock = [&](const std::string& p, int64_t cin, int64_t cout) {
    norm(p + ".norm1", cin);
    conv(p + ".conv1", cout, cin, 3);
    norm(p + ".norm2", cout);
    conv(p + ".conv2", cout, cout, 3);
    if (cin != cout) conv(p + ".nin_shortcut", cout, cin, 1);
  };
  auto attn = [&](const std::string& p, int64_t c) {
    norm(p + ".norm", c);
    conv(p + ".qkv", 3 * c, c, 1);
    conv(p + ".proj_out", c, c, 1);
  };
  AMSKV_CHECK(spec.ch % 32 == 0 && !spec.ch_mult.empty(), "random VQVAE: ch must be a multiple of 32");
  const int64_t levels = static_cast<int64_t>(spec.ch_mult.size());
  const int64_t top = spec.ch * spec.ch_mult.back();
  out.emplace_back("quantize.embedding.weight",
                   w.uniform("quantize.embedding.weight", {spec.vocab, spec.cvae}, 1.0 / std::sqrt(3.0 * spec.vocab)));
  for (int64_t i = 0; i < spec.num_phi; ++i) conv(cat("quantize.quant_resi.qresi_ls.", i), spec.cvae, spec.cvae, 3);
  conv("post_quant_conv", spec.cvae, spec.cvae, 3);
  conv("decoder.conv_in", top, spec.cvae, 3);
  resblock("decoder.mid.block_1", top, top);
  attn("decoder.mid.attn_1", top);
  resblock("decoder.mid.block_2", top, top);
  int64_t cin = top;
  for (int64_t lvl = levels - 1; lvl >= 0; --lvl) {
    const int64_t cout = spec.ch * spec.ch_mult[lvl];
    for (int64_t r = 0; r <= spec.num_res_blocks; ++r) {
      resblock(cat("decoder.up.", lvl, ".block.", r), cin, cout);
      cin = cout;
      if (lvl == levels - 1) attn(cat("decoder.up.", lvl, ".attn.", r), cout);
    }
    if (lvl != 0) conv(cat("decoder.up.", lvl, ".upsample.conv"), cout, cout, 3);
  }
  norm("decoder.norm_out", cin);
  conv("decoder.conv_out", 3, cin, 3);
  return out;
}

}  // namespace amskv::model
