#include "model/vqvae.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>


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

using backend::DeviceBuffer;
using backend::DeviceSpan;

constexpr int64_t kGroups = 32;
constexpr float kEps = 1e-6f;
constexpr float kResiRatio = 0.5f;  // φ(u) = (1 − 0.5)·u + 0.5·conv(u)

struct Norm {
  DeviceBuffer gamma, beta;
};

struct ResBlock {
  int64_t cin = 0, cout = 0;
  Norm norm1, norm2;
  backend::ConvWeight conv1, conv2;
  bool has_shortcut = false;
  backend::ConvWeight shortcut;
};

struct AttnBlock {
  int64_t c = 0;
  Norm norm;
  backend::ConvWeight qkv, proj;
};

struct Level {
  std::vector<ResBlock> blocks;
  std::vector<AttnBlock> attn;  // empty, or one after every block
  bool has_upsample = false;
  backend::ConvWeight upsample;
};

// Activation buffers for one decoder pass over `images` images, of the backend's decoder activation type
// (float32, or its 16-bit compute dtype): ping-pong buffers for the residual stream, the conv1 output and
// the attention's qkv; and one compute-dtype buffer for padded conv inputs (also the attention's normalised
// input and output).
struct Workspace {
  DeviceBuffer act, alt, tmp, pad, qkv;
};

// Largest per-image element counts of the decoder's buffers for latent side hw, and (given a backend) the
// largest scratch in bytes that one of its convolutions or attentions allocates for an image there.
struct DecoderSizes {
  int64_t act = 0, pad = 0, qkv = 0, conv_scratch = 0;
};

// Walks the decoder (spec D) tracking channels and resolution, as decode_pass runs it.
DecoderSizes decoder_sizes(const VqvaeConfig& c, int64_t hw, const backend::Backend* be = nullptr) {
  DecoderSizes s;
  auto at = [&](int64_t ch, int64_t r) {
    s.act = std::max(s.act, ch * r * r);
    s.pad = std::max(s.pad, ch * (r + 2) * (r + 2));
  };
  auto conv = [&](int64_t cin, int64_t cout, int64_t r, int64_t k) {
    if (be) s.conv_scratch = std::max(s.conv_scratch, be->conv_scratch_bytes(cin, cout, r, r, k));
  };
  auto resblock = [&](int64_t cin, int64_t cout, int64_t r) {
    conv(cin, cout, r, 3), conv(cout, cout, r, 3);
    if (cin != cout) conv(cin, cout, r, 1);
  };
  auto attn_at = [&](int64_t ch, int64_t r) {
    s.qkv = std::max(s.qkv, 3 * ch * r * r);
    conv(ch, 3 * ch, r, 1), conv(ch, ch, r, 1);
    // spatial_attention: its qkv converted to the compute dtype (when float32), float32 scores and compute-dtype
    // probabilities over every pair of positions
    if (be) {
      const auto t = static_cast<int64_t>(dtype_size(be->compute_dtype())), n = r * r;
      s.conv_scratch = std::max(s.conv_scratch, 3 * ch * n * t + n * n * (4 + t));
    }
  };
  const int L = c.num_levels();
  int64_t res = hw;
  const int64_t top = c.level_channels(L - 1);
  conv(c.cvae, c.cvae, res, c.post_quant_ks), conv(c.cvae, top, res, 3);
  at(c.cvae, res);
  at(top, res);
  resblock(top, top, res);
  if (c.mid_attn) attn_at(top, res);
  resblock(top, top, res);
  int64_t channels = top;
  for (int i = L - 1; i >= 0; --i) {
    const int64_t out = c.level_channels(i);
    at(channels, res), at(out, res);
    resblock(channels, out, res), resblock(out, out, res);
    channels = out;
    if (c.level_has_attn[static_cast<size_t>(i)]) attn_at(out, res);
    if (i != 0) res *= 2, at(out, res), conv(out, out, res, 3);
  }
  conv(channels, 3, res, 3);
  at(3, res);
  return s;
}

}  // namespace

int64_t decoder_bytes_per_image(const VqvaeConfig& config, int64_t hw, const backend::Backend& backend) {
  const DecoderSizes s = decoder_sizes(config, hw, &backend);
  // The stream, its ping-pong and conv1's output, the attention's qkv, the compute-dtype padded input, plus the
  // largest scratch one operation allocates on this backend (im2col's columns, a rewritten input).
  const auto activation = static_cast<int64_t>(dtype_size(backend.decoder_activation_dtype()));
  return activation * (3 * s.act + s.qkv) +
         static_cast<int64_t>(dtype_size(backend.compute_dtype())) * std::max(s.pad, s.act) + s.conv_scratch;
}

std::vector<int64_t> decode_pass_sizes(int64_t batch, int64_t most) {
  AMSKV_CHECK(batch > 0, "VQVAE decode: passes of ", batch, " images");
  most = std::clamp<int64_t>(most, 1, batch);
  const int64_t passes = (batch + most - 1) / most;
  std::vector<int64_t> sizes(static_cast<size_t>(passes), batch / passes);
  for (int64_t i = 0; i < batch % passes; ++i) ++sizes[static_cast<size_t>(i)];
  return sizes;
}

struct Vqvae::Impl {
  backend::Backend& be;
  DeviceBuffer codebook;
  backend::ConvWeight post_quant, conv_in, conv_out;
  ResBlock mid1, mid2;
  bool mid_attn = false;
  AttnBlock mid_attn_block;
  std::vector<Level> levels;  // index = level i (processed from the last to 0)
  Norm norm_out;
  std::vector<backend::ConvWeight> phi;

  explicit Impl(backend::Backend& b) : be(b) {}
  void decode_pass(DeviceSpan z, int64_t images, int64_t hw, DeviceSpan image, Workspace& ws) const;
  void resblock(const ResBlock& r, DeviceBuffer& x, DeviceBuffer& alt, int64_t images, int64_t res,
                Workspace& ws) const;
  void attention(const AttnBlock& a, DeviceBuffer& x, int64_t images, int64_t res, Workspace& ws) const;
};

namespace {

backend::ConvWeight load_conv(backend::Backend& b, const io::TensorMap& t, const std::string& prefix) {
  const Tensor& w = t.at(prefix + ".weight");
  return b.make_conv(w, &t.at(prefix + ".bias"), w.dim(2) / 2);
}

Norm load_norm(backend::Backend& b, const io::TensorMap& t, const std::string& prefix) {
  return Norm{b.constant(t.at(prefix + ".weight"), DType::F32), b.constant(t.at(prefix + ".bias"), DType::F32)};
}

ResBlock load_resblock(backend::Backend& b, const io::TensorMap& t, const std::string& p) {
  ResBlock r;
  r.norm1 = load_norm(b, t, p + ".norm1");
  r.conv1 = load_conv(b, t, p + ".conv1");
  r.norm2 = load_norm(b, t, p + ".norm2");
  r.conv2 = load_conv(b, t, p + ".conv2");
  r.cin = r.conv1.cin;
  r.cout = r.conv1.cout;
  r.has_shortcut = t.contains(p + ".nin_shortcut.weight");
  if (r.has_shortcut) r.shortcut = load_conv(b, t, p + ".nin_shortcut");
  return r;
}

AttnBlock load_attn(backend::Backend& b, const io::TensorMap& t, const std::string& p) {
  AttnBlock a;
  a.norm = load_norm(b, t, p + ".norm");
  a.qkv = load_conv(b, t, p + ".qkv");
  a.proj = load_conv(b, t, p + ".proj_out");
  a.c = a.proj.cout;
  return a;
}

}  // namespace

Vqvae::Vqvae(backend::Backend& b, const io::TensorMap& t)
    : backend_(b), config_(infer_vqvae_config(t)), impl_(std::make_unique<Impl>(b)) {
  Impl& m = *impl_;
  m.codebook = b.constant(t.at("quantize.embedding.weight"), DType::F32);
  m.post_quant = load_conv(b, t, "post_quant_conv");
  m.conv_in = load_conv(b, t, "decoder.conv_in");
  m.mid1 = load_resblock(b, t, "decoder.mid.block_1");
  m.mid2 = load_resblock(b, t, "decoder.mid.block_2");
  m.mid_attn = config_.mid_attn;
  if (m.mid_attn) m.mid_attn_block = load_attn(b, t, "decoder.mid.attn_1");
  m.levels.resize(static_cast<size_t>(config_.num_levels()));
  for (int i = 0; i < config_.num_levels(); ++i) {
    Level& lv = m.levels[static_cast<size_t>(i)];
    for (int64_t j = 0; j <= config_.num_res_blocks; ++j) {
      lv.blocks.push_back(load_resblock(b, t, cat("decoder.up.", i, ".block.", j)));
      if (config_.level_has_attn[static_cast<size_t>(i)])
        lv.attn.push_back(load_attn(b, t, cat("decoder.up.", i, ".attn.", j)));
    }
    lv.has_upsample = i != 0;
    if (lv.has_upsample) lv.upsample = load_conv(b, t, cat("decoder.up.", i, ".upsample.conv"));
  }
  m.norm_out = load_norm(b, t, "decoder.norm_out");
  m.conv_out = load_conv(b, t, "decoder.conv_out");
  for (int64_t j = 0; j < config_.num_phi; ++j) m.phi.push_back(load_conv(b, t, config_.phi_key(j)));
}

Vqvae::~Vqvae() = default;
Vqvae::Vqvae(Vqvae&&) noexcept = default;

DeviceSpan Vqvae::codebook() const { return impl_->codebook; }

// ---------------------------------------------------------------------------------------------------------------
// Quantizer side

void Vqvae::accumulate_scale(const std::vector<int64_t>& patch_nums, int k, DeviceSpan idx, int64_t batch,
                             DeviceSpan f_hat) const {
  AMSKV_CHECK(k >= 0 && static_cast<size_t>(k) < patch_nums.size(), "VQVAE accumulate_scale: scale ", k,
              " outside a schedule of ", patch_nums.size(), " scales");
  const int64_t pn = patch_nums[static_cast<size_t>(k)], n = pn * pn, C = config_.cvae;
  DeviceBuffer rows = backend_.alloc(DType::F32, batch * n * C);  // [B, n, C]: one codebook row per token
  backend_.gather_rows(impl_->codebook, C, idx.slice(0, batch * n), rows);
  DeviceBuffer h = backend_.alloc(DType::F32, batch * C * n);
  backend_.transpose(rows, batch, n, C, h);
  accumulate_embedded(patch_nums, k, h, batch, f_hat);
}

void Vqvae::accumulate_embedded(const std::vector<int64_t>& patch_nums, int k, DeviceSpan h, int64_t batch,
                                DeviceSpan f_hat) const {
  const int K = static_cast<int>(patch_nums.size());
  AMSKV_CHECK(k >= 0 && k < K, "VQVAE accumulate_embedded: scale ", k, " outside a schedule of ", K, " scales");
  const int64_t HW = patch_nums.back(), pn = patch_nums[static_cast<size_t>(k)], C = config_.cvae;
  const int64_t total = batch * C * HW * HW;
  DeviceBuffer up;
  DeviceSpan u = h.slice(0, batch * C * pn * pn);
  if (k < K - 1) {
    up = backend_.alloc(DType::F32, total);
    backend_.bicubic_resize(u, batch * C, pn, pn, HW, HW, up);
    u = up;
  } else {
    AMSKV_CHECK(pn == HW, "VQVAE accumulate_embedded: the last scale has side ", pn, ", expected ", HW);
  }
  const DeviceSpan target = f_hat.slice(0, total);
  if (impl_->phi.empty()) {
    backend_.accumulate(target, 1.0f, u, 0.0f, u);
    return;
  }
  const auto& phi = impl_->phi[static_cast<size_t>(phi_index(k, K, static_cast<int>(impl_->phi.size())))];
  DeviceBuffer conv = backend_.alloc(DType::F32, total);
  backend_.conv2d(u, batch, HW, HW, phi, conv, /*padded_input=*/false, /*accumulate=*/false);
  backend_.accumulate(target, 1.0f - kResiRatio, u, kResiRatio, conv);
}

void Vqvae::next_map(DeviceSpan f_hat, int64_t batch, int64_t hw, int64_t pn, DeviceSpan out) const {
  backend_.area_resize(f_hat, batch * config_.cvae, hw, hw, pn, pn, out);
}

// ---------------------------------------------------------------------------------------------------------------
// Decoder

void Vqvae::Impl::resblock(const ResBlock& r, DeviceBuffer& x, DeviceBuffer& alt, int64_t images, int64_t res,
                           Workspace& ws) const {
  be.group_norm_conv2d(x, images, res, res, kGroups, r.norm1.gamma, r.norm1.beta, kEps, true, r.conv1, ws.pad, ws.tmp,
                       /*accumulate=*/false);
  if (r.has_shortcut) {
    be.conv2d(x, images, res, res, r.shortcut, alt, false, false);
    std::swap(x, alt);
  }
  // out = shortcut(x) + (conv2(·) + bias), accumulated onto the shortcut.
  be.group_norm_conv2d(ws.tmp, images, res, res, kGroups, r.norm2.gamma, r.norm2.beta, kEps, true, r.conv2, ws.pad, x,
                       /*accumulate=*/true);
}

void Vqvae::Impl::attention(const AttnBlock& a, DeviceBuffer& x, int64_t images, int64_t res, Workspace& ws) const {
  const int64_t N = res * res;
  be.group_norm(x, ws.pad, images, a.c, res, res, 0, kGroups, a.norm.gamma, a.norm.beta, kEps, false);
  be.conv2d(ws.pad, images, res, res, a.qkv, ws.qkv, false, false);  // [images, 3C, N]
  be.spatial_attention(ws.qkv, images, a.c, N, ws.pad);              // the normalised input is no longer needed
  be.conv2d(ws.pad, images, res, res, a.proj, x, false, /*accumulate=*/true);
}

void Vqvae::Impl::decode_pass(DeviceSpan z, int64_t images, int64_t hw, DeviceSpan image, Workspace& ws) const {
  DeviceBuffer x = ws.act, alt = ws.alt;
  int64_t res = hw;
  be.conv2d(z, images, res, res, post_quant, ws.tmp, false, false);
  be.conv2d(ws.tmp, images, res, res, conv_in, x, false, false);
  resblock(mid1, x, alt, images, res, ws);
  if (mid_attn) attention(mid_attn_block, x, images, res, ws);
  resblock(mid2, x, alt, images, res, ws);
  for (size_t i = levels.size(); i-- > 0;) {
    const Level& lv = levels[i];
    for (size_t j = 0; j < lv.blocks.size(); ++j) {
      resblock(lv.blocks[j], x, alt, images, res, ws);
      if (!lv.attn.empty()) attention(lv.attn[j], x, images, res, ws);
    }
    if (lv.has_upsample) {
      be.upsample2x_conv2d(x, images, res, res, lv.upsample, ws.pad, alt);
      res *= 2;
      std::swap(x, alt);
    }
  }
  be.group_norm_conv2d(x, images, res, res, kGroups, norm_out.gamma, norm_out.beta, kEps, true, conv_out, ws.pad, image,
                       /*accumulate=*/false);
  be.to_unit_range(image);
}

DeviceBuffer Vqvae::decode(DeviceSpan f_hat, int64_t batch, int64_t hw) const {
  const Impl& m = *impl_;
  const int64_t C = config_.cvae, side = hw * config_.upsample_factor(), out_c = m.conv_out.cout;
  AMSKV_CHECK(hw > 0 && f_hat.size() >= batch * C * hw * hw, "VQVAE decode: f_hat holds ", f_hat.size(),
              " values, expected [", batch, ", ", C, ", ", hw, ", ", hw, "]");
  DeviceBuffer image = backend_.alloc(DType::F32, batch * out_c * side * side);
  if (batch == 0) return image;
  const std::vector<int64_t> passes =
      decode_pass_sizes(batch, backend_.decoder_images_per_pass(decoder_bytes_per_image(config_, hw, backend_)));
  const int64_t per = passes.front();  // the largest
  const DecoderSizes s = decoder_sizes(config_, hw);
  Workspace ws;
  const DType activation = backend_.decoder_activation_dtype();
  ws.act = backend_.alloc(activation, per * s.act);
  ws.alt = backend_.alloc(activation, per * s.act);
  ws.tmp = backend_.alloc(activation, per * s.act);
  ws.pad = backend_.alloc(backend_.compute_dtype(), per * std::max(s.pad, s.act));
  ws.qkv = backend_.alloc(activation, per * std::max<int64_t>(s.qkv, 1));
  int64_t b0 = 0;
  for (const int64_t nb : passes) {
    m.decode_pass(f_hat.slice(b0 * C * hw * hw, nb * C * hw * hw), nb, hw,
                  image.slice(b0 * out_c * side * side, nb * out_c * side * side), ws);
    b0 += nb;
  }
  return image;
}

Tensor Vqvae::decode(const Tensor& f_hat_in) const {
  const Tensor f_hat = f_hat_in.to_f32();
  const int64_t C = config_.cvae;
  AMSKV_CHECK(f_hat.ndim() == 4 && f_hat.dim(1) == C && f_hat.dim(2) == f_hat.dim(3) && f_hat.dim(2) > 0,
              "VQVAE decode: f_hat has shape ", shape_str(f_hat.shape()), ", expected [B, ", C, ", HW, HW]");
  const int64_t B = f_hat.dim(0), hw = f_hat.dim(2), side = hw * config_.upsample_factor();
  DeviceBuffer z = backend_.alloc(DType::F32, f_hat.numel());
  backend_.upload(z, f_hat.raw(), DType::F32);
  const DeviceBuffer image = decode(z, B, hw);
  Tensor out = Tensor::zeros(DType::F32, {B, impl_->conv_out.cout, side, side});
  backend_.download(image, out.mutable_data<float>());
  return out;
}

}  // namespace amskv::model
