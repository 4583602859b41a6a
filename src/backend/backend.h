// The backend interface: every operation the VAR transformer, the VQVAE and generation need, on buffers that
// live on the backend's device. The model asks for operations; it never calls one backend's kernels and
// never dereferences device memory. Each backend (cpu/, cuda/) implements all of it; the conformance test
// (tests/test_backend_ops.cpp) runs every operation on every backend present against the CPU.
//
// Element types: the residual streams, norms' statistics, logits, the latent f_hat and everything in the
// VQVAE's quantizer path are float32. Matrix inputs (activations feeding a product), attention operands and
// the KV cache use the backend's compute dtype (F32 on the CPU; BF16, F16 or F32 on CUDA). Each operation
// states which of its buffers may use the compute dtype; a buffer of another type is an error.
//
// Layout conventions: row-major; "rows" are the 2B classifier-free-guidance rows (conditional first);
// per-row modulation vectors are `mod_stride` elements apart. All work is enqueued in order on one stream;
// download() and synchronize() wait for it.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "backend/attention_segment.h"
#include "backend/device_buffer.h"
#include "core/tensor.h"

namespace amskv::backend {

// A matrix product's weights, converted once to the compute dtype: y = x·Wᵀ + b (PyTorch nn.Linear layout).
struct LinearWeight {
  DeviceBuffer weight;        // [out, in]
  DeviceBuffer bias;          // [out] float32, or unallocated
  DeviceBuffer bias_compute;  // the bias in the compute dtype, where a backend adds it to such outputs
  int64_t out = 0, in = 0;
};

// A convolution's weights in a backend-private packing (stride 1, zero padding `pad` on every side).
struct ConvWeight {
  DeviceBuffer packed;  // layout known only to the backend that made it
  DeviceBuffer bias;    // [cout] float32, or unallocated
  int64_t cout = 0, cin = 0, kh = 1, kw = 1, pad = 0;
};

enum class Activation { None, GeluTanh };

struct MemoryInfo {
  int64_t free_bytes = 0;
  int64_t total_bytes = 0;
};

// Sampling settings that the token draw needs (the guidance scale is applied before, by cfg_blend).
struct TokenSampling {
  int64_t top_k = 0;   // 0: off
  double top_p = 0.0;  // 0: off
  uint64_t seed = 0;
  // Optional I64 [1] in backend memory added to every image number: a recorded step that is replayed for
  // other images reads their first number from here (uploaded before each replay) rather than from a
  // recorded argument.
  DeviceSpan image_base;
};

// Accumulates the device time of the work enqueued between start() and stop() pairs.
class OpTimer {
 public:
  virtual ~OpTimer() = default;
  virtual void start() = 0;
  virtual void stop() = 0;
  virtual double seconds() = 0;  // waits for the timed work
};

// Records nothing: for runs that report no per-operation times (a device event around every layer's products
// and attention costs host time on each, which batch 1, bound by the host's launches, feels).
class NullTimer final : public OpTimer {
 public:
  void start() override {}
  void stop() override {}
  double seconds() override { return 0.0; }
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string device() const = 0;  // "cpu" or "cuda"
  virtual std::string name() const = 0;    // for reports, e.g. "cuda:0 NVIDIA H200 (bf16)"
  virtual DType compute_dtype() const = 0;
  // How the KV store keeps past scales' K/V: the compute dtype (the default), or I8 (8-bit integers with a
  // float32 scale per token and head, quantize_blocks), which halves a bf16 cache so that larger batches fit.
  // The current scale's K/V and every attention product stay in the compute dtype.
  DType kv_dtype() const { return kv_int8_ ? DType::I8 : compute_dtype(); }
  void set_kv_int8(bool on) { kv_int8_ = on; }
  // The type of the VQVAE decoder's activations (its residual stream, the convolutions' outputs, the
  // attention's qkv): float32, or a backend's 16-bit compute dtype. Every decoder operation below takes x and
  // y of either type; the decoded image is float32.
  virtual DType decoder_activation_dtype() const { return DType::F32; }
  // How many images the VQVAE decoder should run at once (the CPU decodes one at a time, in cache).
  virtual int64_t decoder_images_per_pass(int64_t bytes_per_image) const = 0;

  // --- memory ------------------------------------------------------------------------------------------
  // Contents unspecified. Throws amskv::Error naming the size when the device has no room.
  virtual DeviceBuffer alloc(DType dtype, int64_t count) = 0;
  // dst <- host values of `host_dtype` (converted when dst has another floating type; integers only to the
  // same type).
  virtual void upload(DeviceSpan dst, const void* host, DType host_dtype) = 0;
  // host <- src (same dtype, src.bytes() bytes); waits for pending work.
  virtual void download(DeviceSpan src, void* host) = 0;
  // A constant tensor on the device as `dtype` (zero-copy on the CPU when the types agree).
  virtual DeviceBuffer constant(const Tensor& host, DType dtype) = 0;
  virtual void copy(DeviceSpan dst, DeviceSpan src) = 0;  // same dtype and size
  // `count` blocks of `block` elements: dst[i·dst_stride ...] <- src[i·src_stride ...]; no overlap.
  virtual void copy_blocks(DeviceSpan dst, int64_t dst_stride, DeviceSpan src, int64_t src_stride, int64_t block,
                           int64_t count) = 0;
  // A token-level cache (h2o) keeps `count` tokens in each of `blocks` (row, head) blocks, in place: token j
  // of block b becomes picks[b·count + j], an index into the block's `held` stored tokens
  // (store[b·store_stride + i·width ...]) or, from `held` on, into its fresh tokens
  // (fresh[(b·fresh_tokens + i − held)·width ...]). Picks ascend within a block, so stored tokens only move
  // towards the front; the caller has checked them. One operation, not a copy per token: a batch of 128 on
  // d30 moves millions of tokens per scale.
  virtual void keep_tokens(DeviceSpan store, int64_t store_stride, DeviceSpan fresh, int64_t fresh_tokens,
                           const std::vector<int32_t>& picks, int64_t blocks, int64_t count, int64_t held,
                           int64_t width) = 0;
  // The 8-bit KV store's write: `blocks` blocks of `tokens` vectors of `width` values (src [blocks][tokens][width]
  // in the compute dtype, src_stride elements between blocks) into dst (I8, dst_stride elements between
  // blocks) and scales (F32, scale_stride per block). A vector v becomes q = round(v·(127/m)) with scale
  // m/127, m = max|v| (all zeros, scale 0, for a zero vector): every value is kept within half a step,
  // m/254. The rounding is the same on every backend; only the input's type differs.
  virtual void quantize_blocks(DeviceSpan dst, int64_t dst_stride, DeviceSpan scales, int64_t scale_stride,
                               DeviceSpan src, int64_t src_stride, int64_t tokens, int64_t width,
                               int64_t blocks) = 0;
  virtual void fill_zero(DeviceSpan dst) = 0;
  virtual MemoryInfo memory() const = 0;
  // The most memory this backend's buffers held at once since the last reset (the CPU reports its peak
  // resident set, which it cannot reset).
  virtual int64_t peak_memory_bytes() const = 0;
  virtual void reset_peak_memory() = 0;
  virtual void synchronize() = 0;
  virtual std::unique_ptr<OpTimer> make_timer() = 0;

  // --- recorded steps ------------------------------------------------------------------------------------
  // A backend that records (CUDA graphs) keeps the work enqueued between begin_step(key) and end_step(key) as
  // one unit and launches it at end_step: the device then runs hundreds of small kernels back to back
  // instead of waiting on the host's launches, which is what bounds batch 1. One unit is kept per key; a
  // later step with the same key updates that unit's arguments in place when it enqueued the same
  // operations, else the unit is made anew. Between the two nothing may wait for the device or hand it host
  // memory (download, upload, synchronize, timers, attention masses, token picks): the backend refuses
  // those. abort_step() abandons a recording (an error in the middle of a step). Backends that cannot
  // record run the work as it is enqueued (these defaults); use RecordedStep rather than the calls.
  //
  // A step begun with `keep` is launched again as recorded by replay_step(key), without being enqueued
  // again, until drop_step(key): the caller keeps every buffer the step touches alive and in place and
  // changes only their contents (inputs uploaded before the replay); the backend reserves the scratch the
  // step allocated for it. replay_step() is false when no kept step has that key. drop_step() never throws.
  virtual bool can_record_steps() const { return false; }
  virtual void begin_step(uint64_t key, bool keep) { (void)key, (void)keep; }
  virtual void end_step(uint64_t key) { (void)key; }
  virtual void abort_step() {}
  virtual bool replay_step(uint64_t key) { return (void)key, false; }
  virtual void drop_step(uint64_t key) noexcept { (void)key; }

  // --- weights -----------------------------------------------------------------------------------------
  // weight [out, in], bias [out] or null; any floating dtype on the host.
  virtual LinearWeight make_linear(const Tensor& weight, const Tensor* bias) = 0;
  // weight [cout, cin, kh, kw], bias [cout] or null; zero padding `pad`.
  virtual ConvWeight make_conv(const Tensor& weight, const Tensor* bias, int64_t pad) = 0;

  // --- transformer -------------------------------------------------------------------------------------
  // y [rows, out] = act(x [rows, in] · Wᵀ + b). x in the compute dtype; y float32 or the compute dtype.
  virtual void linear(DeviceSpan x, int64_t rows, const LinearWeight& w, DeviceSpan y,
                      Activation act = Activation::None) = 0;
  // y[r, t, :] = LayerNorm(x[r, t, :]) · (1 + scale[r]) + shift[r] (no affine, eps 1e-6, biased variance).
  // x float32 [rows, tokens, width]; y the compute dtype (or float32); scale/shift float32.
  virtual void layer_norm_modulate(DeviceSpan x, int64_t rows, int64_t tokens, int64_t width, DeviceSpan scale,
                                   DeviceSpan shift, int64_t mod_stride, DeviceSpan y) = 0;
  // Fused qkv [rows, n, 3C] (channel = which·C + head·dh + d, compute dtype) -> q, k, v each
  // [rows][heads][n][dh] in the compute dtype, q and k l2-normalised per head (eps 1e-12) and q times tau[h]
  // (float32 [heads]).
  virtual void qk_norm_split(DeviceSpan qkv, int64_t rows, int64_t n, int64_t heads, int64_t head_dim,
                             DeviceSpan tau, DeviceSpan q, DeviceSpan k, DeviceSpan v) = 0;
  // Softmax attention (scale 1: q is pre-scaled) of q [rows][heads][n][dh] over the concatenated segments
  // (each in the compute dtype, or I8 with scales);
  // out [rows][n][heads·dh], compute dtype. segment_mass (host, may be null) receives [rows][heads][segments]:
  // attention probability summed over the n queries and over each segment's keys; key_mass (host, may be
  // null) receives [rows][heads][keys]: the probability every key received, summed over the queries (for
  // token-level policies such as H2O).
  virtual void attention(DeviceSpan q, int64_t rows, int64_t heads, int64_t n, int64_t head_dim,
                         std::span<const AttentionSegment> segments, DeviceSpan out, double* segment_mass,
                         float* key_mass) = 0;
  // x[r, t, :] += gate[r, :] · branch[r, t, :]; x float32, branch float32 or compute dtype, gate float32.
  virtual void gated_residual_add(DeviceSpan x, DeviceSpan branch, int64_t rows, int64_t tokens, int64_t width,
                                  DeviceSpan gate, int64_t gate_stride) = 0;
  // gated_residual_add, then layer_norm_modulate of the updated x into y: a block's residual step and the norm
  // that reads its result, which a backend may do in one pass over x (this composition runs them in turn).
  virtual void gated_residual_layer_norm(DeviceSpan x, DeviceSpan branch, int64_t rows, int64_t tokens,
                                         int64_t width, DeviceSpan gate, int64_t gate_stride, DeviceSpan scale,
                                         DeviceSpan shift, int64_t mod_stride, DeviceSpan y) {
    gated_residual_add(x, branch, rows, tokens, width, gate, gate_stride);
    layer_norm_modulate(x, rows, tokens, width, scale, shift, mod_stride, y);
  }
  // y = x·sigmoid(x), float32 (x == y allowed).
  virtual void silu(DeviceSpan x, DeviceSpan y) = 0;
  // out [count, width] = table[ids[i], :]; table and out float32, ids int64 (checked against the table).
  virtual void gather_rows(DeviceSpan table, int64_t width, DeviceSpan ids, DeviceSpan out) = 0;
  // x [groups, n·width] += table [n·width] for every group; float32.
  virtual void add_rows(DeviceSpan x, int64_t groups, DeviceSpan table) = 0;
  // y [batch, b, a] = x [batch, a, b] transposed; float32.
  virtual void transpose(DeviceSpan x, int64_t batch, int64_t a, int64_t b, DeviceSpan y) = 0;

  // --- guidance and tokens -----------------------------------------------------------------------------
  // guided [half] = (1 + t)·logits[:half] − t·logits[half:], half = guided.size(); float32.
  virtual void cfg_blend(DeviceSpan logits, float t, DeviceSpan guided) = 0;
  // Masks guided [batch, n, vocab] in place (top-k, then top-p) and draws one token per position with the
  // counter-based generator keyed by (seed, image_base + first_image + b, scale, position); tokens int64
  // [batch, n].
  virtual void sample_tokens(DeviceSpan guided, int64_t batch, int64_t n, int64_t vocab, const TokenSampling& s,
                             uint64_t first_image, int scale, DeviceSpan tokens) = 0;
  // more_smooth: h [batch, n, dim] = softmax((masked logits·(1 + ratio) + gumbel) / tau) · codebook [vocab, dim].
  virtual void soft_token_embedding(DeviceSpan masked, int64_t batch, int64_t n, int64_t vocab, double ratio,
                                    uint64_t seed, uint64_t first_image, int scale, DeviceSpan codebook, int64_t dim,
                                    DeviceSpan h) = 0;

  // --- latent (float32 NCHW planes; nearest ×2 also takes the decoder's activations) ---------------------
  // PyTorch interpolate: bicubic (align_corners False, A = −0.75), area (adaptive average), nearest ×2 (y
  // written as zero-padded planes when pad > 0: the padded-input layout of conv2d).
  virtual void bicubic_resize(DeviceSpan x, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h,
                              int64_t out_w, DeviceSpan y) = 0;
  virtual void area_resize(DeviceSpan x, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w,
                           DeviceSpan y) = 0;
  virtual void nearest_upsample2x(DeviceSpan x, int64_t planes, int64_t h, int64_t w, DeviceSpan y,
                                  int64_t pad) = 0;
  // y += a·x1 + b·x2 (float32, same sizes).
  virtual void accumulate(DeviceSpan y, float a, DeviceSpan x1, float b, DeviceSpan x2) = 0;

  // --- VQVAE decoder -----------------------------------------------------------------------------------
  // GroupNorm (affine gamma/beta, eps) over x [batch, channels, h, w], optionally then SiLU; y written
  // as zero-padded planes [batch, channels, h + 2·pad, w + 2·pad] in float32 or the compute dtype.
  virtual void group_norm(DeviceSpan x, DeviceSpan y, int64_t batch, int64_t channels, int64_t h, int64_t w,
                          int64_t pad, int64_t groups, DeviceSpan gamma, DeviceSpan beta, float eps,
                          bool fuse_silu) = 0;
  // y [batch, cout, oh, ow] (float32 or decoder_activation_dtype()) = conv(x) + bias (added onto y with
  // `accumulate`). x is [batch, cin, h, w] float32 or compute dtype, or with `padded_input` already
  // zero-padded [batch, cin, h + 2·pad, w + 2·pad].
  virtual void conv2d(DeviceSpan x, int64_t batch, int64_t h, int64_t w, const ConvWeight& weight, DeviceSpan y,
                      bool padded_input, bool accumulate) = 0;
  // conv2d of group_norm(x) (zero-padded as the convolution pads): the decoder's norm → conv pairs. `scratch`
  // takes the normalised input (batch · cin · (h + 2·pad)(w + 2·pad) values of the compute dtype) where a
  // backend materialises it, as this composition does; a backend may instead normalise while it reads x.
  virtual void group_norm_conv2d(DeviceSpan x, int64_t batch, int64_t h, int64_t w, int64_t groups,
                                 DeviceSpan gamma, DeviceSpan beta, float eps, bool fuse_silu,
                                 const ConvWeight& weight, DeviceSpan scratch, DeviceSpan y, bool accumulate) {
    group_norm(x, scratch, batch, weight.cin, h, w, weight.pad, groups, gamma, beta, eps, fuse_silu);
    conv2d(scratch, batch, h, w, weight, y, /*padded_input=*/weight.pad > 0, accumulate);
  }
  // conv2d of the nearest ×2 upsampling of x ([batch, cin, h, w]; y [batch, cout, 2h, 2w] written): the
  // decoder's upsample → conv pairs. `scratch` takes the upsampled, zero-padded input (batch · cin · (2h +
  // 2·pad)(2w + 2·pad) values of the compute dtype) where a backend materialises it, as this composition does;
  // a backend may instead upsample while it reads x.
  virtual void upsample2x_conv2d(DeviceSpan x, int64_t batch, int64_t h, int64_t w, const ConvWeight& weight,
                                 DeviceSpan scratch, DeviceSpan y) {
    nearest_upsample2x(x, batch * weight.cin, h, w, scratch, weight.pad);
    conv2d(scratch, batch, 2 * h, 2 * w, weight, y, /*padded_input=*/weight.pad > 0, /*accumulate=*/false);
  }
  // Device bytes that conv2d or group_norm_conv2d of this shape (3x3 or 1x1, stride 1, output as large as the
  // input; upsample2x_conv2d counts as the convolution at its output's size) allocates per image beyond its
  // input and output: what the decoder's pass sizing and the memory
  // planner count. By default the columns of an im2col lowering in the compute dtype (cin·k² entries and
  // two bias rows, rounded up to 8, per output position), which bounds every lowering of this project.
  virtual int64_t conv_scratch_bytes(int64_t cin, int64_t cout, int64_t h, int64_t w, int64_t k) const {
    (void)cout;
    const int64_t rows = (cin * k * k + 2 + 7) / 8 * 8;
    return rows * h * w * static_cast<int64_t>(dtype_size(compute_dtype()));
  }
  // The VQVAE's single-head attention per image: qkv [batch, 3C, N] (q, k, v channel blocks) ->
  // out [batch, C, N] = v · softmax_j(q_i·k_j / sqrt(C))ᵀ; qkv and out float32 or compute dtype.
  virtual void spatial_attention(DeviceSpan qkv, int64_t batch, int64_t channels, int64_t positions,
                                 DeviceSpan out) = 0;
  // x = (clamp(x, −1, 1) + 1) / 2, float32.
  virtual void to_unit_range(DeviceSpan x) = 0;

  // --- analysis ----------------------------------------------------------------------------------------
  // The inter-scale key similarity of spec/amskv.md: keys of the previous scale upsampled bicubically per
  // head to the current grid, cosine similarity with the current keys, mean over tokens, heads and rows.
  // The previous keys may be an I8 segment (the store's), the current ones are in the compute dtype.
  // Written to `out` (one F64 in backend memory) without waiting for it: a cache that measures every layer
  // reads the values back once per scale, not once per layer.
  virtual void key_similarity_into(const AttentionSegment& previous, int64_t previous_side,
                                   const AttentionSegment& current, int64_t current_side, int64_t rows,
                                   int64_t heads, int64_t head_dim, DeviceSpan out) = 0;
  // The same, read back at once.
  double key_similarity(const AttentionSegment& previous, int64_t previous_side, const AttentionSegment& current,
                        int64_t current_side, int64_t rows, int64_t heads, int64_t head_dim) {
    const DeviceBuffer out = alloc(DType::F64, 1);
    key_similarity_into(previous, previous_side, current, current_side, rows, heads, head_dim, out);
    double value = 0.0;
    download(out, &value);
    return value;
  }

 private:
  bool kv_int8_ = false;
};

// One recorded step, when `on` (and the backend records): begun here, launched by finish(), abandoned if the
// step throws before that. `keep`: a step for Backend::replay_step.
class RecordedStep {
 public:
  RecordedStep(Backend& backend, bool on, uint64_t key, bool keep = false)
      : backend_(backend), on_(on && backend.can_record_steps()), key_(key) {
    if (on_) backend_.begin_step(key, keep);
  }
  RecordedStep(const RecordedStep&) = delete;
  RecordedStep& operator=(const RecordedStep&) = delete;
  ~RecordedStep() {
    if (on_) backend_.abort_step();
  }
  void finish() {
    if (!on_) return;
    on_ = false;
    backend_.end_step(key_);
  }

 private:
  Backend& backend_;
  bool on_;
  uint64_t key_;
};

}  // namespace amskv::backend
