// Launchers of the CUDA backend's kernels (plain C++ declarations; the kernels live in the .cu files).
// Pointers are device memory. `DType` arguments name the element type of a `void*` buffer: F32, BF16 or
// F16 (the compute dtype). Every launcher checks the launch and enqueues on `stream`.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"

namespace amskv::backend::cuda {

// --- element-wise and transformer steps (kernels_transformer.cu) ---------------------------------------
void launch_convert(const void* src, DType from, void* dst, DType to, int64_t n, cudaStream_t s);
void launch_layer_norm_modulate(const float* x, int64_t rows, int64_t tokens, int64_t width, const float* scale,
                                const float* shift, int64_t mod_stride, void* y, DType y_type, cudaStream_t s);
void launch_qk_norm_split(const void* qkv, DType t, int64_t rows, int64_t n, int64_t heads, int64_t head_dim,
                          const float* tau, void* q, void* k, void* v, cudaStream_t s);
void launch_gated_residual_add(float* x, const void* branch, DType branch_type, int64_t rows, int64_t tokens,
                               int64_t width, const float* gate, int64_t gate_stride, cudaStream_t s);
// The gated residual add, then the LayerNorm + modulation of the updated x, in one pass; false (nothing
// launched) for shapes or alignments the fused kernel does not take.
bool launch_gated_residual_layer_norm(float* x, const void* branch, DType branch_type, int64_t rows, int64_t tokens,
                                      int64_t width, const float* gate, int64_t gate_stride, const float* scale,
                                      const float* shift, int64_t mod_stride, void* y, DType y_type, cudaStream_t s);
void launch_silu(const float* x, void* y, DType y_type, int64_t n, cudaStream_t s);
void launch_gelu_tanh(void* x, DType t, int64_t n, cudaStream_t s);
// out[i, :] = table[ids[i], :]; an id outside [0, table_rows) sets *bad to 1 and writes zeros.
void launch_gather_rows(const float* table, int64_t width, int64_t table_rows, const int64_t* ids, int64_t count,
                        float* out, int* bad, cudaStream_t s);
// The 8-bit KV store's write (Backend::quantize_blocks; rounding of backend/kv_int8.h): src of type t.
void launch_quantize_kv(const void* src, DType t, int64_t src_stride, int8_t* dst, int64_t dst_stride, float* scales,
                        int64_t scale_stride, int64_t tokens, int64_t width, int64_t blocks, cudaStream_t s);
// KV store compaction for token-level caches (Backend::keep_tokens); strides and width in elements of
// `elem_bytes` bytes.
void launch_keep_tokens(void* store, int64_t store_stride, const void* fresh, int64_t fresh_tokens, const int32_t* picks,
                        int64_t blocks, int64_t count, int64_t held, int64_t width, int64_t elem_bytes, cudaStream_t s);
void launch_add_rows(float* x, int64_t groups, const float* table, int64_t n, cudaStream_t s);
void launch_transpose(const float* x, int64_t batch, int64_t a, int64_t b, void* y, DType y_type, cudaStream_t s);
void launch_cfg_blend(const float* logits, float t, float* guided, int64_t half, cudaStream_t s);
// Column-major D[m×n] (ldd, batched): D[i + j·ldd] += bias[i].
void launch_add_bias_columns(void* d, DType t, int64_t m, int64_t n, int64_t ldd, int64_t batch, int64_t stride,
                             const float* bias, cudaStream_t s);
// y[b, c, :plane] = bias[c] (or += with accumulate): the starting value of a 1x1 convolution's product.
void launch_bias_planes(void* y, DType y_type, int64_t batch, int64_t channels, int64_t plane, const float* bias,
                        bool accumulate, cudaStream_t s);
void launch_accumulate(float* y, float a, const float* x1, float b, const float* x2, int64_t n, cudaStream_t s);
void launch_to_unit_range(float* x, int64_t n, cudaStream_t s);

// --- attention (kernels_attention.cu, kernels_attention_wgmma.cu) --------------------------------------
constexpr int kMaxSegments = 64;
// Segments in the compute dtype, or 8-bit ones (k_scale and v_scale set: value = int8 · scale of its token,
// scales [rows·heads][scale_stride]). The list travels as a kernel parameter (under 4 KiB).
struct SegmentList {
  const void* k[kMaxSegments];
  const void* v[kMaxSegments];
  const float* k_scale[kMaxSegments];
  const float* v_scale[kMaxSegments];
  int64_t tokens[kMaxSegments];
  int64_t head_stride[kMaxSegments];
  int64_t scale_stride[kMaxSegments];
  int count = 0;
};
// out [rows][n][heads·dh] = softmax(q·kᵀ)·v over the concatenated segments (q pre-scaled). For BF16/F16
// with dh = 64 a tensor-core flash kernel: on warpgroup products where the build and device have sm_90a, on
// mma.sync otherwise (8-bit segments widened in shared memory in both); a warp-per-query kernel for other
// types and head sizes.
void launch_attention(const void* q, DType t, int64_t rows, int64_t heads, int64_t n, int64_t head_dim,
                      const SegmentList& segments, void* out, cudaStream_t s);
// The same, also writing mass [rows][heads][segments] (probability summed over queries and each segment's keys)
// when `mass` is not null, and key_mass [rows][heads][keys] (probability each key received, summed over the
// queries) when `key_mass` is not null.
void launch_attention_with_mass(const void* q, DType t, int64_t rows, int64_t heads, int64_t n, int64_t head_dim,
                                const SegmentList& segments, void* out, double* mass, float* key_mass,
                                cudaStream_t s);

// --- sampling (kernels_sampling.cu) --------------------------------------------------------------------
// Masks guided [batch·n, vocab] in place (top-k, then top-p) and draws tokens [batch·n] with the engine's
// counter-based generator (seed, image_base[0] + first_image + b, scale, position); image_base may be null.
void launch_sample_tokens(float* guided, int64_t batch, int64_t n, int64_t vocab, int64_t top_k, double top_p,
                          uint64_t seed, const int64_t* image_base, uint64_t first_image, int scale,
                          int64_t* tokens, cudaStream_t s);

// --- images and latents (kernels_image.cu) -------------------------------------------------------------
void launch_bicubic(const float* x, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w, float* y,
                    cudaStream_t s);
void launch_area(const float* x, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w, float* y,
                 cudaStream_t s);
// The decoder's activations x below are float32 or 16-bit (x_type), as the backend keeps them.
void launch_nearest_upsample2x(const void* x, DType x_type, int64_t planes, int64_t h, int64_t w, void* y,
                               DType y_type, int64_t pad, cudaStream_t s);
// Per (image, channel) scale and shift of GroupNorm: y = x·scale + shift (statistics in double). Each group
// is summed in group_norm_parts(...) slices; `partial` holds 2 doubles per slice.
int64_t group_norm_parts(int64_t batch, int64_t groups, int64_t count);
void launch_group_norm_stats(const void* x, DType x_type, int64_t batch, int64_t channels, int64_t hw, int64_t groups,
                             const float* gamma, const float* beta, float eps, double* partial, float* scale,
                             float* shift, cudaStream_t s);
void launch_group_norm_apply(const void* x, DType x_type, int64_t batch, int64_t channels, int64_t h, int64_t w,
                             int64_t pad, const float* scale, const float* shift, bool silu, void* y, DType y_type,
                             cudaStream_t s);
// The columns of a k×k convolution (stride 1, zero padding `pad`) for one product per image:
// cols[b][(ky·kw + kx)·cin + ci][oy·ow + ox] = x[b][ci][oy + ky − pad][ox + kx − pad] (0 outside: rows tap by
// tap, the order of the backend's packed k×k weights and of the implicit-GEMM kernel's k steps), with x
// [batch, cin, h + 2·in_pad, w + 2·in_pad] (already padded by in_pad, 0 or pad) of any float type. Each
// image has `rows` rows (at least cin·kh·kw); the rows past cin·kh·kw are ones (they carry the bias).
void launch_im2col(const void* x, DType x_type, int64_t batch, int64_t cin, int64_t h, int64_t w, int64_t in_pad,
                   int64_t kh, int64_t kw, int64_t pad, int64_t rows, void* cols, DType cols_type, cudaStream_t s);
// The same for the GroupNorm (and SiLU) of an unpadded x: each value becomes x·scale + shift of its (image,
// channel) plane, then SiLU when `silu`, before it is written; the padding stays zero.
void launch_im2col_group_norm(const void* x, DType x_type, int64_t batch, int64_t cin, int64_t h, int64_t w,
                              int64_t kh, int64_t kw, int64_t pad, int64_t rows, const float* scale, const float* shift,
                              bool silu, void* cols, DType cols_type, cudaStream_t s);
// The implicit-GEMM 3×3 convolution (kernels_conv.cu) for planes of an even number of rows a multiple of 128
// wide (or, with the wgmma kernel, a multiple of 4 rows of 64) and channel counts that its tiles take (cin a
// multiple of 32, cout of 160), bf16 or f16 weights packed as for im2col ([cout][packed_k], k = tap·cin + ci).
// y [batch, cout, h, w] (float32 or the compute type, aligned to conv3x3_implicit_output_alignment bytes) =
// conv(x) + bias, or += with accumulate. x: float32 or the compute type, zero-padded by in_pad (0 or 1); with
// `scale` (and `shift`, [batch·cin]) an unpadded x normalised per plane (then SiLU when `silu`) as it is read; with
// `nearest2x` an unpadded x of h/2 × w/2 planes, upsampled ×2 (nearest) as it is read. `scratch` holds
// conv3x3_implicit_scratch(...) compute-type values: the input rewritten position-major.
bool conv3x3_implicit_fits(int64_t cin, int64_t cout, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t pad,
                           int64_t packed_k, DType compute);
// 8 where the mma.sync kernel can take the planes (it stores float2 pairs), else 16 (the wgmma kernel alone).
int conv3x3_implicit_output_alignment(int64_t h, int64_t w);
int64_t conv3x3_implicit_scratch(int64_t batch, int64_t cin, int64_t h, int64_t w);
void launch_conv3x3_implicit(const void* x, DType x_type, int64_t batch, int64_t cin, int64_t h, int64_t w,
                             int64_t in_pad, bool nearest2x, void* scratch, const void* packed, DType compute,
                             int64_t packed_k, int64_t cout, const float* bias, const float* scale, const float* shift,
                             bool silu, void* y, DType y_type, bool accumulate, cudaStream_t s);
// A 3×3 convolution with 1 to 4 output channels on planes a multiple of 128 wide (cin a multiple of 8), in fp32
// on CUDA cores: the arguments of launch_conv3x3_implicit but x float32 or of the weights' type, weights of any
// float type, a float32 output and no scratch.
bool conv3x3_few_outputs_fits(int64_t cin, int64_t cout, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t pad,
                              int64_t packed_k);
void launch_conv3x3_few_outputs(const void* x, DType x_type, int64_t batch, int64_t cin, int64_t h, int64_t w,
                                int64_t in_pad, const void* packed, DType weight_type, int64_t packed_k, int64_t cout,
                                const float* bias, const float* scale, const float* shift, bool silu, float* y,
                                bool accumulate, cudaStream_t s);
// p [rows, cols] = softmax(scale · s) along each row.
void launch_softmax_rows(const float* s, int64_t rows, int64_t cols, float scale, void* p, DType p_type,
                         cudaStream_t st);
// *out = Σ values[i] / divisor, summed in an order fixed by the count alone (one block).
void launch_mean_of(const double* values, int64_t count, double divisor, double* out, cudaStream_t s);
// partial[rh], per (row, head): Σ over current tokens of cos(bicubic-upsampled previous keys, current keys),
// summed in an order fixed by the sides, the head dimension and the alignment (not by the launch).
// The previous keys are of type t, or 8-bit with `prev_scale` (per token, prev_scale_stride per block).
void launch_key_similarity(const void* prev, const float* prev_scale, int64_t prev_scale_stride, const void* cur,
                           DType t, int64_t blocks, int64_t prev_stride, int64_t cur_stride, int64_t prev_side,
                           int64_t cur_side, int64_t head_dim, double* partial, cudaStream_t s);

}  // namespace amskv::backend::cuda
