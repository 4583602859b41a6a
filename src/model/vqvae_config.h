// The VQVAE's configuration, inferred from a checkpoint's tensors (spec section 0 and B.2): every size comes
// from the tensors, nothing from the file name or the official numbers.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/tensor_map.h"

namespace amskv::model {

struct VqvaeConfig {
  int64_t vocab = 0;                 // V: rows of quantize.embedding.weight
  int64_t cvae = 0;                  // latent channels: its columns
  int64_t ch = 0;                    // input channels of decoder.conv_out.weight
  std::vector<int64_t> ch_mult;      // decoder.up.{i}.block.0.conv1.weight output channels / ch
  int64_t num_res_blocks = 0;        // (blocks per level) − 1
  std::vector<bool> level_has_attn;  // decoder.up.{i}.attn.* present
  bool mid_attn = false;             // decoder.mid.attn_1.* present
  bool has_encoder = false;          // encoder.* present (not used for generation)
  int64_t num_phi = 0;               // φ convs (quantize.quant_resi...); 0: φ is the identity
  int64_t post_quant_ks = 3;         // kernel side of post_quant_conv
  int64_t param_count = 0;           // all tensors of the file except the ema_vocab_hit_SV buffer

  int num_levels() const { return static_cast<int>(ch_mult.size()); }
  int64_t level_channels(int i) const { return ch * ch_mult.at(static_cast<size_t>(i)); }
  // Image side / latent side: 2^(levels − 1) (16 for the official five levels).
  int64_t upsample_factor() const { return int64_t{1} << (num_levels() - 1); }
  // Key prefix of φ_j: "quantize.quant_resi.qresi_ls.{j}" (partially shared, the official layout),
  // "quantize.quant_resi.qresi" (one shared φ) or "quantize.quant_resi.{j}" (one φ per scale).
  std::string phi_key(int64_t j) const;
  std::string summary() const;

  enum class PhiLayout { None, PartiallyShared, Shared, NonShared };
  PhiLayout phi_layout = PhiLayout::None;
};

// Infers the configuration and validates the key set and the shape of every tensor that the decoder and the
// quantizer use (errors name the file and the key). encoder.*, quant_conv.* and quantize.ema_vocab_hit_SV are
// accepted and ignored; any other unexpected key is an error, as with PyTorch's strict loading.
VqvaeConfig infer_vqvae_config(const io::TensorMap& t);

}  // namespace amskv::model
