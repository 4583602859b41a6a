// The VQVAE side of VAR generation on any backend (spec C.7, C.8, D): codebook lookup, bicubic upsampling + φ
// convolutions accumulating into f_hat, the area-downsampled next-scale map, and the decoder. Weights are
// converted and uploaded once; f_hat, tokens and images live in backend memory.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "core/tensor.h"
#include "io/tensor_map.h"
#include "model/vqvae_config.h"

namespace amskv::model {

// Index of the φ convolution used at scale k of K, with num_phi convolutions (the reference rule in double
// precision, spec C.7): ticks = linspace(a, 1 − a, num_phi) with a = 1/(3·num_phi) if num_phi == 4 else
// 1/(2·num_phi); j = first argmin |tick_j − k/(K−1)|. K = 10, num_phi = 4 -> 0,0,1,1,1,2,2,3,3,3.
int phi_index(int k, int K, int num_phi);

// Decoder scratch for one image with latent side hw, in bytes, on `backend` (its compute dtype and what its
// convolutions allocate; memory planning, no weights needed).
int64_t decoder_bytes_per_image(const VqvaeConfig& config, int64_t hw, const backend::Backend& backend);

// How decode splits `batch` images (batch > 0) into passes of at most `most` (clamped to 1 .. batch): as few
// as that allows, their sizes at most one apart, the larger first. 128 images at most 60 at a time go as 43,
// 43 and 42, not 60, 60 and a pass of 8 whose kernels fill part of the device.
std::vector<int64_t> decode_pass_sizes(int64_t batch, int64_t most);

class Vqvae {
 public:
  // Validates the tensors (infer_vqvae_config) and uploads them.
  Vqvae(backend::Backend& backend, const io::TensorMap& tensors);
  ~Vqvae();
  Vqvae(Vqvae&&) noexcept;

  const VqvaeConfig& config() const { return config_; }
  backend::Backend& backend() const { return backend_; }
  backend::DeviceSpan codebook() const;  // [V, Cvae] float32

  // f_hat [B, Cvae, HW, HW] += φ_{j(k)}(bicubic_up(codebook[idx] as [B, Cvae, pn_k, pn_k])) with HW the last
  // patch side; the last scale (k = K − 1, pn_k = HW) is not resized. idx is int64 [B, n_k], token =
  // row·pn_k + col (values already checked against the vocabulary).
  void accumulate_scale(const std::vector<int64_t>& patch_nums, int k, backend::DeviceSpan idx, int64_t batch,
                        backend::DeviceSpan f_hat) const;
  // The same from an embedded map h [B, Cvae, pn_k, pn_k] (the more_smooth soft path).
  void accumulate_embedded(const std::vector<int64_t>& patch_nums, int k, backend::DeviceSpan h, int64_t batch,
                           backend::DeviceSpan f_hat) const;
  // Next scale's input: area-downsample f_hat [B, Cvae, hw, hw] to out [B, Cvae, pn, pn].
  void next_map(backend::DeviceSpan f_hat, int64_t batch, int64_t hw, int64_t pn, backend::DeviceSpan out) const;
  // Images in [0, 1]: (clamp(decoder(post_quant_conv(f_hat)), −1, 1) + 1) / 2 for f_hat [B, Cvae, HW, HW];
  // [B, 3, s·HW, s·HW] float32 with s = config().upsample_factor(). Runs the images in the passes of
  // decode_pass_sizes, at most the backend's decoder_images_per_pass each.
  backend::DeviceBuffer decode(backend::DeviceSpan f_hat, int64_t batch, int64_t hw) const;
  // The same from and to host tensors (tests, tools).
  Tensor decode(const Tensor& f_hat) const;

 private:
  struct Impl;
  backend::Backend& backend_;
  VqvaeConfig config_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace amskv::model
