// The CPU backend: float32 everywhere, host memory, the kernels of this folder (BLAS matrix products,
// OpenMP loops). Reference-exact against the PyTorch implementation; the conformance reference for every
// other backend.
#pragma once
#include <memory>

#include "backend/backend.h"

namespace amskv::backend {

class CpuBackend final : public Backend {
 public:
  // threads > 0 sets the OpenMP (and so OpenBLAS) thread count; 0 keeps the default (every core).
  explicit CpuBackend(int threads = 0);

  std::string device() const override { return "cpu"; }
  std::string name() const override;
  DType compute_dtype() const override { return DType::F32; }
  int64_t decoder_images_per_pass(int64_t) const override { return 1; }

  DeviceBuffer alloc(DType dtype, int64_t count) override;
  void upload(DeviceSpan dst, const void* host, DType host_dtype) override;
  void download(DeviceSpan src, void* host) override;
  DeviceBuffer constant(const Tensor& host, DType dtype) override;
  void copy(DeviceSpan dst, DeviceSpan src) override;
  void keep_tokens(DeviceSpan store, int64_t store_stride, DeviceSpan fresh, int64_t fresh_tokens,
                   const std::vector<int32_t>& picks, int64_t blocks, int64_t count, int64_t held,
                   int64_t width) override;
  void copy_blocks(DeviceSpan dst, int64_t dst_stride, DeviceSpan src, int64_t src_stride, int64_t block,
                   int64_t count) override;
  void quantize_blocks(DeviceSpan dst, int64_t dst_stride, DeviceSpan scales, int64_t scale_stride, DeviceSpan src,
                       int64_t src_stride, int64_t tokens, int64_t width, int64_t blocks) override;
  void fill_zero(DeviceSpan dst) override;
  MemoryInfo memory() const override;
  int64_t peak_memory_bytes() const override;
  void reset_peak_memory() override {}
  void synchronize() override {}
  std::unique_ptr<OpTimer> make_timer() override;

  LinearWeight make_linear(const Tensor& weight, const Tensor* bias) override;
  ConvWeight make_conv(const Tensor& weight, const Tensor* bias, int64_t pad) override;

  void linear(DeviceSpan x, int64_t rows, const LinearWeight& w, DeviceSpan y, Activation act) override;
  void layer_norm_modulate(DeviceSpan x, int64_t rows, int64_t tokens, int64_t width, DeviceSpan scale,
                           DeviceSpan shift, int64_t mod_stride, DeviceSpan y) override;
  void qk_norm_split(DeviceSpan qkv, int64_t rows, int64_t n, int64_t heads, int64_t head_dim, DeviceSpan tau,
                     DeviceSpan q, DeviceSpan k, DeviceSpan v) override;
  void attention(DeviceSpan q, int64_t rows, int64_t heads, int64_t n, int64_t head_dim,
                 std::span<const AttentionSegment> segments, DeviceSpan out, double* segment_mass,
                 float* key_mass) override;
  void gated_residual_add(DeviceSpan x, DeviceSpan branch, int64_t rows, int64_t tokens, int64_t width,
                          DeviceSpan gate, int64_t gate_stride) override;
  void silu(DeviceSpan x, DeviceSpan y) override;
  void gather_rows(DeviceSpan table, int64_t width, DeviceSpan ids, DeviceSpan out) override;
  void add_rows(DeviceSpan x, int64_t groups, DeviceSpan table) override;
  void transpose(DeviceSpan x, int64_t batch, int64_t a, int64_t b, DeviceSpan y) override;

  void cfg_blend(DeviceSpan logits, float t, DeviceSpan guided) override;
  void sample_tokens(DeviceSpan guided, int64_t batch, int64_t n, int64_t vocab, const TokenSampling& s,
                     uint64_t first_image, int scale, DeviceSpan tokens) override;
  void soft_token_embedding(DeviceSpan masked, int64_t batch, int64_t n, int64_t vocab, double ratio, uint64_t seed,
                            uint64_t first_image, int scale, DeviceSpan codebook, int64_t dim, DeviceSpan h) override;

  void bicubic_resize(DeviceSpan x, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w,
                      DeviceSpan y) override;
  void area_resize(DeviceSpan x, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w,
                   DeviceSpan y) override;
  void nearest_upsample2x(DeviceSpan x, int64_t planes, int64_t h, int64_t w, DeviceSpan y, int64_t pad) override;
  void accumulate(DeviceSpan y, float a, DeviceSpan x1, float b, DeviceSpan x2) override;

  void group_norm(DeviceSpan x, DeviceSpan y, int64_t batch, int64_t channels, int64_t h, int64_t w, int64_t pad,
                  int64_t groups, DeviceSpan gamma, DeviceSpan beta, float eps, bool fuse_silu) override;
  void conv2d(DeviceSpan x, int64_t batch, int64_t h, int64_t w, const ConvWeight& weight, DeviceSpan y,
              bool padded_input, bool accumulate) override;
  void spatial_attention(DeviceSpan qkv, int64_t batch, int64_t channels, int64_t positions,
                         DeviceSpan out) override;
  void to_unit_range(DeviceSpan x) override;

  void key_similarity_into(const AttentionSegment& previous, int64_t previous_side, const AttentionSegment& current,
                           int64_t current_side, int64_t rows, int64_t heads, int64_t head_dim,
                           DeviceSpan out) override;

 private:
  int threads_;
};

}  // namespace amskv::backend
