#include "backend/cpu/cpu_backend.h"

#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <new>
#include <string>

#include "backend/cpu/activations.h"
#include "backend/cpu/attention.h"
#include "backend/cpu/conv2d.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/group_norm.h"
#include "backend/cpu/key_similarity.h"
#include "backend/cpu/kv_int8_ops.h"
#include "backend/cpu/resample.h"
#include "backend/cpu/sampling.h"
#include "backend/cpu/spatial_attention.h"
#include "backend/cpu/transformer_ops.h"

namespace amskv::backend {

namespace {

// Every CPU buffer holds float32 except token ids; a span of another type is a caller's error.
float* f32(DeviceSpan s, const char* what) {
  AMSKV_CHECK(s.dtype() == DType::F32, "cpu backend: ", what, " must be F32, got ", dtype_name(s.dtype()));
  return static_cast<float*>(s.raw());
}

int64_t* i64(DeviceSpan s, const char* what) {
  AMSKV_CHECK(s.dtype() == DType::I64, "cpu backend: ", what, " must be I64, got ", dtype_name(s.dtype()));
  return static_cast<int64_t*>(s.raw());
}

void need(DeviceSpan s, int64_t count, const char* what) {
  AMSKV_CHECK(s.size() >= count, "cpu backend: ", what, " holds ", s.size(), " elements, ", count, " needed");
}

// Wraps host memory owned by a tensor without copying (the tensor's owner, e.g. a checkpoint's memory map,
// stays alive as long as the buffer).
DeviceBuffer wrap(const Tensor& t) {
  auto keep = std::make_shared<Tensor>(t);
  return DeviceBuffer(DeviceSpan(const_cast<void*>(t.raw()), t.dtype(), t.numel()), keep);
}

class CpuTimer final : public OpTimer {
 public:
  void start() override { t0_ = std::chrono::steady_clock::now(); }
  void stop() override {
    total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }
  double seconds() override { return total_; }

 private:
  std::chrono::steady_clock::time_point t0_;
  double total_ = 0.0;
};

}  // namespace

CpuBackend::CpuBackend(int threads) : threads_(threads) {
  if (threads > 0) omp_set_num_threads(threads);
}

std::string CpuBackend::name() const {
  return cat("cpu (", threads_ > 0 ? threads_ : omp_get_max_threads(), " threads, f32)");
}

DeviceBuffer CpuBackend::alloc(DType dtype, int64_t count) {
  AMSKV_CHECK(count >= 0, "cpu backend: negative allocation of ", count, " elements");
  try {
    const Tensor t = Tensor::zeros(dtype, {count});
    return wrap(t);
  } catch (const std::bad_alloc&) {
    fail("out of host memory: cannot allocate ", static_cast<double>(count) * dtype_size(dtype) / (1 << 20),
         " MiB");
  }
}

void CpuBackend::upload(DeviceSpan dst, const void* host, DType host_dtype) {
  convert_values(host, host_dtype, dst.raw(), dst.dtype(), dst.size());
}

void CpuBackend::download(DeviceSpan src, void* host) { std::memcpy(host, src.raw(), src.bytes()); }

DeviceBuffer CpuBackend::constant(const Tensor& host, DType dtype) {
  if (host.dtype() == dtype) return wrap(host);
  DeviceBuffer b = alloc(dtype, host.numel());
  upload(b, host.raw(), host.dtype());
  return b;
}

void CpuBackend::copy(DeviceSpan dst, DeviceSpan src) {
  AMSKV_CHECK(dst.dtype() == src.dtype() && dst.size() == src.size(), "cpu backend: copy of ", src.size(), " ",
              dtype_name(src.dtype()), " into ", dst.size(), " ", dtype_name(dst.dtype()));
  std::memmove(dst.raw(), src.raw(), src.bytes());
}

void CpuBackend::copy_blocks(DeviceSpan dst, int64_t dst_stride, DeviceSpan src, int64_t src_stride, int64_t block,
                             int64_t count) {
  AMSKV_CHECK(dst.dtype() == src.dtype(), "cpu backend: copy_blocks between different dtypes");
  if (count == 0 || block == 0) return;
  need(dst, (count - 1) * dst_stride + block, "copy_blocks destination");
  need(src, (count - 1) * src_stride + block, "copy_blocks source");
  const size_t es = dtype_size(src.dtype());
  auto* d = static_cast<char*>(dst.raw());
  const auto* s = static_cast<const char*>(src.raw());
  for (int64_t i = 0; i < count; ++i)
    std::memcpy(d + static_cast<size_t>(i * dst_stride) * es, s + static_cast<size_t>(i * src_stride) * es,
                static_cast<size_t>(block) * es);
}

void CpuBackend::quantize_blocks(DeviceSpan dst, int64_t dst_stride, DeviceSpan scales, int64_t scale_stride,
                                 DeviceSpan src, int64_t src_stride, int64_t tokens, int64_t width, int64_t blocks) {
  AMSKV_CHECK(dst.dtype() == DType::I8, "cpu backend: quantize_blocks writes I8, got ", dtype_name(dst.dtype()));
  if (blocks == 0 || tokens == 0) return;
  need(dst, (blocks - 1) * dst_stride + tokens * width, "quantize_blocks destination");
  need(scales, (blocks - 1) * scale_stride + tokens, "quantize_blocks scales");
  need(src, (blocks - 1) * src_stride + tokens * width, "quantize_blocks source");
  cpu::quantize_blocks(f32(src, "quantize_blocks source"), src_stride, static_cast<int8_t*>(dst.raw()), dst_stride,
                       f32(scales, "quantize_blocks scales"), scale_stride, tokens, width, blocks);
}

void CpuBackend::keep_tokens(DeviceSpan store, int64_t store_stride, DeviceSpan fresh, int64_t fresh_tokens,
                             const std::vector<int32_t>& picks, int64_t blocks, int64_t count, int64_t held,
                             int64_t width) {
  AMSKV_CHECK(store.dtype() == fresh.dtype(), "cpu backend: keep_tokens between different dtypes");
  AMSKV_CHECK(static_cast<int64_t>(picks.size()) == blocks * count, "cpu backend: keep_tokens got ", picks.size(),
              " picks for ", blocks, " blocks of ", count);
  if (blocks == 0 || count == 0) return;
  need(store, (blocks - 1) * store_stride + count * width, "keep_tokens store");
  need(fresh, blocks * fresh_tokens * width, "keep_tokens fresh tokens");
  const size_t es = dtype_size(store.dtype()), bytes = static_cast<size_t>(width) * es;
  auto* s = static_cast<char*>(store.raw());
  const auto* f = static_cast<const char*>(fresh.raw());
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t j = 0; j < count; ++j) {  // in order: a source at or after j is read before it is overwritten
      const int64_t src = picks[static_cast<size_t>(b * count + j)];
      char* dst = s + static_cast<size_t>(b * store_stride + j * width) * es;
      if (src < held) {
        if (src != j) std::memmove(dst, s + static_cast<size_t>(b * store_stride + src * width) * es, bytes);
      } else {
        std::memcpy(dst, f + static_cast<size_t>((b * fresh_tokens + src - held) * width) * es, bytes);
      }
    }
}

void CpuBackend::fill_zero(DeviceSpan dst) { std::memset(dst.raw(), 0, dst.bytes()); }

MemoryInfo CpuBackend::memory() const {
  MemoryInfo m;
  m.total_bytes = static_cast<int64_t>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGE_SIZE);
  m.free_bytes = m.total_bytes;
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") {
      m.free_bytes = kib * 1024;
      break;
    }
  }
  return m;
}

int64_t CpuBackend::peak_memory_bytes() const {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;
}

std::unique_ptr<OpTimer> CpuBackend::make_timer() { return std::make_unique<CpuTimer>(); }

LinearWeight CpuBackend::make_linear(const Tensor& weight, const Tensor* bias) {
  AMSKV_CHECK(weight.ndim() == 2, "linear weight must be 2-D, got ", shape_str(weight.shape()));
  LinearWeight w;
  w.out = weight.dim(0);
  w.in = weight.dim(1);
  w.weight = constant(weight, DType::F32);
  if (bias) {
    AMSKV_CHECK(bias->numel() == w.out, "linear bias has ", bias->numel(), " values for ", w.out, " outputs");
    w.bias = constant(*bias, DType::F32);
  }
  return w;
}

ConvWeight CpuBackend::make_conv(const Tensor& weight, const Tensor* bias, int64_t pad) {
  AMSKV_CHECK(weight.ndim() == 4, "conv weight must be 4-D, got ", shape_str(weight.shape()));
  ConvWeight c;
  c.cout = weight.dim(0), c.cin = weight.dim(1), c.kh = weight.dim(2), c.kw = weight.dim(3), c.pad = pad;
  // The plain weight (1x1 and im2col lowerings) followed, for larger kernels, by the per-tap regrouping of
  // the shifted-GEMM lowering.
  const Tensor w32 = weight.to_f32();
  const int64_t n = w32.numel();
  const bool taps = c.kh * c.kw > 1;
  c.packed = alloc(DType::F32, taps ? 2 * n : n);
  float* p = f32(c.packed, "conv weight");
  std::copy(w32.data<float>(), w32.data<float>() + n, p);
  if (taps) {
    const auto t = cpu::pack_conv_taps(w32.data<float>(), c.cout, c.cin, c.kh, c.kw);
    std::copy(t.begin(), t.end(), p + n);
  }
  if (bias) c.bias = constant(*bias, DType::F32);
  return c;
}

void CpuBackend::linear(DeviceSpan x, int64_t rows, const LinearWeight& w, DeviceSpan y, Activation act) {
  need(x, rows * w.in, "linear input");
  need(y, rows * w.out, "linear output");
  float* out = f32(y, "linear output");
  cpu::linear(f32(x, "linear input"), rows, w.in, f32(w.weight, "linear weight"),
              w.bias.allocated() ? f32(w.bias, "linear bias") : nullptr, w.out, out);
  if (act == Activation::GeluTanh) cpu::gelu_tanh(out, rows * w.out);
}

void CpuBackend::layer_norm_modulate(DeviceSpan x, int64_t rows, int64_t tokens, int64_t width, DeviceSpan scale,
                                     DeviceSpan shift, int64_t mod_stride, DeviceSpan y) {
  need(x, rows * tokens * width, "layer norm input");
  need(y, rows * tokens * width, "layer norm output");
  need(scale, (rows - 1) * mod_stride + width, "modulation scale");
  need(shift, (rows - 1) * mod_stride + width, "modulation shift");
  cpu::layer_norm_modulate(f32(x, "layer norm input"), rows, tokens, width, f32(scale, "scale"), f32(shift, "shift"),
                           mod_stride, f32(y, "layer norm output"));
}

void CpuBackend::qk_norm_split(DeviceSpan qkv, int64_t rows, int64_t n, int64_t heads, int64_t head_dim,
                               DeviceSpan tau, DeviceSpan q, DeviceSpan k, DeviceSpan v) {
  const int64_t count = rows * n * heads * head_dim;
  need(qkv, 3 * count, "qkv");
  need(q, count, "q"), need(k, count, "k"), need(v, count, "v"), need(tau, heads, "tau");
  cpu::split_qkv_l2norm(f32(qkv, "qkv"), rows, n, heads, head_dim, f32(tau, "tau"), f32(q, "q"), f32(k, "k"),
                        f32(v, "v"));
}

void CpuBackend::attention(DeviceSpan q, int64_t rows, int64_t heads, int64_t n, int64_t head_dim,
                           std::span<const AttentionSegment> segments, DeviceSpan out, double* segment_mass,
                           float* key_mass) {
  need(q, rows * heads * n * head_dim, "attention queries");
  need(out, rows * heads * n * head_dim, "attention output");
  cpu::segmented_attention(f32(q, "attention queries"), rows, heads, n, head_dim, segments,
                           f32(out, "attention output"), segment_mass, key_mass);
}

void CpuBackend::gated_residual_add(DeviceSpan x, DeviceSpan branch, int64_t rows, int64_t tokens, int64_t width,
                                    DeviceSpan gate, int64_t gate_stride) {
  need(x, rows * tokens * width, "residual");
  need(branch, rows * tokens * width, "branch");
  need(gate, (rows - 1) * gate_stride + width, "gate");
  cpu::gated_residual_add(f32(x, "residual"), f32(branch, "branch"), rows, tokens, width, f32(gate, "gate"),
                          gate_stride);
}

void CpuBackend::silu(DeviceSpan x, DeviceSpan y) {
  need(y, x.size(), "silu output");
  cpu::silu(f32(x, "silu input"), f32(y, "silu output"), x.size());
}

void CpuBackend::gather_rows(DeviceSpan table, int64_t width, DeviceSpan ids, DeviceSpan out) {
  const float* t = f32(table, "gather table");
  const int64_t* id = i64(ids, "gather ids");
  float* o = f32(out, "gather output");
  const int64_t rows = table.size() / width;
  need(out, ids.size() * width, "gather output");
  for (int64_t i = 0; i < ids.size(); ++i) {
    AMSKV_CHECK(id[i] >= 0 && id[i] < rows, "gather: id ", id[i], " outside a table of ", rows, " rows");
    std::copy(t + id[i] * width, t + (id[i] + 1) * width, o + i * width);
  }
}

void CpuBackend::add_rows(DeviceSpan x, int64_t groups, DeviceSpan table) {
  const int64_t n = table.size();
  need(x, groups * n, "add_rows target");
  float* p = f32(x, "add_rows target");
  const float* t = f32(table, "add_rows table");
#pragma omp parallel for schedule(static) if (groups * n >= (int64_t{1} << 16))
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t i = 0; i < n; ++i) p[g * n + i] += t[i];
}

void CpuBackend::transpose(DeviceSpan x, int64_t batch, int64_t a, int64_t b, DeviceSpan y) {
  need(x, batch * a * b, "transpose input");
  need(y, batch * a * b, "transpose output");
  const float* s = f32(x, "transpose input");
  float* d = f32(y, "transpose output");
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t i = 0; i < a; ++i)
      for (int64_t j = 0; j < b; ++j) d[(n * b + j) * a + i] = s[(n * a + i) * b + j];
}

void CpuBackend::cfg_blend(DeviceSpan logits, float t, DeviceSpan guided) {
  const int64_t half = guided.size();
  need(logits, 2 * half, "logits");
  const float* c = f32(logits, "logits");
  const float* u = c + half;
  float* g = f32(guided, "guided logits");
#pragma omp parallel for simd schedule(static) if (half >= (int64_t{1} << 18))
  for (int64_t i = 0; i < half; ++i) g[i] = (1.0f + t) * c[i] - t * u[i];
}

void CpuBackend::sample_tokens(DeviceSpan guided, int64_t batch, int64_t n, int64_t vocab, const TokenSampling& s,
                               uint64_t first_image, int scale, DeviceSpan tokens) {
  need(guided, batch * n * vocab, "guided logits");
  need(tokens, batch * n, "tokens");
  float* g = f32(guided, "guided logits");
  int64_t* idx = i64(tokens, "tokens");
  if (!s.image_base.empty()) {
    need(s.image_base, 1, "image base");
    first_image += static_cast<uint64_t>(*i64(s.image_base, "image base"));
  }
  cpu::mask_top_k_top_p(g, batch * n, vocab, s.top_k, s.top_p);
#pragma omp parallel for schedule(dynamic)
  for (int64_t b = 0; b < batch; ++b)
    cpu::sample_tokens(g + b * n * vocab, n, vocab, s.seed, first_image + static_cast<uint64_t>(b), scale, idx + b * n);
}

void CpuBackend::soft_token_embedding(DeviceSpan masked, int64_t batch, int64_t n, int64_t vocab, double ratio,
                                      uint64_t seed, uint64_t first_image, int scale, DeviceSpan codebook,
                                      int64_t dim, DeviceSpan h) {
  need(masked, batch * n * vocab, "masked logits");
  need(codebook, vocab * dim, "codebook");
  need(h, batch * n * dim, "soft embedding");
  const float* lg = f32(masked, "masked logits");
  const float* cb = f32(codebook, "codebook");
  float* out = f32(h, "soft embedding");
  std::vector<float> soft(static_cast<size_t>(n * vocab));
  for (int64_t b = 0; b < batch; ++b) {
    cpu::gumbel_soft_weights(lg + b * n * vocab, n, vocab, ratio, seed, first_image + static_cast<uint64_t>(b), scale,
                             soft.data());
    cpu::gemm(false, false, n, dim, vocab, 1.0f, soft.data(), vocab, cb, dim, 0.0f, out + b * n * dim, dim);
  }
}

void CpuBackend::bicubic_resize(DeviceSpan x, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h,
                                int64_t out_w, DeviceSpan y) {
  need(x, planes * in_h * in_w, "bicubic input");
  need(y, planes * out_h * out_w, "bicubic output");
  cpu::bicubic_resize(f32(x, "bicubic input"), planes, in_h, in_w, out_h, out_w, f32(y, "bicubic output"));
}

void CpuBackend::area_resize(DeviceSpan x, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w,
                             DeviceSpan y) {
  need(x, planes * in_h * in_w, "area input");
  need(y, planes * out_h * out_w, "area output");
  cpu::area_resize(f32(x, "area input"), planes, in_h, in_w, out_h, out_w, f32(y, "area output"));
}

void CpuBackend::nearest_upsample2x(DeviceSpan x, int64_t planes, int64_t h, int64_t w, DeviceSpan y, int64_t pad) {
  need(x, planes * h * w, "upsample input");
  need(y, planes * (2 * h + 2 * pad) * (2 * w + 2 * pad), "upsample output");
  cpu::nearest_upsample2x(f32(x, "upsample input"), planes, h, w, f32(y, "upsample output"), pad);
}

void CpuBackend::accumulate(DeviceSpan y, float a, DeviceSpan x1, float b, DeviceSpan x2) {
  const int64_t n = y.size();
  need(x1, n, "accumulate input"), need(x2, n, "accumulate input");
  float* d = f32(y, "accumulate target");
  const float* p = f32(x1, "accumulate input");
  const float* q = f32(x2, "accumulate input");
#pragma omp parallel for simd schedule(static) if (n >= (int64_t{1} << 18))
  for (int64_t i = 0; i < n; ++i) d[i] += p[i] * a + q[i] * b;
}

void CpuBackend::group_norm(DeviceSpan x, DeviceSpan y, int64_t batch, int64_t channels, int64_t h, int64_t w,
                            int64_t pad, int64_t groups, DeviceSpan gamma, DeviceSpan beta, float eps, bool fuse_silu) {
  need(x, batch * channels * h * w, "group norm input");
  need(y, batch * channels * (h + 2 * pad) * (w + 2 * pad), "group norm output");
  const float* g = gamma.empty() ? nullptr : f32(gamma, "gamma");
  const float* bt = beta.empty() ? nullptr : f32(beta, "beta");
  if (pad > 0)
    cpu::group_norm_padded(f32(x, "group norm input"), f32(y, "group norm output"), batch, channels, h, w, pad, groups,
                           g, bt, eps, fuse_silu);
  else
    cpu::group_norm(f32(x, "group norm input"), f32(y, "group norm output"), batch, channels, h * w, groups, g, bt, eps,
                    fuse_silu);
}

void CpuBackend::conv2d(DeviceSpan x, int64_t batch, int64_t h, int64_t w, const ConvWeight& c, DeviceSpan y,
                        bool padded_input, bool accumulate) {
  const int64_t in = padded_input ? (h + 2 * c.pad) * (w + 2 * c.pad) : h * w;
  const int64_t oh = cpu::conv2d_out_size(h, c.kh, c.pad), ow = cpu::conv2d_out_size(w, c.kw, c.pad);
  need(x, batch * c.cin * in, "conv input");
  need(y, batch * c.cout * oh * ow, "conv output");
  cpu::Conv2dParams p;
  const float* packed = f32(c.packed, "conv weight");
  p.weight = packed;
  p.taps = c.kh * c.kw > 1 ? packed + c.cout * c.cin * c.kh * c.kw : nullptr;
  p.bias = c.bias.allocated() ? f32(c.bias, "conv bias") : nullptr;
  p.cin = c.cin, p.cout = c.cout, p.kh = c.kh, p.kw = c.kw, p.pad = c.pad;
  if (padded_input)
    cpu::conv2d_padded(f32(x, "conv input"), batch, h, w, p, f32(y, "conv output"), accumulate);
  else
    cpu::conv2d(f32(x, "conv input"), batch, h, w, p, f32(y, "conv output"), accumulate);
}

void CpuBackend::spatial_attention(DeviceSpan qkv, int64_t batch, int64_t channels, int64_t positions,
                                   DeviceSpan out) {
  const int64_t per = channels * positions;
  need(qkv, batch * 3 * per, "attention qkv");
  need(out, batch * per, "attention output");
  std::vector<float> scores(static_cast<size_t>(positions * positions));
  for (int64_t b = 0; b < batch; ++b)
    cpu::spatial_attention(f32(qkv, "attention qkv") + b * 3 * per, channels, positions,
                           f32(out, "attention output") + b * per, scores.data());
}

void CpuBackend::to_unit_range(DeviceSpan x) {
  float* p = f32(x, "image");
  const int64_t n = x.size();
  for (int64_t i = 0; i < n; ++i) p[i] = (std::clamp(p[i], -1.0f, 1.0f) + 1.0f) * 0.5f;
}

void CpuBackend::key_similarity_into(const AttentionSegment& previous, int64_t previous_side,
                                     const AttentionSegment& current, int64_t current_side, int64_t rows,
                                     int64_t heads, int64_t head_dim, DeviceSpan out) {
  AMSKV_CHECK(out.dtype() == DType::F64 && out.size() >= 1, "cpu backend: key similarity goes into one F64");
  *static_cast<double*>(out.raw()) =
      cpu::inter_scale_key_similarity(previous, previous_side, current, current_side, rows, heads, head_dim);
}

}  // namespace amskv::backend
