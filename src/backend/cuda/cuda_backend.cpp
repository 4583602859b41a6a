#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_allocator.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/step_graphs.h"

namespace amskv::backend {

namespace {

using cuda::DeviceAllocator;
using cuda::GemmCall;

constexpr size_t kGemmWorkspace = size_t{64} << 20;

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::BF16: return CUDA_R_16BF;
    case DType::F16: return CUDA_R_16F;
    default: fail("cuda backend: no matrix type for ", dtype_name(t));
  }
}

// A float as the compute type would hold it.
float round_to(float v, DType t) {
  if (t == DType::BF16) return bfloat16_to_float(float_to_bfloat16(v));
  if (t == DType::F16) return half_to_float(float_to_half(v));
  return v;
}

// Columns of a k×k product with a bias: cin·kh·kw, then two bias columns, rounded up to 8 for aligned rows.
int64_t conv_packed_k(int64_t k9) { return (k9 + 2 + 7) / 8 * 8; }

template <class T>
T* ptr(DeviceSpan s) {
  return static_cast<T*>(s.raw());
}

// Event pairs around timed work, kept in a pool: the attention and matrix-product timers run on every layer.
class CudaTimer final : public OpTimer {
 public:
  explicit CudaTimer(cudaStream_t s) : stream_(s) {}
  ~CudaTimer() override {
    for (auto& [a, b] : pool_) cudaEventDestroy(a), cudaEventDestroy(b);
  }
  void start() override {
    not_capturing();
    if (used_ == pool_.size()) {
      cudaEvent_t a = nullptr, b = nullptr;
      AMSKV_CUDA_CHECK(cudaEventCreate(&a));
      AMSKV_CUDA_CHECK(cudaEventCreate(&b));
      pool_.emplace_back(a, b);
    }
    AMSKV_CUDA_CHECK(cudaEventRecord(pool_[used_].first, stream_));
  }
  void stop() override {
    not_capturing();
    AMSKV_CUDA_CHECK(cudaEventRecord(pool_[used_++].second, stream_));
  }
  double seconds() override {
    not_capturing();
    for (size_t i = 0; i < used_; ++i) {
      AMSKV_CUDA_CHECK(cudaEventSynchronize(pool_[i].second));
      float ms = 0.0f;
      AMSKV_CUDA_CHECK(cudaEventElapsedTime(&ms, pool_[i].first, pool_[i].second));
      total_ += ms * 1e-3;
    }
    used_ = 0;
    return total_;
  }

 private:
  // An event recorded into a recorded step would time nothing (and waiting for it breaks the recording).
  void not_capturing() const {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    AMSKV_CUDA_CHECK(cudaStreamIsCapturing(stream_, &status));
    AMSKV_CHECK(status == cudaStreamCaptureStatusNone, "cuda backend: a timer inside a recorded step");
  }

  cudaStream_t stream_;
  std::vector<std::pair<cudaEvent_t, cudaEvent_t>> pool_;
  size_t used_ = 0;
  double total_ = 0.0;
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, DType compute) : device_(device), compute_(compute) {
    int count = 0;
    AMSKV_CUDA_CHECK(cudaGetDeviceCount(&count));
    AMSKV_CHECK(device >= 0 && device < count, "--gpu ", device, ": this machine has ", count, " CUDA device(s)");
    AMSKV_CUDA_CHECK(cudaSetDevice(device));
    cudaDeviceProp prop{};
    AMSKV_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    name_ = cat("cuda:", device, " ", prop.name, " (", compute == DType::BF16 ? "bf16" : compute == DType::F16 ? "f16" : "f32",
                ")");
    AMSKV_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    alloc_ = std::make_shared<DeviceAllocator>(name_);
    gemm_ = std::make_unique<cuda::Gemm>(stream_, kGemmWorkspace);
    flag_ = alloc(DType::I32, 1);
  }
  ~CudaBackend() override {
    gemm_.reset();
    flag_ = {};
    if (stream_) {
      cudaStreamSynchronize(stream_);
      cudaStreamDestroy(stream_);
    }
  }

  std::string device() const override { return "cuda"; }
  std::string name() const override { return name_; }
  DType compute_dtype() const override { return compute_; }
  // 16-bit decoder activations halve the traffic of its memory-bound kernels (the position-major layout, the
  // group-norm statistics, the convolutions' outputs); the reference's half-precision autocast keeps them so too.
  DType decoder_activation_dtype() const override { return compute_; }
  // Passes of up to 6 GiB of decoder scratch (with 16-bit activations, about 60 images at 256px): measured side by
  // side on the H200, d16 batch 256 decoded in 388 ms with 32-image passes against 450 with 12-image (2 GiB)
  // ones, whose convolutions at 128 wide end in part-filled waves and whose per-pass kernels (group-norm
  // statistics, the last convolution) have few blocks. Up to 64 rather than 32 images (float32 activations
  // filled the 6 GiB at 32): 259 against 262 ms, 0.7% more images per second, for 2.8 GiB more reserve.
  int64_t decoder_images_per_pass(int64_t bytes_per_image) const override {
    return std::clamp<int64_t>((int64_t{6} << 30) / std::max<int64_t>(bytes_per_image, 1), 1, 64);
  }
  // What direct_conv, the 1×1 product and im2col allocate for one image (a biased convolution's K; the
  // decoder's 3×3 convolutions all have a bias). It counts on the output alignment direct_conv asks of the
  // implicit-GEMM (8 or 16 bytes) and few-output (16 bytes) kernels: the decoder's outputs are device
  // allocations (256-byte aligned) or per-pass slices of them at multiples of 3·side² floats, side a multiple
  // of 128.
  // An output aligned less would take im2col's columns, which this does not count.
  int64_t conv_scratch_bytes(int64_t cin, int64_t cout, int64_t h, int64_t w, int64_t k) const override {
    const auto t = static_cast<int64_t>(dtype_size(compute_));
    if (k == 1) return cin * h * w * t;  // an input of another type converted to the compute dtype
    const int64_t K = conv_packed_k(cin * k * k);
    if (k == 3 && cuda::conv3x3_implicit_fits(cin, cout, h, w, 3, 3, 1, K, compute_))
      return cuda::conv3x3_implicit_scratch(1, cin, h, w) * t;
    // The few-output kernel writes float32 only: the decoder's last convolution, into the image.
    if (k == 3 && cuda::conv3x3_few_outputs_fits(cin, cout, h, w, 3, 3, 1, K)) return 0;
    return Backend::conv_scratch_bytes(cin, cout, h, w, k);
  }

  // --- memory --------------------------------------------------------------------------------------------
  DeviceBuffer alloc(DType dtype, int64_t count) override {
    AMSKV_CHECK(count >= 0, "cuda backend: negative allocation of ", count, " elements");
    size_t rounded = 0;
    void* p = alloc_->allocate(static_cast<size_t>(count) * dtype_size(dtype), rounded);
    std::shared_ptr<const void> holder(p, [a = alloc_, rounded](const void* q) { a->release(const_cast<void*>(q), rounded); });
    return DeviceBuffer(DeviceSpan(p, dtype, count), std::move(holder));
  }
  void upload(DeviceSpan dst, const void* host, DType host_dtype) override {
    if (dst.empty()) return;
    not_recording("upload");  // a recorded copy would read the host memory whenever the step runs again
    if (host_dtype == dst.dtype()) {
      AMSKV_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), host, dst.bytes(), cudaMemcpyHostToDevice, stream_));
      return;
    }
    std::vector<unsigned char> converted(dst.bytes());
    convert_values(host, host_dtype, converted.data(), dst.dtype(), dst.size());
    AMSKV_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), converted.data(), dst.bytes(), cudaMemcpyHostToDevice, stream_));
    AMSKV_CUDA_CHECK(cudaStreamSynchronize(stream_));  // `converted` goes away
  }
  void download(DeviceSpan src, void* host) override {
    if (src.empty()) return;
    not_recording("download");
    AMSKV_CUDA_CHECK(cudaMemcpyAsync(host, src.raw(), src.bytes(), cudaMemcpyDeviceToHost, stream_));
    AMSKV_CUDA_CHECK(cudaStreamSynchronize(stream_));
    check_recorded_gathers();
  }
  DeviceBuffer constant(const Tensor& host, DType dtype) override {
    DeviceBuffer b = alloc(dtype, host.numel());
    upload(b, host.raw(), host.dtype());
    return b;
  }
  void copy(DeviceSpan dst, DeviceSpan src) override {
    AMSKV_CHECK(dst.dtype() == src.dtype() && dst.size() == src.size(), "cuda backend: copy of ", src.size(), " ",
                dtype_name(src.dtype()), " into ", dst.size(), " ", dtype_name(dst.dtype()));
    if (src.empty()) return;
    AMSKV_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), src.bytes(), cudaMemcpyDeviceToDevice, stream_));
  }
  void copy_blocks(DeviceSpan dst, int64_t dst_stride, DeviceSpan src, int64_t src_stride, int64_t block,
                   int64_t count) override {
    AMSKV_CHECK(dst.dtype() == src.dtype(), "cuda backend: copy_blocks between different dtypes");
    if (count == 0 || block == 0) return;
    AMSKV_CHECK(dst.size() >= (count - 1) * dst_stride + block && src.size() >= (count - 1) * src_stride + block,
                "cuda backend: copy_blocks out of range");
    const size_t es = dtype_size(src.dtype());
    AMSKV_CUDA_CHECK(cudaMemcpy2DAsync(dst.raw(), dst_stride * es, src.raw(), src_stride * es, block * es,
                                       static_cast<size_t>(count), cudaMemcpyDeviceToDevice, stream_));
  }
  void keep_tokens(DeviceSpan store, int64_t store_stride, DeviceSpan fresh, int64_t fresh_tokens,
                   const std::vector<int32_t>& picks, int64_t blocks, int64_t count, int64_t held,
                   int64_t width) override {
    AMSKV_CHECK(store.dtype() == fresh.dtype(), "cuda backend: keep_tokens between different dtypes");
    AMSKV_CHECK(static_cast<int64_t>(picks.size()) == blocks * count, "cuda backend: keep_tokens got ", picks.size(),
                " picks for ", blocks, " blocks of ", count);
    if (blocks == 0 || count == 0) return;
    AMSKV_CHECK(store.size() >= (blocks - 1) * store_stride + count * width &&
                    fresh.size() >= blocks * fresh_tokens * width,
                "cuda backend: keep_tokens out of range");
    DeviceBuffer d_picks = alloc(DType::I32, blocks * count);
    upload(d_picks.span(), picks.data(), DType::I32);
    cuda::launch_keep_tokens(store.raw(), store_stride, fresh.raw(), fresh_tokens, ptr<const int32_t>(d_picks.span()),
                             blocks, count, held, width, static_cast<int64_t>(dtype_size(store.dtype())), stream_);
  }
  void quantize_blocks(DeviceSpan dst, int64_t dst_stride, DeviceSpan scales, int64_t scale_stride, DeviceSpan src,
                       int64_t src_stride, int64_t tokens, int64_t width, int64_t blocks) override {
    need_type(dst, DType::I8, "quantize_blocks destination");
    need_type(scales, DType::F32, "quantize_blocks scales");
    if (blocks == 0 || tokens == 0) return;
    AMSKV_CHECK(dst.size() >= (blocks - 1) * dst_stride + tokens * width &&
                    scales.size() >= (blocks - 1) * scale_stride + tokens &&
                    src.size() >= (blocks - 1) * src_stride + tokens * width,
                "cuda backend: quantize_blocks out of range");
    cuda::launch_quantize_kv(src.raw(), src.dtype(), src_stride, ptr<int8_t>(dst), dst_stride, ptr<float>(scales),
                             scale_stride, tokens, width, blocks, stream_);
  }
  void fill_zero(DeviceSpan dst) override {
    if (!dst.empty()) AMSKV_CUDA_CHECK(cudaMemsetAsync(dst.raw(), 0, dst.bytes(), stream_));
  }
  MemoryInfo memory() const override {
    size_t free_bytes = 0, total = 0;
    AMSKV_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
    return {static_cast<int64_t>(free_bytes + alloc_->cached_bytes()), static_cast<int64_t>(total)};
  }
  int64_t peak_memory_bytes() const override { return static_cast<int64_t>(alloc_->peak_in_use_bytes()); }
  void reset_peak_memory() override { alloc_->reset_peak(); }
  void synchronize() override {
    not_recording("synchronize");
    AMSKV_CUDA_CHECK(cudaStreamSynchronize(stream_));
    check_recorded_gathers();
  }
  std::unique_ptr<OpTimer> make_timer() override { return std::make_unique<CudaTimer>(stream_); }

  // --- recorded steps ------------------------------------------------------------------------------------
  bool can_record_steps() const override { return true; }
  void begin_step(uint64_t key, bool keep) override {
    AMSKV_CHECK(!graphs_.recording(), "cuda backend: a step is already being recorded");
    // A kept step records a whole request, and an allocation while recording cannot empty the cache (queued
    // work may use its blocks): empty it now, so the recording has the memory a launched request would.
    if (keep) alloc_->trim();
    if (!gathers_unchecked_) fill_zero(flag_);  // recorded gathers raise it; read at the next wait
    graphs_.begin(stream_);
    alloc_->set_recording(true);
    step_key_ = key;
    keep_step_ = keep;
    if (keep) alloc_->begin_pool(key);  // its scratch stays reserved while it is kept
  }
  void end_step(uint64_t key) override {
    if (key != step_key_) {
      abort_step();
      fail("cuda backend: end_step of another step than the one recorded");
    }
    alloc_->set_recording(false);
    if (keep_step_) alloc_->end_pool();
    try {
      graphs_.end(stream_, key, keep_step_);
    } catch (...) {
      if (keep_step_) drop_step(key);  // nothing will replay it: its pool goes back to the cache
      throw;
    }
  }
  void abort_step() override {
    alloc_->set_recording(false);
    if (keep_step_) {
      alloc_->end_pool();
      alloc_->drop_pool(step_key_);
    }
    graphs_.abort(stream_);
  }
  bool replay_step(uint64_t key) override {
    if (!gathers_unchecked_) fill_zero(flag_);
    if (!graphs_.replay(stream_, key)) return false;
    gathers_unchecked_ = true;  // its gathers are checked at the next wait, as when it was recorded
    return true;
  }
  void drop_step(uint64_t key) noexcept override {
    graphs_.drop(stream_, key);
    alloc_->drop_pool(key);
  }

  // --- weights -------------------------------------------------------------------------------------------
  LinearWeight make_linear(const Tensor& weight, const Tensor* bias) override {
    AMSKV_CHECK(weight.ndim() == 2, "linear weight must be 2-D, got ", shape_str(weight.shape()));
    LinearWeight w;
    w.out = weight.dim(0);
    w.in = weight.dim(1);
    w.weight = constant(weight, compute_);
    if (bias) {
      w.bias = constant(*bias, DType::F32);
      if (compute_ != DType::F32) w.bias_compute = constant(*bias, compute_);
    }
    return w;
  }
  ConvWeight make_conv(const Tensor& weight, const Tensor* bias, int64_t pad) override {
    AMSKV_CHECK(weight.ndim() == 4, "conv weight must be 4-D, got ", shape_str(weight.shape()));
    ConvWeight c;
    c.cout = weight.dim(0), c.cin = weight.dim(1), c.kh = weight.dim(2), c.kw = weight.dim(3), c.pad = pad;
    if (bias) c.bias = constant(*bias, DType::F32);
    const int64_t taps = c.kh * c.kw, K9 = c.cin * taps;
    if (taps == 1) {
      // The PyTorch layout [cout][cin] is already the B operand of the product.
      c.packed = constant(weight, compute_);
      return c;
    }
    // k×k: [cout][K], the columns tap by tap (k = (ky·kw + kx)·cin + ci, the order of im2col's rows and of the
    // implicit-GEMM kernel's k steps). With a bias, K is rounded up past two more columns, which hold the
    // bias as a sum of two values of the compute type (the second, what the first rounded away), against
    // rows of ones that im2col appends to the columns: the product then writes (or accumulates onto) the
    // output directly, with no separate pass that first fills it with the bias.
    const int64_t K = bias ? conv_packed_k(K9) : K9;
    const Tensor w = weight.to_f32();
    Tensor packed = Tensor::zeros(DType::F32, {c.cout, K});
    float* pk = packed.mutable_data<float>();
    for (int64_t o = 0; o < c.cout; ++o)
      for (int64_t ci = 0; ci < c.cin; ++ci)
        for (int64_t t = 0; t < taps; ++t) pk[o * K + t * c.cin + ci] = w.data<float>()[(o * c.cin + ci) * taps + t];
    if (bias) {
      const Tensor b = bias->to_f32();
      for (int64_t o = 0; o < c.cout; ++o) {
        const float hi = round_to(b.data<float>()[o], compute_);
        pk[o * K + K9] = hi;
        pk[o * K + K9 + 1] = round_to(b.data<float>()[o] - hi, compute_);
      }
    }
    c.packed = constant(packed, compute_);
    return c;
  }

  // --- transformer ---------------------------------------------------------------------------------------
  void linear(DeviceSpan x, int64_t rows, const LinearWeight& w, DeviceSpan y, Activation act) override {
    need_type(x, compute_, "linear input");
    AMSKV_CHECK(x.size() >= rows * w.in && y.size() >= rows * w.out, "cuda linear: buffers too small");
    GemmCall c;
    c.trans_a = true;
    c.m = w.out, c.n = rows, c.k = w.in;
    c.a = w.weight.span().raw(), c.lda = w.in;
    c.b = x.raw(), c.ldb = w.in;
    c.d = y.raw(), c.ldd = w.out;
    c.ab_type = cuda_type(compute_);
    c.d_type = cuda_type(y.dtype());
    // A 16-bit output takes the bias in its own type (the epilogue's common case); float32 outputs a float32 one.
    const bool compute_bias = y.dtype() == compute_ && w.bias_compute.allocated();
    c.bias = w.bias.allocated() ? (compute_bias ? w.bias_compute.span().raw() : w.bias.span().raw()) : nullptr;
    c.bias_type = compute_bias ? cuda_type(compute_) : CUDA_R_32F;
    c.gelu_tanh = act == Activation::GeluTanh;
    gemm_->run(c);
  }
  void layer_norm_modulate(DeviceSpan x, int64_t rows, int64_t tokens, int64_t width, DeviceSpan scale,
                           DeviceSpan shift, int64_t mod_stride, DeviceSpan y) override {
    need_type(x, DType::F32, "layer norm input");
    cuda::launch_layer_norm_modulate(ptr<const float>(x), rows, tokens, width, ptr<const float>(scale),
                                     ptr<const float>(shift), mod_stride, y.raw(), y.dtype(), stream_);
  }
  void qk_norm_split(DeviceSpan qkv, int64_t rows, int64_t n, int64_t heads, int64_t head_dim, DeviceSpan tau,
                     DeviceSpan q, DeviceSpan k, DeviceSpan v) override {
    for (const DeviceSpan& s : {qkv, q, k, v}) need_type(s, compute_, "q/k/v");
    cuda::launch_qk_norm_split(qkv.raw(), compute_, rows, n, heads, head_dim, ptr<const float>(tau), q.raw(), k.raw(),
                               v.raw(), stream_);
  }
  void attention(DeviceSpan q, int64_t rows, int64_t heads, int64_t n, int64_t head_dim,
                 std::span<const AttentionSegment> segments, DeviceSpan out, double* segment_mass,
                 float* key_mass) override {
    need_type(q, compute_, "attention queries");
    need_type(out, compute_, "attention output");
    cuda::SegmentList list;
    for (const AttentionSegment& s : segments) {
      const bool int8 = s.dtype == DType::I8;
      AMSKV_CHECK(s.dtype == compute_ || (int8 && s.k_scale && s.v_scale), "cuda attention: K/V segments of ",
                  dtype_name(s.dtype));
      const size_t es = dtype_size(s.dtype);
      // Scales stored side by side in one slab are one segment to the kernel (fewer partial key tiles),
      // except when the per-segment mass is wanted.
      const int last = list.count - 1;
      if (!segment_mass && !key_mass && last >= 0 && list.head_stride[last] == s.head_stride &&
          (list.k_scale[last] != nullptr) == int8 &&
          static_cast<const char*>(list.k[last]) + list.tokens[last] * head_dim * es == s.k &&
          static_cast<const char*>(list.v[last]) + list.tokens[last] * head_dim * es == s.v &&
          (!int8 || (list.scale_stride[last] == s.scale_stride && list.k_scale[last] + list.tokens[last] == s.k_scale &&
                     list.v_scale[last] + list.tokens[last] == s.v_scale))) {
        list.tokens[last] += s.tokens;
        continue;
      }
      AMSKV_CHECK(list.count < cuda::kMaxSegments, "cuda attention: more than ", cuda::kMaxSegments, " segments");
      const int i = list.count++;
      list.k[i] = s.k, list.v[i] = s.v;
      list.tokens[i] = s.tokens, list.head_stride[i] = s.head_stride;
      list.k_scale[i] = int8 ? s.k_scale : nullptr, list.v_scale[i] = int8 ? s.v_scale : nullptr;
      list.scale_stride[i] = int8 ? s.scale_stride : 0;
    }
    if (!segment_mass && !key_mass) {
      cuda::launch_attention(q.raw(), compute_, rows, heads, n, head_dim, list, out.raw(), stream_);
      return;
    }
    // The analyses and H2O's accumulated attention: the warp-per-query kernel, which sees every probability.
    int64_t keys = 0;
    for (int i = 0; i < list.count; ++i) keys += list.tokens[i];
    DeviceBuffer mass, kmass;
    not_recording("attention with masses read on the host");
    if (segment_mass) mass = alloc(DType::F64, rows * heads * list.count);
    if (key_mass) kmass = alloc(DType::F32, rows * heads * keys);
    cuda::launch_attention_with_mass(q.raw(), compute_, rows, heads, n, head_dim, list, out.raw(),
                                     segment_mass ? ptr<double>(mass) : nullptr,
                                     key_mass ? ptr<float>(kmass) : nullptr, stream_);
    if (segment_mass) download(mass, segment_mass);
    if (key_mass) download(kmass, key_mass);
  }
  void gated_residual_add(DeviceSpan x, DeviceSpan branch, int64_t rows, int64_t tokens, int64_t width,
                          DeviceSpan gate, int64_t gate_stride) override {
    need_type(x, DType::F32, "residual");
    cuda::launch_gated_residual_add(ptr<float>(x), branch.raw(), branch.dtype(), rows, tokens, width,
                                    ptr<const float>(gate), gate_stride, stream_);
  }
  void gated_residual_layer_norm(DeviceSpan x, DeviceSpan branch, int64_t rows, int64_t tokens, int64_t width,
                                 DeviceSpan gate, int64_t gate_stride, DeviceSpan scale, DeviceSpan shift,
                                 int64_t mod_stride, DeviceSpan y) override {
    need_type(x, DType::F32, "residual");
    if (!cuda::launch_gated_residual_layer_norm(ptr<float>(x), branch.raw(), branch.dtype(), rows, tokens, width,
                                                ptr<const float>(gate), gate_stride, ptr<const float>(scale),
                                                ptr<const float>(shift), mod_stride, y.raw(), y.dtype(), stream_))
      Backend::gated_residual_layer_norm(x, branch, rows, tokens, width, gate, gate_stride, scale, shift, mod_stride, y);
  }
  void silu(DeviceSpan x, DeviceSpan y) override {
    need_type(x, DType::F32, "silu input");
    cuda::launch_silu(ptr<const float>(x), y.raw(), y.dtype(), x.size(), stream_);
  }
  void gather_rows(DeviceSpan table, int64_t width, DeviceSpan ids, DeviceSpan out) override {
    need_type(table, DType::F32, "gather table");
    need_type(ids, DType::I64, "gather ids");
    const bool recording = graphs_.recording();
    if (!recording) {
      check_recorded_gathers();  // before the flag is cleared for this one
      fill_zero(flag_);
    }
    cuda::launch_gather_rows(ptr<const float>(table), width, table.size() / width, ptr<const int64_t>(ids), ids.size(),
                             ptr<float>(out), ptr<int>(flag_), stream_);
    if (recording) {  // the ids are checked at the next wait for the device (download, synchronize)
      gathers_unchecked_ = true;
      return;
    }
    int bad = 0;
    download(flag_, &bad);
    AMSKV_CHECK(bad == 0, "gather: an id outside the table of ", table.size() / width, " rows");
  }
  void add_rows(DeviceSpan x, int64_t groups, DeviceSpan table) override {
    cuda::launch_add_rows(ptr<float>(x), groups, ptr<const float>(table), table.size(), stream_);
  }
  void transpose(DeviceSpan x, int64_t batch, int64_t a, int64_t b, DeviceSpan y) override {
    need_type(x, DType::F32, "transpose input");
    cuda::launch_transpose(ptr<const float>(x), batch, a, b, y.raw(), y.dtype(), stream_);
  }

  // --- guidance and tokens -------------------------------------------------------------------------------
  void cfg_blend(DeviceSpan logits, float t, DeviceSpan guided) override {
    cuda::launch_cfg_blend(ptr<const float>(logits), t, ptr<float>(guided), guided.size(), stream_);
  }
  void sample_tokens(DeviceSpan guided, int64_t batch, int64_t n, int64_t vocab, const TokenSampling& s,
                     uint64_t first_image, int scale, DeviceSpan tokens) override {
    need_type(tokens, DType::I64, "tokens");
    if (!s.image_base.empty()) need_type(s.image_base, DType::I64, "image base");
    cuda::launch_sample_tokens(ptr<float>(guided), batch, n, vocab, s.top_k, s.top_p, s.seed,
                               s.image_base.empty() ? nullptr : ptr<const int64_t>(s.image_base), first_image, scale,
                               ptr<int64_t>(tokens), stream_);
  }
  void soft_token_embedding(DeviceSpan masked, int64_t batch, int64_t n, int64_t vocab, double ratio, uint64_t seed,
                            uint64_t first_image, int scale, DeviceSpan codebook, int64_t dim, DeviceSpan h) override {
    // The visualisation-only soft path runs on the host: it draws one Gumbel number per vocabulary entry and
    // position, which the CPU code already does with the engine's generator.
    std::vector<float> lg(static_cast<size_t>(batch * n * vocab)), cb(static_cast<size_t>(vocab * dim)),
        out(static_cast<size_t>(batch * n * dim));
    download(masked.slice(0, batch * n * vocab), lg.data());
    download(codebook.slice(0, vocab * dim), cb.data());
    CpuBackend host;
    host.soft_token_embedding(DeviceSpan(lg.data(), DType::F32, batch * n * vocab), batch, n, vocab, ratio, seed,
                              first_image, scale, DeviceSpan(cb.data(), DType::F32, vocab * dim), dim,
                              DeviceSpan(out.data(), DType::F32, batch * n * dim));
    upload(h.slice(0, batch * n * dim), out.data(), DType::F32);
  }

  // --- latent --------------------------------------------------------------------------------------------
  void bicubic_resize(DeviceSpan x, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w,
                      DeviceSpan y) override {
    cuda::launch_bicubic(ptr<const float>(x), planes, in_h, in_w, out_h, out_w, ptr<float>(y), stream_);
  }
  void area_resize(DeviceSpan x, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w,
                   DeviceSpan y) override {
    cuda::launch_area(ptr<const float>(x), planes, in_h, in_w, out_h, out_w, ptr<float>(y), stream_);
  }
  void nearest_upsample2x(DeviceSpan x, int64_t planes, int64_t h, int64_t w, DeviceSpan y, int64_t pad) override {
    need_activation(x, "upsample input");
    cuda::launch_nearest_upsample2x(x.raw(), x.dtype(), planes, h, w, y.raw(), y.dtype(), pad, stream_);
  }
  void accumulate(DeviceSpan y, float a, DeviceSpan x1, float b, DeviceSpan x2) override {
    cuda::launch_accumulate(ptr<float>(y), a, ptr<const float>(x1), b, ptr<const float>(x2), y.size(), stream_);
  }

  // --- decoder -------------------------------------------------------------------------------------------
  void group_norm(DeviceSpan x, DeviceSpan y, int64_t batch, int64_t channels, int64_t h, int64_t w, int64_t pad,
                  int64_t groups, DeviceSpan gamma, DeviceSpan beta, float eps, bool fuse_silu) override {
    const auto [scale, shift] = group_norm_affine(x, batch, channels, h * w, groups, gamma, beta, eps);
    cuda::launch_group_norm_apply(x.raw(), x.dtype(), batch, channels, h, w, pad, ptr<const float>(scale),
                                  ptr<const float>(shift), fuse_silu, y.raw(), y.dtype(), stream_);
  }
  void group_norm_conv2d(DeviceSpan x, int64_t batch, int64_t h, int64_t w, int64_t groups, DeviceSpan gamma,
                         DeviceSpan beta, float eps, bool fuse_silu, const ConvWeight& c, DeviceSpan scratch,
                         DeviceSpan y, bool accumulate) override {
    if (c.kh * c.kw == 1) {  // a 1×1 product reads its input as it is: nothing to fold the norm into
      Backend::group_norm_conv2d(x, batch, h, w, groups, gamma, beta, eps, fuse_silu, c, scratch, y, accumulate);
      return;
    }
    // The columns are made from x directly, normalised as they are read: the normalised input never
    // reaches memory (the separate pass wrote it and im2col read it back).
    need_activation(y, "conv output");
    const auto [scale, shift] = group_norm_affine(x, batch, c.cin, h * w, groups, gamma, beta, eps);
    const int64_t oh = h + 2 * c.pad - c.kh + 1, ow = w + 2 * c.pad - c.kw + 1, K = c.packed.size() / c.cout;
    AMSKV_CHECK(oh > 0 && ow > 0, "conv2d: invalid input size ", h, "x", w);
    if (direct_conv(x, batch, h, w, 0, c, ptr<const float>(scale), ptr<const float>(shift), fuse_silu, y, accumulate))
      return;
    DeviceBuffer cols = alloc(compute_, batch * K * oh * ow);
    cuda::launch_im2col_group_norm(x.raw(), x.dtype(), batch, c.cin, h, w, c.kh, c.kw, c.pad, K,
                                   ptr<const float>(scale), ptr<const float>(shift), fuse_silu, cols.span().raw(),
                                   compute_, stream_);
    columns_product(cols, batch, oh * ow, c, y, accumulate);
  }
  void upsample2x_conv2d(DeviceSpan x, int64_t batch, int64_t h, int64_t w, const ConvWeight& c, DeviceSpan scratch,
                         DeviceSpan y) override {
    // The implicit GEMM's layout kernel reads x at half the resolution: the upsampled input (four times x,
    // written by one kernel and read back by the next before) never reaches memory.
    need_activation(y, "conv output");
    if (implicit_conv(x, batch, 2 * h, 2 * w, 0, /*nearest2x=*/true, c, nullptr, nullptr, false, y, false)) return;
    Backend::upsample2x_conv2d(x, batch, h, w, c, scratch, y);
  }
  void conv2d(DeviceSpan x, int64_t batch, int64_t h, int64_t w, const ConvWeight& c, DeviceSpan y, bool padded_input,
              bool accumulate) override {
    need_activation(y, "conv output");
    const int64_t oh = h + 2 * c.pad - c.kh + 1, ow = w + 2 * c.pad - c.kw + 1;
    AMSKV_CHECK(oh > 0 && ow > 0, "conv2d: invalid input size ", h, "x", w);
    const float* bias = bias_of(c);
    GemmCall g;
    g.ab_type = cuda_type(compute_);
    g.d_type = cuda_type(y.dtype());
    g.batch = static_cast<int>(batch);
    if (c.kh == 1 && c.kw == 1 && c.pad == 0) {
      // y_b [cout, P] = W [cout, cin] · x_b [cin, P], accumulated onto the bias (or onto y).
      const int64_t P = h * w;
      DeviceBuffer converted;
      DeviceSpan xin = x;
      if (x.dtype() != compute_) {
        converted = alloc(compute_, batch * c.cin * P);
        cuda::launch_convert(x.raw(), x.dtype(), converted.span().raw(), compute_, batch * c.cin * P, stream_);
        xin = converted;
      }
      // A 16-bit y takes the bias rounded to its type, then the product onto it: two roundings, far below
      // the reference's own (its fp16 product plus bias).
      cuda::launch_bias_planes(y.raw(), y.dtype(), batch, c.cout, P, bias, accumulate, stream_);
      g.m = P, g.n = c.cout, g.k = c.cin;
      g.a = xin.raw(), g.lda = P, g.stride_a = c.cin * P;
      g.b = c.packed.span().raw(), g.ldb = c.cin, g.stride_b = 0;
      g.d = y.raw(), g.ldd = P, g.stride_d = c.cout * P;
      g.beta = 1.0f;
      gemm_->run(g);
      return;
    }
    const int64_t Q = oh * ow, K = c.packed.size() / c.cout;
    if (direct_conv(x, batch, h, w, padded_input ? c.pad : 0, c, nullptr, nullptr, false, y, accumulate)) return;
    // Otherwise the columns of every image (im2col, in the compute dtype; with a bias, rows of ones up to
    // the packed K), then one product per image in fp32, written to y or accumulated onto it.
    DeviceBuffer cols = alloc(compute_, batch * K * Q);
    cuda::launch_im2col(x.raw(), x.dtype(), batch, c.cin, h, w, padded_input ? c.pad : 0, c.kh, c.kw, c.pad, K,
                        cols.span().raw(), compute_, stream_);
    columns_product(cols, batch, Q, c, y, accumulate);
  }
  void spatial_attention(DeviceSpan qkv, int64_t batch, int64_t channels, int64_t positions,
                         DeviceSpan out) override {
    const int64_t C = channels, N = positions;
    DeviceBuffer converted;
    DeviceSpan in = qkv;
    if (qkv.dtype() != compute_) {
      converted = alloc(compute_, batch * 3 * C * N);
      cuda::launch_convert(qkv.raw(), qkv.dtype(), converted.span().raw(), compute_, batch * 3 * C * N, stream_);
      in = converted;
    }
    const size_t es = dtype_size(compute_);
    const char* base = static_cast<const char*>(in.raw());
    // s [i][j] = (q_i · k_j) / sqrt(C): column-major S'(j, i) = Σ_c K(j, c) Q(i, c).
    DeviceBuffer scores = alloc(DType::F32, batch * N * N);
    GemmCall g;
    g.ab_type = cuda_type(compute_);
    g.batch = static_cast<int>(batch);
    g.trans_a = false, g.trans_b = true;
    g.m = N, g.n = N, g.k = C;
    g.a = base + C * N * es, g.lda = N, g.stride_a = 3 * C * N;
    g.b = base, g.ldb = N, g.stride_b = 3 * C * N;
    g.d = scores.span().raw(), g.ldd = N, g.stride_d = N * N, g.d_type = CUDA_R_32F;
    g.alpha = static_cast<float>(std::pow(static_cast<double>(C), -0.5));
    gemm_->run(g);
    DeviceBuffer probs = alloc(compute_, batch * N * N);
    cuda::launch_softmax_rows(ptr<const float>(scores), batch * N, N, 1.0f, probs.span().raw(), compute_, stream_);
    // out [c][i] = Σ_j v[c][j] p[i][j]: column-major out'(i, c) = Σ_j P(i, j) V(j, c).
    GemmCall o;
    o.ab_type = cuda_type(compute_);
    o.batch = static_cast<int>(batch);
    o.trans_a = true, o.trans_b = false;
    o.m = N, o.n = C, o.k = N;
    o.a = probs.span().raw(), o.lda = N, o.stride_a = N * N;
    o.b = base + 2 * C * N * es, o.ldb = N, o.stride_b = 3 * C * N;
    o.d = out.raw(), o.ldd = N, o.stride_d = C * N, o.d_type = cuda_type(out.dtype());
    gemm_->run(o);
  }
  void to_unit_range(DeviceSpan x) override { cuda::launch_to_unit_range(ptr<float>(x), x.size(), stream_); }

  // --- analysis ------------------------------------------------------------------------------------------
  void key_similarity_into(const AttentionSegment& prev, int64_t prev_side, const AttentionSegment& cur,
                           int64_t cur_side, int64_t rows, int64_t heads, int64_t head_dim, DeviceSpan out) override {
    AMSKV_CHECK(prev.tokens == prev_side * prev_side && cur.tokens == cur_side * cur_side,
                "similarity: segment sizes do not match the scale sides");
    need_type(out, DType::F64, "key similarity");
    DeviceBuffer partial = alloc(DType::F64, rows * heads);
    const bool int8 = prev.dtype == DType::I8;
    AMSKV_CHECK(cur.dtype == compute_ && (prev.dtype == compute_ || (int8 && prev.k_scale)),
                "similarity: keys of ", dtype_name(prev.dtype), " and ", dtype_name(cur.dtype));
    cuda::launch_key_similarity(prev.k, int8 ? prev.k_scale : nullptr, prev.scale_stride, cur.k, cur.dtype, rows * heads,
                                prev.head_stride, cur.head_stride, prev_side, cur_side, head_dim, ptr<double>(partial),
                                stream_);
    cuda::launch_mean_of(ptr<const double>(partial), rows * heads, static_cast<double>(rows * heads * cur.tokens),
                         ptr<double>(out), stream_);
  }

 private:
  // Per (image, channel) scale and shift that apply GroupNorm: y = x·scale + shift.
  std::pair<DeviceBuffer, DeviceBuffer> group_norm_affine(DeviceSpan x, int64_t batch, int64_t channels, int64_t hw,
                                                          int64_t groups, DeviceSpan gamma, DeviceSpan beta,
                                                          float eps) {
    need_activation(x, "group norm input");
    AMSKV_CHECK(groups > 0 && channels % groups == 0, "group_norm: ", channels, " channels are not divisible into ",
                groups, " groups");
    DeviceBuffer scale = alloc(DType::F32, batch * channels), shift = alloc(DType::F32, batch * channels);
    const int64_t parts = cuda::group_norm_parts(batch, groups, channels / groups * hw);
    DeviceBuffer partial = alloc(DType::F64, 2 * batch * groups * parts);
    cuda::launch_group_norm_stats(x.raw(), x.dtype(), batch, channels, hw, groups,
                                  gamma.empty() ? nullptr : ptr<const float>(gamma),
                                  beta.empty() ? nullptr : ptr<const float>(beta), eps, ptr<double>(partial),
                                  ptr<float>(scale), ptr<float>(shift), stream_);
    return {std::move(scale), std::move(shift)};
  }

  const float* bias_of(const ConvWeight& c) const { return c.bias.allocated() ? ptr<const float>(c.bias) : nullptr; }

  // The convolutions that need no columns: the implicit GEMM (wide planes, 16-bit compute) and the few-output
  // kernel; false when neither takes this one. With `scale` and `shift` (per plane) an unpadded x is
  // normalised (then SiLU'd when `silu`) as it is read.
  bool direct_conv(DeviceSpan x, int64_t batch, int64_t h, int64_t w, int64_t in_pad, const ConvWeight& c,
                   const float* scale, const float* shift, bool silu, DeviceSpan y, bool accumulate) {
    if (implicit_conv(x, batch, h, w, in_pad, /*nearest2x=*/false, c, scale, shift, silu, y, accumulate)) return true;
    const int64_t K = c.packed.size() / c.cout;
    // The few-output kernel stores float32 float4s.
    if (activation_type(x.dtype()) && y.dtype() == DType::F32 &&
        reinterpret_cast<uintptr_t>(y.raw()) % 16 == 0 &&
        cuda::conv3x3_few_outputs_fits(c.cin, c.cout, h, w, c.kh, c.kw, c.pad, K)) {
      cuda::launch_conv3x3_few_outputs(x.raw(), x.dtype(), batch, c.cin, h, w, in_pad, c.packed.span().raw(), compute_,
                                       K, c.cout, bias_of(c), scale, shift, silu, ptr<float>(y), accumulate, stream_);
      return true;
    }
    return false;
  }
  // The implicit GEMM for an output of h × w, when it takes this one (false otherwise): x as for direct_conv,
  // or with `nearest2x` unpadded planes of h/2 × w/2 that it upsamples as it reads them. Its kernels store
  // pairs of values (mma.sync: float2, or two 16-bit values, for which 8-byte alignment is more than they need)
  // or bulk-copy 16-byte aligned rows (wgmma, the only one for 64-wide planes).
  bool implicit_conv(DeviceSpan x, int64_t batch, int64_t h, int64_t w, int64_t in_pad, bool nearest2x,
                     const ConvWeight& c, const float* scale, const float* shift, bool silu, DeviceSpan y,
                     bool accumulate) {
    const int64_t K = c.packed.size() / c.cout;
    if (!activation_type(x.dtype()) ||
        !cuda::conv3x3_implicit_fits(c.cin, c.cout, h, w, c.kh, c.kw, c.pad, K, compute_) ||
        reinterpret_cast<uintptr_t>(y.raw()) % cuda::conv3x3_implicit_output_alignment(h, w) != 0)
      return false;
    const DeviceBuffer xs = alloc(compute_, cuda::conv3x3_implicit_scratch(batch, c.cin, h, w));
    cuda::launch_conv3x3_implicit(x.raw(), x.dtype(), batch, c.cin, h, w, in_pad, nearest2x, xs.span().raw(),
                                  c.packed.span().raw(), compute_, K, c.cout, bias_of(c), scale, shift, silu,
                                  y.raw(), y.dtype(), accumulate, stream_);
    return true;
  }

  // y_b [cout, Q] (fp32 accumulation, y's type) = W [cout, K] · cols_b [K, Q] for every image, written or
  // accumulated onto y.
  void columns_product(const DeviceBuffer& cols, int64_t batch, int64_t Q, const ConvWeight& c, DeviceSpan y,
                       bool accumulate) {
    const int64_t K = c.packed.size() / c.cout;
    GemmCall g;
    g.ab_type = cuda_type(compute_);
    g.d_type = cuda_type(y.dtype());
    g.batch = static_cast<int>(batch);
    g.m = Q, g.n = c.cout, g.k = K;
    g.a = cols.span().raw(), g.lda = Q, g.stride_a = K * Q;
    g.b = c.packed.span().raw(), g.ldb = K, g.stride_b = 0;
    g.d = y.raw(), g.ldd = Q, g.stride_d = c.cout * Q;
    g.beta = accumulate ? 1.0f : 0.0f;
    gemm_->run(g);
  }

  void not_recording(const char* what) const {
    AMSKV_CHECK(!graphs_.recording(), "cuda backend: ", what, " inside a recorded step (it waits for the device or "
                "hands it host memory)");
  }
  // The flag of gathers made inside recorded steps, read once the device has caught up.
  void check_recorded_gathers() {
    if (!gathers_unchecked_) return;
    gathers_unchecked_ = false;
    int bad = 0;
    AMSKV_CUDA_CHECK(cudaMemcpyAsync(&bad, flag_.span().raw(), sizeof bad, cudaMemcpyDeviceToHost, stream_));
    AMSKV_CUDA_CHECK(cudaStreamSynchronize(stream_));
    AMSKV_CHECK(bad == 0, "gather: an id outside its table (in a recorded step)");
  }

  static void need_type(DeviceSpan s, DType t, const char* what) {
    AMSKV_CHECK(s.dtype() == t, "cuda backend: ", what, " must be ", dtype_name(t), ", got ", dtype_name(s.dtype()));
  }
  // The decoder's activations: float32, or the compute dtype in which this backend keeps them.
  bool activation_type(DType t) const { return t == DType::F32 || t == compute_; }
  void need_activation(DeviceSpan s, const char* what) const {
    AMSKV_CHECK(activation_type(s.dtype()), "cuda backend: ", what, " must be f32 or ", dtype_name(compute_), ", got ",
                dtype_name(s.dtype()));
  }

  int device_;
  DType compute_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  std::shared_ptr<DeviceAllocator> alloc_;
  std::unique_ptr<cuda::Gemm> gemm_;
  DeviceBuffer flag_;
  bool gathers_unchecked_ = false;
  uint64_t step_key_ = 0;  // the step being recorded, and whether it is kept
  bool keep_step_ = false;
  cuda::StepGraphs graphs_;
};

}  // namespace

bool cuda_device_available() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return count > 0;
}

std::unique_ptr<Backend> make_cuda_backend(int device, DType compute) {
  AMSKV_CHECK(compute == DType::BF16 || compute == DType::F16 || compute == DType::F32,
              "cuda backend: compute type ", dtype_name(compute), " (bf16, f16 or f32)");
  AMSKV_CHECK(cuda_device_available(), "--device cuda: no usable CUDA device (driver missing, or no GPU on this machine)");
  return std::make_unique<CudaBackend>(device, compute);
}

}  // namespace amskv::backend
