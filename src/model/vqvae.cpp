#include "model/vqvae.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "backend/cpu/activations.h"
#include "backend/cpu/conv2d.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/group_norm.h"
#include "backend/cpu/resample.h"

namespace amskv::model {

int phi_index(int k, int K, int num_phi) {
  AMSKV_CHECK(K >= 1 && k >= 0 && k < K && num_phi >= 0, "phi_index: invalid scale ", k, " of ", K, " with ",
              num_phi, " φ convolutions");
  if (num_phi <= 1) return 0;
  // numpy.linspace(start, stop, n): i·step + start with step = (stop − start)/(n − 1), the last tick = stop.
  // start is Python's 1/3/n (or 1/2/n), i.e. (1/3)/n, evaluated in that order.
  const double start = (num_phi == 4 ? 1.0 / 3.0 : 1.0 / 2.0) / static_cast<double>(num_phi);
  const double stop = 1.0 - start;
  const double step = (stop - start) / static_cast<double>(num_phi - 1);
  const double ratio = K > 1 ? static_cast<double>(k) / static_cast<double>(K - 1) : 0.0;
  int best = 0;
  double best_dist = std::numeric_limits<double>::infinity();
  for (int i = 0; i < num_phi; ++i) {
    volatile double scaled = static_cast<double>(i) * step;  // no fused multiply-add: numpy rounds the product
    const double tick = i == num_phi - 1 ? stop : scaled + start;
    const double dist = std::fabs(tick - ratio);
    if (dist < best_dist) {
      best_dist = dist;
      best = i;
    }
  }
  return best;
}

namespace {

constexpr int64_t kGroups = 32;
constexpr float kEps = 1e-6f;
constexpr float kResiRatio = 0.5f;  // φ(u) = (1 − 0.5)·u + 0.5·conv(u)

struct Conv {
  const float* w = nullptr;
  const float* b = nullptr;
  int64_t cin = 0, cout = 0, k = 1;
  std::vector<float> taps;  // regrouped per kernel tap for the shifted-GEMM convolution (3x3 decoder convs)

  cpu::Conv2dParams params() const {
    cpu::Conv2dParams p;
    p.weight = w;
    p.bias = b;
    p.cin = cin;
    p.cout = cout;
    p.kh = p.kw = k;
    p.pad = k / 2;
    p.taps = taps.empty() ? nullptr : taps.data();
    return p;
  }
};

struct Norm {
  const float* gamma = nullptr;
  const float* beta = nullptr;
};

struct ResBlock {
  int64_t cin = 0, cout = 0;
  Norm norm1, norm2;
  Conv conv1, conv2;
  bool has_shortcut = false;
  Conv shortcut;
};

struct AttnBlock {
  int64_t c = 0;
  Norm norm;
  Conv qkv, proj;
};

struct Level {
  std::vector<ResBlock> blocks;
  std::vector<AttnBlock> attn;  // empty, or one after every block
  bool has_upsample = false;
  Conv upsample;
};

// Reusable activation buffers for one image.
struct Workspace {
  std::vector<float> act, alt, pad, tmp, qkv, scores;
};

}  // namespace

struct Vqvae::Impl {
  const float* codebook = nullptr;
  Conv post_quant, conv_in, conv_out;
  ResBlock mid1, mid2;
  bool mid_attn = false;
  AttnBlock mid_attn_block;
  std::vector<Level> levels;  // index = level i (processed from the last to 0)
  Norm norm_out;
  std::vector<Conv> phi;

  void decode_one(const float* z, int64_t hw, float* image, Workspace& ws) const;
  void resblock(const ResBlock& r, float*& x, float*& alt, int64_t res, Workspace& ws) const;
  void attention(const AttnBlock& a, float* x, int64_t res, Workspace& ws) const;
};

namespace {

const float* f32_data(const io::TensorMap& t, const std::string& key) { return t.at(key).data<float>(); }

Conv load_conv(const io::TensorMap& t, const std::string& prefix, bool pack) {
  const Tensor& w = t.at(prefix + ".weight");
  Conv c;
  c.w = w.data<float>();
  c.b = f32_data(t, prefix + ".bias");
  c.cout = w.dim(0);
  c.cin = w.dim(1);
  c.k = w.dim(2);
  if (pack && c.k > 1) c.taps = cpu::pack_conv_taps(c.w, c.cout, c.cin, c.k, c.k);
  return c;
}

Norm load_norm(const io::TensorMap& t, const std::string& prefix) {
  return Norm{f32_data(t, prefix + ".weight"), f32_data(t, prefix + ".bias")};
}

ResBlock load_resblock(const io::TensorMap& t, const std::string& p) {
  ResBlock r;
  r.norm1 = load_norm(t, p + ".norm1");
  r.conv1 = load_conv(t, p + ".conv1", true);
  r.norm2 = load_norm(t, p + ".norm2");
  r.conv2 = load_conv(t, p + ".conv2", true);
  r.cin = r.conv1.cin;
  r.cout = r.conv1.cout;
  r.has_shortcut = t.contains(p + ".nin_shortcut.weight");
  if (r.has_shortcut) r.shortcut = load_conv(t, p + ".nin_shortcut", false);
  return r;
}

AttnBlock load_attn(const io::TensorMap& t, const std::string& p) {
  AttnBlock a;
  a.norm = load_norm(t, p + ".norm");
  a.qkv = load_conv(t, p + ".qkv", false);
  a.proj = load_conv(t, p + ".proj_out", false);
  a.c = a.proj.cout;
  return a;
}

}  // namespace

Vqvae::Vqvae(const io::TensorMap& tensors) : tensors_(tensors.source()), impl_(std::make_unique<Impl>()) {
  config_ = infer_vqvae_config(tensors);
  for (const auto& [key, t] : tensors.all()) tensors_.insert(key, t.to_f32());
  tensors_.metadata = tensors.metadata;
  const io::TensorMap& t = tensors_;
  Impl& m = *impl_;
  m.codebook = f32_data(t, "quantize.embedding.weight");
  m.post_quant = load_conv(t, "post_quant_conv", false);
  m.conv_in = load_conv(t, "decoder.conv_in", true);
  m.mid1 = load_resblock(t, "decoder.mid.block_1");
  m.mid2 = load_resblock(t, "decoder.mid.block_2");
  m.mid_attn = config_.mid_attn;
  if (m.mid_attn) m.mid_attn_block = load_attn(t, "decoder.mid.attn_1");
  m.levels.resize(static_cast<size_t>(config_.num_levels()));
  for (int i = 0; i < config_.num_levels(); ++i) {
    Level& lv = m.levels[static_cast<size_t>(i)];
    for (int64_t j = 0; j <= config_.num_res_blocks; ++j) {
      lv.blocks.push_back(load_resblock(t, cat("decoder.up.", i, ".block.", j)));
      if (config_.level_has_attn[static_cast<size_t>(i)]) lv.attn.push_back(load_attn(t, cat("decoder.up.", i, ".attn.", j)));
    }
    lv.has_upsample = i != 0;
    if (lv.has_upsample) lv.upsample = load_conv(t, cat("decoder.up.", i, ".upsample.conv"), true);
  }
  m.norm_out = load_norm(t, "decoder.norm_out");
  m.conv_out = load_conv(t, "decoder.conv_out", true);
  for (int64_t j = 0; j < config_.num_phi; ++j) m.phi.push_back(load_conv(t, config_.phi_key(j), false));
}

Vqvae::~Vqvae() = default;
Vqvae::Vqvae(Vqvae&&) noexcept = default;
Vqvae& Vqvae::operator=(Vqvae&&) noexcept = default;

const float* Vqvae::codebook() const { return impl_->codebook; }

// ---------------------------------------------------------------------------------------------------------------
// Quantizer side

void Vqvae::accumulate_scale(const std::vector<int64_t>& patch_nums, int k, const int64_t* idx, int64_t batch,
                             float* f_hat) const {
  AMSKV_CHECK(k >= 0 && static_cast<size_t>(k) < patch_nums.size(), "VQVAE accumulate_scale: scale ", k,
              " outside a schedule of ", patch_nums.size(), " scales");
  const int64_t pn = patch_nums[static_cast<size_t>(k)], n = pn * pn, C = config_.cvae, V = config_.vocab;
  std::vector<float> h(static_cast<size_t>(batch * C * n));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t p = 0; p < n; ++p) {
      const int64_t v = idx[b * n + p];
      AMSKV_CHECK(v >= 0 && v < V, "VQVAE accumulate_scale: token ", v, " at scale ", k, " (image ", b,
                  ", position ", p, ") is outside the vocabulary of ", V);
      const float* e = impl_->codebook + v * C;
      for (int64_t c = 0; c < C; ++c) h[static_cast<size_t>((b * C + c) * n + p)] = e[c];
    }
  accumulate_embedded(patch_nums, k, h.data(), batch, f_hat);
}

void Vqvae::accumulate_embedded(const std::vector<int64_t>& patch_nums, int k, const float* h, int64_t batch,
                                float* f_hat) const {
  const int K = static_cast<int>(patch_nums.size());
  AMSKV_CHECK(k >= 0 && k < K, "VQVAE accumulate_embedded: scale ", k, " outside a schedule of ", K, " scales");
  const int64_t HW = patch_nums.back(), pn = patch_nums[static_cast<size_t>(k)], C = config_.cvae;
  const int64_t total = batch * C * HW * HW;
  std::vector<float> up;
  const float* u = h;
  if (k < K - 1) {
    up.resize(static_cast<size_t>(total));
    cpu::bicubic_resize(h, batch * C, pn, pn, HW, HW, up.data());
    u = up.data();
  } else {
    AMSKV_CHECK(pn == HW, "VQVAE accumulate_embedded: the last scale has side ", pn, ", expected ", HW);
  }
  if (impl_->phi.empty()) {
    for (int64_t i = 0; i < total; ++i) f_hat[i] += u[i];
    return;
  }
  const Conv& phi = impl_->phi[static_cast<size_t>(phi_index(k, K, static_cast<int>(impl_->phi.size())))];
  std::vector<float> conv(static_cast<size_t>(total));
  cpu::conv2d(u, batch, HW, HW, phi.params(), conv.data());
  const float keep = 1.0f - kResiRatio;
  for (int64_t i = 0; i < total; ++i) f_hat[i] += u[i] * keep + conv[static_cast<size_t>(i)] * kResiRatio;
}

void Vqvae::next_map(const float* f_hat, int64_t batch, int64_t hw, int64_t pn, float* out) const {
  cpu::area_resize(f_hat, batch * config_.cvae, hw, hw, pn, pn, out);
}

// ---------------------------------------------------------------------------------------------------------------
// Decoder

void Vqvae::Impl::resblock(const ResBlock& r, float*& x, float*& alt, int64_t res, Workspace& ws) const {
  float* pad = ws.pad.data();
  float* tmp = ws.tmp.data();
  cpu::group_norm_padded(x, pad, 1, r.cin, res, res, 1, kGroups, r.norm1.gamma, r.norm1.beta, kEps, true);
  cpu::conv2d_padded(pad, 1, res, res, r.conv1.params(), tmp);
  cpu::group_norm_padded(tmp, pad, 1, r.cout, res, res, 1, kGroups, r.norm2.gamma, r.norm2.beta, kEps, true);
  if (r.has_shortcut) {
    cpu::conv2d(x, 1, res, res, r.shortcut.params(), alt);
    std::swap(x, alt);
  }
  // out = shortcut(x) + (conv2(·) + bias), accumulated onto the shortcut.
  cpu::conv2d_padded(pad, 1, res, res, r.conv2.params(), x, true);
}

void Vqvae::Impl::attention(const AttnBlock& a, float* x, int64_t res, Workspace& ws) const {
  const int64_t C = a.c, N = res * res;
  float* y = ws.tmp.data();
  float* qkv = ws.qkv.data();
  float* s = ws.scores.data();
  cpu::group_norm(x, y, 1, C, N, kGroups, a.norm.gamma, a.norm.beta, kEps, false);
  cpu::conv2d(y, 1, res, res, a.qkv.params(), qkv);  // [3C, N]: q, k, v channel blocks
  const float* q = qkv;
  const float* kk = qkv + C * N;
  const float* v = qkv + 2 * C * N;
  // s[i, j] = (q_i · k_j) · C^-0.5 (the reference's int(C) ** -0.5 as a float multiplier)
  const float scale = static_cast<float>(std::pow(static_cast<double>(C), -0.5));
  cpu::gemm(true, false, N, N, C, scale, q, N, kk, N, 0.0f, s, N);
#pragma omp parallel for schedule(static) if (N * N >= (int64_t{1} << 18))
  for (int64_t i = 0; i < N; ++i) {
    float* row = s + i * N;
    float mx = row[0];
    for (int64_t j = 1; j < N; ++j) mx = std::max(mx, row[j]);
    double sum = 0.0;
    for (int64_t j = 0; j < N; ++j) {
      row[j] = cpu::fast_exp(row[j] - mx);
      sum += static_cast<double>(row[j]);
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t j = 0; j < N; ++j) row[j] *= inv;
  }
  // o[c, i] = Σ_j v[c, j] · s[i, j]  (into y, free again), then x += proj(o).
  cpu::gemm(false, true, C, N, N, 1.0f, v, N, s, N, 0.0f, y, N);
  cpu::conv2d(y, 1, res, res, a.proj.params(), x, true);
}

void Vqvae::Impl::decode_one(const float* z, int64_t hw, float* image, Workspace& ws) const {
  float* x = ws.act.data();
  float* alt = ws.alt.data();
  int64_t res = hw;
  cpu::conv2d(z, 1, res, res, post_quant.params(), ws.tmp.data());
  cpu::conv2d(ws.tmp.data(), 1, res, res, conv_in.params(), x);
  resblock(mid1, x, alt, res, ws);
  if (mid_attn) attention(mid_attn_block, x, res, ws);
  resblock(mid2, x, alt, res, ws);
  for (size_t i = levels.size(); i-- > 0;) {
    const Level& lv = levels[i];
    for (size_t j = 0; j < lv.blocks.size(); ++j) {
      resblock(lv.blocks[j], x, alt, res, ws);
      if (!lv.attn.empty()) attention(lv.attn[j], x, res, ws);
    }
    if (lv.has_upsample) {
      cpu::nearest_upsample2x(x, lv.upsample.cin, res, res, ws.pad.data(), 1);
      res *= 2;
      cpu::conv2d_padded(ws.pad.data(), 1, res, res, lv.upsample.params(), alt);
      std::swap(x, alt);
    }
  }
  cpu::group_norm_padded(x, ws.pad.data(), 1, conv_out.cin, res, res, 1, kGroups, norm_out.gamma, norm_out.beta,
                         kEps, true);
  cpu::conv2d_padded(ws.pad.data(), 1, res, res, conv_out.params(), image);
  const int64_t n = conv_out.cout * res * res;
  for (int64_t i = 0; i < n; ++i) image[i] = (std::clamp(image[i], -1.0f, 1.0f) + 1.0f) * 0.5f;
}

Tensor Vqvae::decode(const Tensor& f_hat_in) const {
  const Tensor f_hat = f_hat_in.to_f32();
  const int64_t C = config_.cvae;
  AMSKV_CHECK(f_hat.ndim() == 4 && f_hat.dim(1) == C && f_hat.dim(2) == f_hat.dim(3) && f_hat.dim(2) > 0,
              "VQVAE decode: f_hat has shape ", shape_str(f_hat.shape()), ", expected [B, ", C, ", HW, HW]");
  const int64_t B = f_hat.dim(0), hw = f_hat.dim(2);
  const Impl& m = *impl_;
  const int64_t side = hw * config_.upsample_factor(), out_c = m.conv_out.cout;
  Tensor image = Tensor::zeros(DType::F32, {B, out_c, side, side});
  if (B == 0) return image;

  // Buffer sizes: walk the decoder once, tracking channels and resolution.
  int64_t act = 0, pad = 0, tmp = C * hw * hw, qkv = 0, scores = 0;
  auto at = [&](int64_t c, int64_t r) {
    act = std::max(act, c * r * r);
    tmp = std::max(tmp, c * r * r);
    pad = std::max(pad, c * (r + 2) * (r + 2));
  };
  auto attn_at = [&](int64_t c, int64_t r) {
    qkv = std::max(qkv, 3 * c * r * r);
    scores = std::max(scores, r * r * r * r);
  };
  int64_t res = hw;
  at(m.conv_in.cout, res);
  if (m.mid_attn) attn_at(m.mid_attn_block.c, res);
  for (size_t i = m.levels.size(); i-- > 0;) {
    for (const ResBlock& r : m.levels[i].blocks) at(r.cin, res), at(r.cout, res);
    if (!m.levels[i].attn.empty()) attn_at(m.levels[i].attn[0].c, res);
    if (m.levels[i].has_upsample) res *= 2, at(m.levels[i].upsample.cout, res);
  }
  at(out_c, res);
  Workspace ws;
  ws.act.resize(static_cast<size_t>(act));
  ws.alt.resize(static_cast<size_t>(act));
  ws.pad.resize(static_cast<size_t>(pad));
  ws.tmp.resize(static_cast<size_t>(tmp));
  ws.qkv.resize(static_cast<size_t>(qkv));
  ws.scores.resize(static_cast<size_t>(scores));

  const float* z = f_hat.data<float>();
  float* out = image.mutable_data<float>();
  for (int64_t b = 0; b < B; ++b) m.decode_one(z + b * C * hw * hw, hw, out + b * out_c * side * side, ws);
  return image;
}

}  // namespace amskv::model
