// Operation conformance (in the spirit of llama.cpp's test-backend-ops): every backend operation on random
// inputs of several shapes, on every backend present, against the CPU backend. Inputs that the device takes
// in its compute dtype are rounded to that dtype for the CPU too, so that the comparison sees the kernels'
// own errors (summation order, rounded outputs), not the inputs' rounding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backends_under_test.h"
#include "core/dtype.h"

namespace amskv::test {
namespace {

using backend::Activation;
using backend::DeviceBuffer;
using backend::DeviceSpan;

class BackendOps : public ::testing::TestWithParam<BackendUnderTest> {
 protected:
  struct Pair {
    DeviceBuffer cpu, dev;
    int64_t size() const { return cpu.size(); }
  };

  void SetUp() override {
    dev_ = make_backend_under_test(GetParam());
    T_ = GetParam().compute;
  }

  std::vector<float> random(int64_t n, float lo = -1.0f, float hi = 1.0f) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = d(rng_);
    return v;
  }

  // Rounds values through `t` (what the device will hold).
  static std::vector<float> rounded(std::vector<float> v, DType t) {
    if (t == DType::F32) return v;
    std::vector<uint16_t> tmp(v.size());
    convert_values(v.data(), DType::F32, tmp.data(), t, static_cast<int64_t>(v.size()));
    convert_values(tmp.data(), t, v.data(), DType::F32, static_cast<int64_t>(v.size()));
    return v;
  }

  // The same values on both backends: float32 on the CPU, `dev_type` on the device.
  Pair put(const std::vector<float>& host, DType dev_type) {
    const auto values = rounded(host, dev_type);
    Pair p{cpu_.alloc(DType::F32, static_cast<int64_t>(values.size())),
           dev_->alloc(dev_type, static_cast<int64_t>(values.size()))};
    cpu_.upload(p.cpu, values.data(), DType::F32);
    dev_->upload(p.dev, values.data(), DType::F32);
    return p;
  }
  Pair put_compute(const std::vector<float>& host) { return put(host, T_); }
  Pair put_f32(const std::vector<float>& host) { return put(host, DType::F32); }
  Pair zeros(int64_t n, DType dev_type) {
    Pair p{cpu_.alloc(DType::F32, n), dev_->alloc(dev_type, n)};
    cpu_.fill_zero(p.cpu);
    dev_->fill_zero(p.dev);
    return p;
  }

  std::vector<float> get(backend::Backend& b, DeviceSpan s) {
    std::vector<unsigned char> raw(s.bytes());
    b.download(s, raw.data());
    std::vector<float> out(static_cast<size_t>(s.size()));
    convert_values(raw.data(), s.dtype(), out.data(), DType::F32, s.size());
    return out;
  }

  // max |dev − cpu| / max |cpu| <= tol (and nothing non-finite on the device).
  void expect_close(const Pair& p, double tol, const std::string& what) { expect_close(p.cpu, p.dev, tol, what); }
  void expect_close(DeviceSpan cpu, DeviceSpan dev, double tol, const std::string& what) {
    const auto ref = get(cpu_, cpu), got = get(*dev_, dev);
    double err = 0.0, mag = 0.0;
    for (size_t i = 0; i < ref.size(); ++i) {
      ASSERT_TRUE(std::isfinite(got[i])) << what << ": element " << i << " is " << got[i];
      err = std::max(err, std::fabs(static_cast<double>(got[i]) - ref[i]));
      mag = std::max(mag, std::fabs(static_cast<double>(ref[i])));
    }
    EXPECT_LE(err / std::max(mag, 1e-30), tol) << what << " (max abs err " << err << ", max |ref| " << mag << ")";
  }

  // What an 8-bit store holds for src: `tokens` vectors of `width` values at the start of each of `blocks`
  // blocks (capacity · width apart), written by b's own quantize_blocks into a slab of the same layout.
  struct Int8Slab {
    DeviceBuffer q, scale;
  };
  static Int8Slab quantized(backend::Backend& b, DeviceSpan src, int64_t blocks, int64_t capacity, int64_t tokens,
                            int64_t width) {
    Int8Slab s{b.alloc(DType::I8, blocks * capacity * width), b.alloc(DType::F32, blocks * capacity)};
    b.quantize_blocks(s.q, capacity * width, s.scale, capacity, src, capacity * width, tokens, width, blocks);
    return s;
  }
  // Tokens [first, first + tokens) of 8-bit keys k and values v as one attention segment.
  static AttentionSegment int8_segment(const Int8Slab& k, const Int8Slab& v, int64_t first, int64_t tokens,
                                       int64_t capacity, int64_t width) {
    return {k.q.slice(first * width).raw(),
            v.q.slice(first * width).raw(),
            tokens,
            capacity * width,
            DType::I8,
            static_cast<const float*>(k.scale.slice(first).raw()),
            static_cast<const float*>(v.scale.slice(first).raw()),
            capacity};
  }

  double tol() const { return GetParam().rel_tol; }
  // The decoder's activation types on the device: float32, and the one it keeps them in (16-bit on a 16-bit
  // GPU backend).
  std::vector<DType> activation_types() const {
    const DType a = dev_->decoder_activation_dtype();
    return a == DType::F32 ? std::vector<DType>{DType::F32} : std::vector<DType>{DType::F32, a};
  }
  // A decoder output of type t: its rounding on top of the kernel's tolerance.
  double conv_tol(DType t) const { return t == DType::F32 ? std::max(tol(), 1e-5) : 2 * std::max(tol(), out_tol()); }
  // Element-wise float32 work: only summation order differs.
  double f32_tol() const { return 1e-5; }
  // Outputs stored in the compute dtype carry its rounding.
  double out_tol() const { return T_ == DType::F32 ? 1e-5 : (T_ == DType::BF16 ? 8e-3 : 1e-3); }

  backend::CpuBackend cpu_;
  std::unique_ptr<backend::Backend> dev_;
  DType T_ = DType::F32;
  std::mt19937 rng_{1234};
};

TEST_P(BackendOps, MemoryRoundTripAndBlockCopies) {
  const auto v = random(1000);
  Pair a = put_compute(v);
  Pair b = zeros(1000, T_);
  // 7 blocks of 50 elements, strides 100 and 120.
  cpu_.copy_blocks(b.cpu, 120, a.cpu, 100, 50, 7);
  dev_->copy_blocks(b.dev, 120, a.dev, 100, 50, 7);
  expect_close(b, 0.0, "copy_blocks");
  Pair c = zeros(1000, T_);
  cpu_.copy(c.cpu, a.cpu);
  dev_->copy(c.dev, a.dev);
  expect_close(c, 0.0, "copy");
}

// h2o's in-place compaction: stored tokens move towards the front, fresh ones are appended from the transient
// buffer; width 256 makes the CUDA kernel stage a block in several chunks.
TEST_P(BackendOps, KeepTokensCompactsInPlace) {
  for (const int64_t width : {64, 256}) {
    const int64_t blocks = 37, capacity = 50, held = 20, fresh_tokens = 12, count = 25;
    Pair store = put_compute(random(blocks * capacity * width));
    Pair fresh = put_compute(random(blocks * fresh_tokens * width));
    std::vector<int32_t> picks;
    for (int64_t b = 0; b < blocks; ++b) {
      std::vector<int32_t> all(held + fresh_tokens);
      for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int32_t>(i);
      std::shuffle(all.begin(), all.end(), rng_);
      all.resize(count);
      std::sort(all.begin(), all.end());
      picks.insert(picks.end(), all.begin(), all.end());
    }
    cpu_.keep_tokens(store.cpu, capacity * width, fresh.cpu, fresh_tokens, picks, blocks, count, held, width);
    dev_->keep_tokens(store.dev, capacity * width, fresh.dev, fresh_tokens, picks, blocks, count, held, width);
    expect_close(store, 0.0, cat("keep_tokens width ", width));
  }
}

// The 8-bit KV store's write rounds alike everywhere: the same values give the same integers and scales.
TEST_P(BackendOps, QuantizeBlocksLikeTheCpu) {
  const int64_t blocks = 37, tokens = 13, width = 64, capacity = 20;
  auto v = random(blocks * tokens * width);
  for (int64_t d = 0; d < width; ++d) v[static_cast<size_t>(5 * width + d)] = 0.0f;  // a zero vector
  v[static_cast<size_t>(7 * width + 3)] = std::nanf("");  // a defined integer for a NaN
  Pair src = put_compute(v);
  Pair scales = zeros(blocks * capacity, DType::F32);
  DeviceBuffer cq = cpu_.alloc(DType::I8, blocks * capacity * width), dq = dev_->alloc(DType::I8, cq.size());
  cpu_.fill_zero(cq);
  dev_->fill_zero(dq);
  cpu_.quantize_blocks(cq, capacity * width, scales.cpu, capacity, src.cpu, tokens * width, tokens, width, blocks);
  dev_->quantize_blocks(dq, capacity * width, scales.dev, capacity, src.dev, tokens * width, tokens, width, blocks);
  std::vector<int8_t> a(static_cast<size_t>(cq.size())), b(a.size());
  cpu_.download(cq, a.data());
  dev_->download(dq, b.data());
  EXPECT_EQ(a, b);
  expect_close(scales, 0.0, "quantize_blocks scales");
}

TEST_P(BackendOps, LinearWithBiasAndGelu) {
  for (auto [rows, in, out] : {std::tuple{7, 64, 96}, std::tuple{300, 256, 384}, std::tuple{1, 128, 512}}) {
    const auto w = rounded(random(out * in, -0.2f, 0.2f), T_), b = random(out);
    const Tensor wt = Tensor::from_vector<float>({out, in}, w), bt = Tensor::from_vector<float>({out}, b);
    const auto cw = cpu_.make_linear(wt, &bt), dw = dev_->make_linear(wt, &bt);
    Pair x = put_compute(random(rows * in));
    for (bool gelu : {false, true})
      for (DType y_type : {DType::F32, T_}) {
        Pair y = zeros(rows * out, y_type);
        const Activation act = gelu ? Activation::GeluTanh : Activation::None;
        cpu_.linear(x.cpu, rows, cw, y.cpu, act);
        dev_->linear(x.dev, rows, dw, y.dev, act);
        expect_close(y, std::max(tol(), y_type == DType::F32 ? 0.0 : out_tol()),
                     cat("linear ", rows, "x", in, "->", out, gelu ? " gelu" : "", " into ", dtype_name(y_type)));
      }
  }
}

// Widths that take the block-per-token kernel (multiples of four up to 4096: one warp; d16's 1024; d30's 1920;
// d36's 2304, 576 float4s in five warps' 640 slots; 4096, the largest) and two that do not (190; 4100, past it).
constexpr std::tuple<int, int, int> kNormShapes[] = {{4, 37, 192}, {3, 5, 190},  {2, 3, 1024}, {2, 3, 1920},
                                                     {2, 3, 2304}, {1, 2, 4096}, {1, 2, 4100}};

TEST_P(BackendOps, LayerNormModulate) {
  for (auto [rows, tokens, width] : kNormShapes) {
    Pair x = put_f32(random(rows * tokens * width, -3.0f, 3.0f));
    Pair mod = put_f32(random(rows * 6 * width));
    Pair y = zeros(rows * tokens * width, T_);
    cpu_.layer_norm_modulate(x.cpu, rows, tokens, width, mod.cpu.slice(2 * width), mod.cpu.slice(4 * width),
                             6 * width, y.cpu);
    dev_->layer_norm_modulate(x.dev, rows, tokens, width, mod.dev.slice(2 * width), mod.dev.slice(4 * width),
                              6 * width, y.dev);
    expect_close(y, out_tol(), cat("layer_norm_modulate width ", width));
  }
}

// The residual step fused with the next norm: the fused kernel's widths (with either branch type) and one
// that takes the composition; x and the normalised output both compared.
TEST_P(BackendOps, GatedResidualLayerNorm) {
  for (auto [rows, tokens, width] : kNormShapes)
    for (DType bt : {DType::F32, T_}) {
      Pair x = put_f32(random(rows * tokens * width, -3.0f, 3.0f));
      Pair br = put(random(rows * tokens * width), bt);
      Pair mod = put_f32(random(rows * 6 * width));
      Pair y = zeros(rows * tokens * width, T_);
      cpu_.gated_residual_layer_norm(x.cpu, br.cpu, rows, tokens, width, mod.cpu.slice(width), 6 * width,
                                     mod.cpu.slice(3 * width), mod.cpu.slice(5 * width), 6 * width, y.cpu);
      dev_->gated_residual_layer_norm(x.dev, br.dev, rows, tokens, width, mod.dev.slice(width), 6 * width,
                                      mod.dev.slice(3 * width), mod.dev.slice(5 * width), 6 * width, y.dev);
      expect_close(x, f32_tol(), cat("gated_residual_layer_norm x, width ", width));
      expect_close(y, out_tol(), cat("gated_residual_layer_norm y, width ", width));
    }
}

// Head widths of the vectorised kernel (64, 128; half a warp per head) and of the general one (32); an even
// and an odd number of heads in all (a warp whose second half has none).
TEST_P(BackendOps, QkNormSplit) {
  for (auto [dh, heads] : {std::pair<int64_t, int64_t>{64, 2}, {128, 2}, {32, 2}, {64, 1}}) {
    const int64_t rows = 3, n = 25;
    Pair qkv = put_compute(random(rows * n * 3 * heads * dh));
    const std::vector<float> taus{3.5f, 17.0f};
    Pair tau = put_f32(std::vector<float>(taus.begin(), taus.begin() + heads));
    Pair q = zeros(rows * n * heads * dh, T_), k = zeros(rows * n * heads * dh, T_),
         v = zeros(rows * n * heads * dh, T_);
    cpu_.qk_norm_split(qkv.cpu, rows, n, heads, dh, tau.cpu, q.cpu, k.cpu, v.cpu);
    dev_->qk_norm_split(qkv.dev, rows, n, heads, dh, tau.dev, q.dev, k.dev, v.dev);
    expect_close(q, out_tol(), cat("q, head width ", dh, ", heads ", heads));
    expect_close(k, out_tol(), cat("k, head width ", dh, ", heads ", heads));
    expect_close(v, 0.0, cat("v, head width ", dh, ", heads ", heads));
  }
}

// Segments of different lengths in one slab with a larger capacity (head stride), plus the current scale;
// side by side (the CUDA backend joins such segments into one) and one token apart (it cannot: a key tile
// then spans several segments, and the list's end falls inside its last tile).
TEST_P(BackendOps, AttentionOverSegments) {
  const int64_t heads = 3, dh = 64;
  for (auto [rows, n, lengths] : {std::tuple{2, 16, std::vector<int64_t>{1, 4, 9, 16}},
                                  std::tuple{3, 100, std::vector<int64_t>{1, 4, 9, 16, 25, 36, 64, 100}},
                                  std::tuple{1, 70, std::vector<int64_t>{70}},
                                  // key tiles that end exactly where a segment ends
                                  std::tuple{2, 64, std::vector<int64_t>{1, 63, 64}},
                                  // enough (row, head) pairs for 128-query blocks (two query fragments per
                                  // warp) on a device of up to 192 multiprocessors: part of one block (a warp's
                                  // second fragment empty, then partly valid), and two
                                  std::tuple{128, 100, std::vector<int64_t>{1, 4, 9, 16, 25, 36, 64, 100}},
                                  std::tuple{128, 120, std::vector<int64_t>{1, 4, 9, 16, 25, 36, 64, 120}},
                                  std::tuple{64, 256, std::vector<int64_t>{1, 4, 9, 16, 25, 36, 64, 100, 169, 256}},
                                  // many one-token segments in the first key tile
                                  std::tuple{2, 30, std::vector<int64_t>{1, 1, 1, 1, 4, 9, 16, 30}}}) {
    int64_t stored = 0;
    for (size_t i = 0; i + 1 < lengths.size(); ++i) stored += lengths[i];
    const auto gaps = static_cast<int64_t>(lengths.size()) - 1;  // one token after each stored segment, at most
    const int64_t capacity = stored + gaps + 5;  // room left over, like a reserved slab
    // Unit-norm keys and tau-scaled queries, like the model's.
    auto unit = [&](int64_t count, float scale) {
      auto v = random(count * dh);
      for (int64_t i = 0; i < count; ++i) {
        double s = 0;
        for (int64_t d = 0; d < dh; ++d) s += v[i * dh + d] * v[i * dh + d];
        for (int64_t d = 0; d < dh; ++d) v[i * dh + d] = static_cast<float>(v[i * dh + d] * scale / std::sqrt(s));
      }
      return v;
    };
    Pair slab_k = put_compute(unit(rows * heads * capacity, 1.0f)), slab_v = put_compute(random(rows * heads * capacity * dh));
    Pair cur_k = put_compute(unit(rows * heads * n, 1.0f)), cur_v = put_compute(random(rows * heads * n * dh));
    Pair q = put_compute(unit(rows * heads * n, 12.0f));
    // The stored scales as an 8-bit store holds them too: integers and per-token scales, written by each
    // backend's own quantize_blocks from the same values.
    struct Int8Store {
      Int8Slab k, v;
    };
    const int64_t blocks = rows * heads;
    const Int8Store cpu8{quantized(cpu_, slab_k.cpu, blocks, capacity, stored + gaps, dh),
                         quantized(cpu_, slab_v.cpu, blocks, capacity, stored + gaps, dh)};
    const Int8Store dev8{quantized(*dev_, slab_k.dev, blocks, capacity, stored + gaps, dh),
                         quantized(*dev_, slab_v.dev, blocks, capacity, stored + gaps, dh)};
    // Stores: 16-bit, 8-bit, or 8-bit and 16-bit segments alternating (a list of both kinds).
    enum class Store { Bits16, Bits8, Mixed };
    auto segments = [&](const Pair& sk, const Pair& sv, const Pair& ck, const Pair& cv, bool cpu, const Int8Store* q8,
                        Store store, int64_t gap) {
      std::vector<AttentionSegment> s;
      int64_t off = 0;
      const DeviceSpan k = cpu ? sk.cpu.span() : sk.dev.span(), v = cpu ? sv.cpu.span() : sv.dev.span();
      for (size_t i = 0; i + 1 < lengths.size(); ++i) {
        if (store == Store::Bits8 || (store == Store::Mixed && i % 2 == 0))
          s.push_back(int8_segment(q8->k, q8->v, off, lengths[i], capacity, dh));
        else
          s.push_back({k.slice(off * dh).raw(), v.slice(off * dh).raw(), lengths[i], capacity * dh, k.dtype()});
        off += lengths[i] + gap;
      }
      const DeviceSpan kk = cpu ? ck.cpu.span() : ck.dev.span(), vv = cpu ? cv.cpu.span() : cv.dev.span();
      s.push_back({kk.raw(), vv.raw(), n, n * dh, kk.dtype()});
      return s;
    };
    const int64_t keys = stored + n;
    for (int64_t gap : {0, 1})
    for (Store store : {Store::Bits16, Store::Bits8, Store::Mixed})
    for (bool with_mass : {false, true}) {
      const auto cs = segments(slab_k, slab_v, cur_k, cur_v, true, &cpu8, store, gap);
      const auto ds = segments(slab_k, slab_v, cur_k, cur_v, false, &dev8, store, gap);
      Pair out = zeros(rows * heads * n * dh, T_);
      std::vector<double> cm(rows * heads * cs.size()), dm(cm.size());
      std::vector<float> ck(rows * heads * keys), dk(ck.size());
      cpu_.attention(q.cpu, rows, heads, n, dh, cs, out.cpu, with_mass ? cm.data() : nullptr,
                     with_mass ? ck.data() : nullptr);
      dev_->attention(q.dev, rows, heads, n, dh, ds, out.dev, with_mass ? dm.data() : nullptr,
                      with_mass ? dk.data() : nullptr);
      if (with_mass) {
        for (size_t i = 0; i < ck.size(); ++i)
          EXPECT_NEAR(dk[i], ck[i], T_ == DType::F32 ? 1e-4 : 0.05 * std::max(1.0f, ck[i])) << "key mass " << i;
      }
      expect_close(out, std::max(out_tol(), T_ == DType::F32 ? 1e-5 : 2e-2),
                   cat("attention rows ", rows, " n ", n, " segments ", cs.size(), gap ? " apart" : " side by side",
                       with_mass ? " with mass" : "",
                       store == Store::Bits8 ? " (8-bit store)" : store == Store::Mixed ? " (mixed store)" : ""));
      if (with_mass) {
        for (size_t i = 0; i < cm.size(); ++i)
          EXPECT_NEAR(dm[i], cm[i], T_ == DType::F32 ? 1e-4 : 0.05 * std::max(1.0, cm[i])) << "mass " << i;
      }
    }
  }
}

// Every valid key scores -12 (queries 12·u, keys -u for one unit u per (row, head)) while a key tile's rows
// past a segment's end hold zeros, which would score 0: a key let through the mask would take almost all
// of the weight and pull the output towards zero. Segments end inside tiles, at a tile's end, and after one
// token; the last case is a single one-token tile (the first scale).
TEST_P(BackendOps, AttentionMasksKeysPastASegmentsEnd) {
  const int64_t heads = 3, dh = 64;
  for (auto [rows, n, lengths] : {std::tuple{2, 70, std::vector<int64_t>{1, 63, 64, 65, 70}},
                                  std::tuple{128, 100, std::vector<int64_t>{1, 4, 9, 100}},
                                  std::tuple{1, 1, std::vector<int64_t>{1}}}) {
    int64_t keys = 0;
    for (int64_t len : lengths) keys += len;
    const auto dirs = random(rows * heads * dh);
    std::vector<float> qh(rows * heads * n * dh), kh(rows * heads * keys * dh);
    for (int64_t rh = 0; rh < rows * heads; ++rh) {
      double norm = 0;
      for (int64_t d = 0; d < dh; ++d) norm += dirs[rh * dh + d] * dirs[rh * dh + d];
      for (int64_t d = 0; d < dh; ++d) {
        const float u = static_cast<float>(dirs[rh * dh + d] / std::sqrt(norm));
        for (int64_t i = 0; i < n; ++i) qh[(rh * n + i) * dh + d] = 12.0f * u;
        for (int64_t j = 0; j < keys; ++j) kh[(rh * keys + j) * dh + d] = -u;
      }
    }
    Pair q = put_compute(qh), k = put_compute(kh), v = put_compute(random(rows * heads * keys * dh, 0.5f, 1.5f));
    auto segments = [&](const DeviceSpan& ks, const DeviceSpan& vs) {
      std::vector<AttentionSegment> out;
      int64_t off = 0;
      for (int64_t len : lengths) {  // each segment in its own slab of `keys` tokens per (row, head)
        out.push_back({ks.slice(off * dh).raw(), vs.slice(off * dh).raw(), len, keys * dh, ks.dtype()});
        off += len;
      }
      return out;
    };
    Pair out = zeros(rows * heads * n * dh, T_);
    cpu_.attention(q.cpu, rows, heads, n, dh, segments(k.cpu.span(), v.cpu.span()), out.cpu, nullptr, nullptr);
    dev_->attention(q.dev, rows, heads, n, dh, segments(k.dev.span(), v.dev.span()), out.dev, nullptr, nullptr);
    expect_close(out, std::max(out_tol(), T_ == DType::F32 ? 1e-5 : 2e-2),
                 cat("masked attention rows ", rows, " n ", n, " segments ", lengths.size()));
  }
}

TEST_P(BackendOps, ElementwiseOps) {
  const int64_t rows = 4, tokens = 9;
  // gated residual (branch in both dtypes; a width of 4-element accesses and one of single ones)
  for (int64_t width : {80, 78})
    for (DType bt : {DType::F32, T_}) {
      Pair x = put_f32(random(rows * tokens * width));
      Pair br = put(random(rows * tokens * width), bt);
      Pair gate = put_f32(random(rows * 6 * width));
      cpu_.gated_residual_add(x.cpu, br.cpu, rows, tokens, width, gate.cpu.slice(width), 6 * width);
      dev_->gated_residual_add(x.dev, br.dev, rows, tokens, width, gate.dev.slice(width), 6 * width);
      expect_close(x, f32_tol(), cat("gated_residual_add width ", width));
    }
  {
    Pair x = put_f32(random(1000, -6, 6));
    Pair y = zeros(1000, T_);
    cpu_.silu(x.cpu, y.cpu);
    dev_->silu(x.dev, y.dev);
    expect_close(y, out_tol(), "silu");
  }
  {
    Pair table = put_f32(random(50 * 16));
    const std::vector<int64_t> ids = {3, 0, 49, 7, 7};
    DeviceBuffer ci = cpu_.alloc(DType::I64, 5), di = dev_->alloc(DType::I64, 5);
    cpu_.upload(ci, ids.data(), DType::I64);
    dev_->upload(di, ids.data(), DType::I64);
    Pair out = zeros(5 * 16, DType::F32);
    cpu_.gather_rows(table.cpu, 16, ci, out.cpu);
    dev_->gather_rows(table.dev, 16, di, out.dev);
    expect_close(out, 0.0, "gather_rows");
    const std::vector<int64_t> bad = {50};
    dev_->upload(di.slice(0, 1), bad.data(), DType::I64);
    EXPECT_THROW(dev_->gather_rows(table.dev, 16, di.slice(0, 1), out.dev), Error);
  }
  {
    Pair x = put_f32(random(3 * 7 * 11));
    Pair t = put_f32(random(7 * 11));
    cpu_.add_rows(x.cpu, 3, t.cpu);
    dev_->add_rows(x.dev, 3, t.dev);
    expect_close(x, f32_tol(), "add_rows");
    Pair y = zeros(3 * 7 * 11, T_);
    cpu_.transpose(x.cpu, 3, 7, 11, y.cpu);
    dev_->transpose(x.dev, 3, 7, 11, y.dev);
    expect_close(y, out_tol(), "transpose");
  }
  {
    Pair lg = put_f32(random(2 * 3 * 40, -5, 5));
    Pair g = zeros(3 * 40, DType::F32);
    cpu_.cfg_blend(lg.cpu, 2.5f, g.cpu);
    dev_->cfg_blend(lg.dev, 2.5f, g.dev);
    expect_close(g, f32_tol(), "cfg_blend");
  }
  {
    Pair y = put_f32(random(500)), a = put_f32(random(500)), b = put_f32(random(500));
    cpu_.accumulate(y.cpu, 0.5f, a.cpu, 0.5f, b.cpu);
    dev_->accumulate(y.dev, 0.5f, a.dev, 0.5f, b.dev);
    expect_close(y, f32_tol(), "accumulate");
    cpu_.to_unit_range(y.cpu);
    dev_->to_unit_range(y.dev);
    expect_close(y, f32_tol(), "to_unit_range");
  }
}

// Same seed, same logits: the same tokens (the draw is the engine's counter-based generator on both).
// Also VAR's vocabulary and settings; vocabularies that leave the device's per-warp parts partly filled or
// empty (300, 1000) and the largest it takes (12288); top-k at the vocabulary's size; logits already at -inf
// (every tenth); and logits on a coarse grid: many ties at the k-th value, all kept. Ties go without top-p: at
// its threshold the CPU removes tied entries one by one in vocabulary order, the GPU all of them or none.
TEST_P(BackendOps, SamplingDrawsTheSameTokens) {
  const int64_t batch = 3, n = 50;
  enum class Logits { Uniform, Ties, SomeInfinite };
  struct Case {
    int64_t vocab, k;
    double p;
    Logits kind;
  };
  for (auto [vocab, k, p, kind] :
       {Case{512, 0, 0.0, Logits::Uniform}, Case{512, 40, 0.0, Logits::Uniform}, Case{512, 0, 0.9, Logits::Uniform},
        Case{512, 100, 0.8, Logits::Uniform}, Case{512, 1, 0.0, Logits::Uniform},
        Case{4096, 900, 0.95, Logits::Uniform}, Case{300, 0, 0.9, Logits::Uniform},
        Case{1000, 900, 0.95, Logits::Uniform}, Case{512, 512, 0.9, Logits::Uniform},
        Case{12288, 900, 0.95, Logits::Uniform}, Case{1000, 900, 0.95, Logits::SomeInfinite},
        Case{4096, 900, 0.0, Logits::Ties}, Case{512, 40, 0.0, Logits::Ties}}) {
    auto logits = random(batch * n * vocab, -4.0f, 4.0f);
    if (kind == Logits::Ties)
      for (float& l : logits) l = std::round(l * 4.0f) / 4.0f;
    if (kind == Logits::SomeInfinite)
      for (size_t i = 3; i < logits.size(); i += 10) logits[i] = -std::numeric_limits<float>::infinity();
    const char* what = kind == Logits::Ties ? " (ties)" : kind == Logits::SomeInfinite ? " (some -inf)" : "";
    Pair g = put_f32(logits);
    DeviceBuffer ct = cpu_.alloc(DType::I64, batch * n), dt = dev_->alloc(DType::I64, batch * n);
    const backend::TokenSampling s{k, p, 77, {}};
    cpu_.sample_tokens(g.cpu, batch, n, vocab, s, 5, 3, ct);
    dev_->sample_tokens(g.dev, batch, n, vocab, s, 5, 3, dt);
    std::vector<int64_t> a(batch * n), b(batch * n);
    cpu_.download(ct, a.data());
    dev_->download(dt, b.data());
    int64_t differ = 0;
    for (size_t i = 0; i < a.size(); ++i) differ += a[i] != b[i];
    EXPECT_LE(differ, 1) << "vocab " << vocab << " top-k " << k << " top-p " << p << what << ": "
                         << differ << " of " << a.size() << " tokens differ";
    // The masks agree entry by entry (kept values are untouched).
    const auto mc = get(cpu_, g.cpu), md = get(*dev_, g.dev);
    int64_t mask_differ = 0;
    for (size_t i = 0; i < mc.size(); ++i) mask_differ += !(mc[i] == md[i] || (std::isinf(mc[i]) && std::isinf(md[i])));
    EXPECT_LE(mask_differ, 2) << "vocab " << vocab << " top-k " << k << " top-p " << p << what
                              << ": masks differ at " << mask_differ << " entries";
  }
}

// The first image's number read from backend memory (replayed steps) draws what the same number given as an
// argument draws: image 5 as 2 + 3 on the CPU and as 4 + 1 on the other backend.
TEST_P(BackendOps, SamplingReadsTheImageBase) {
  const int64_t batch = 2, n = 30, vocab = 256;
  const auto logits = random(batch * n * vocab, -4.0f, 4.0f);
  Pair g = put_f32(logits), plain = put_f32(logits);
  const int64_t cpu_base = 2, dev_base = 4;
  DeviceBuffer cb = cpu_.alloc(DType::I64, 1), db = dev_->alloc(DType::I64, 1);
  cpu_.upload(cb, &cpu_base, DType::I64);
  dev_->upload(db, &dev_base, DType::I64);
  DeviceBuffer ct = cpu_.alloc(DType::I64, batch * n), dt = dev_->alloc(DType::I64, batch * n),
               pt = cpu_.alloc(DType::I64, batch * n);
  backend::TokenSampling s{50, 0.9, 77, {}};
  cpu_.sample_tokens(plain.cpu, batch, n, vocab, s, 5, 2, pt);
  s.image_base = cb;
  cpu_.sample_tokens(g.cpu, batch, n, vocab, s, 3, 2, ct);
  s.image_base = db;
  dev_->sample_tokens(g.dev, batch, n, vocab, s, 1, 2, dt);
  std::vector<int64_t> a(batch * n), b(batch * n), c(batch * n);
  cpu_.download(ct, a.data());
  dev_->download(dt, b.data());
  cpu_.download(pt, c.data());
  EXPECT_EQ(a, c) << "the CPU's image base";
  int64_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += a[i] != b[i];
  EXPECT_LE(differ, 1) << differ << " of " << a.size() << " tokens differ";
}

TEST_P(BackendOps, Resampling) {
  for (auto [in, out] : {std::pair<int64_t, int64_t>{1, 16}, {5, 16}, {13, 16}, {16, 10}, {32, 9}}) {
    Pair x = put_f32(random(6 * in * in));
    Pair yb = zeros(6 * out * out, DType::F32), ya = zeros(6 * out * out, DType::F32);
    cpu_.bicubic_resize(x.cpu, 6, in, in, out, out, yb.cpu);
    dev_->bicubic_resize(x.dev, 6, in, in, out, out, yb.dev);
    expect_close(yb, f32_tol(), cat("bicubic ", in, "->", out));
    cpu_.area_resize(x.cpu, 6, in, in, out, out, ya.cpu);
    dev_->area_resize(x.dev, 6, in, in, out, out, ya.dev);
    expect_close(ya, f32_tol(), cat("area ", in, "->", out));
  }
  Pair x = put_f32(random(4 * 5 * 7));
  Pair y = zeros(4 * 12 * 16, T_);
  cpu_.nearest_upsample2x(x.cpu, 4, 5, 7, y.cpu, 1);
  dev_->nearest_upsample2x(x.dev, 4, 5, 7, y.dev, 1);
  expect_close(y, out_tol(), "nearest_upsample2x padded");
}

// Small planes (one block per group), and large ones whose groups are summed in several slices, with and
// without 4-element accesses.
TEST_P(BackendOps, GroupNorm) {
  for (auto [batch, h, w] : {std::tuple{2, 9, 7}, std::tuple{1, 96, 96}, std::tuple{1, 97, 95}}) {
    const int64_t channels = 64;
    const auto xv = random(batch * channels * h * w, -2, 3);
    Pair gamma = put_f32(random(channels)), beta = put_f32(random(channels));
    for (DType xt : activation_types()) {
      Pair x = put(xv, xt);
      for (int64_t pad : {0, 1})
        for (bool silu : {false, true}) {
          Pair y = zeros(batch * channels * (h + 2 * pad) * (w + 2 * pad), T_);
          cpu_.group_norm(x.cpu, y.cpu, batch, channels, h, w, pad, 32, gamma.cpu, beta.cpu, 1e-6f, silu);
          dev_->group_norm(x.dev, y.dev, batch, channels, h, w, pad, 32, gamma.dev, beta.dev, 1e-6f, silu);
          expect_close(y, out_tol(),
                       cat("group_norm ", h, "x", w, " pad ", pad, silu ? " silu" : "", " input ", dtype_name(xt)));
        }
    }
  }
}

// Rows of odd width and rows a multiple of 8 wide (the vectorised im2col), the shapes of the implicit-GEMM
// kernel of a 16-bit device (an even number of rows a multiple of 128 wide, 32·i input and 160·j output
// channels; on a 9.0 device also four rows of 64 and their multiples) and of the few-output kernel (1, 3 and 4
// outputs, 128 and 256 wide, rows past its 8-row tiles); with and without a bias.
TEST_P(BackendOps, Conv2d) {
  for (auto [batch, h, w, cin, cout, k, with_bias] :
       {std::tuple{2, 11, 13, 32, 48, 3, true}, std::tuple{2, 11, 13, 40, 3, 3, true},
        std::tuple{2, 11, 13, 32, 64, 1, true}, std::tuple{2, 6, 16, 24, 40, 3, true},
        std::tuple{1, 8, 8, 16, 3, 3, true}, std::tuple{1, 5, 9, 16, 24, 3, false},
        std::tuple{2, 4, 128, 64, 160, 3, true}, std::tuple{1, 2, 256, 32, 320, 3, false},
        std::tuple{1, 2, 128, 160, 160, 3, true},  // the decoder's channel count: an odd number of 32-channel steps
        std::tuple{1, 2, 384, 32, 160, 3, true},   // a padded row longer than one block of the layout kernel
        std::tuple{2, 4, 64, 64, 160, 3, true}, std::tuple{1, 8, 64, 32, 320, 3, false},  // 64 wide
        std::tuple{1, 4, 192, 32, 160, 3, true},   // three 64-wide stretches
        std::tuple{1, 9, 128, 16, 3, 3, true}, std::tuple{2, 9, 256, 16, 4, 3, false},  // two column tiles
        std::tuple{1, 8, 128, 8, 1, 3, true},
        std::tuple{1, 9, 128, 24, 3, 3, true}}) {  // an odd number of the few-output kernel's 8-channel chunks
    const int64_t pad = k / 2;
    const auto wv = rounded(random(cout * cin * k * k, -0.2f, 0.2f), T_), bv = random(cout);
    const Tensor wt = Tensor::from_vector<float>({cout, cin, k, k}, wv), bt = Tensor::from_vector<float>({cout}, bv);
    const Tensor* b = with_bias ? &bt : nullptr;
    const auto cw = cpu_.make_conv(wt, b, pad), dw = dev_->make_conv(wt, b, pad);
    const auto xin = rounded(random(batch * cin * h * w), T_);
    for (bool padded : {false, true}) {
      if (padded && k == 1) continue;
      // A padded input, as the group norm writes it: zero borders.
      std::vector<float> xp = xin;
      if (padded) {
        const int64_t hp = h + 2 * pad, wp = w + 2 * pad;
        xp.assign(static_cast<size_t>(batch * cin * hp * wp), 0.0f);
        for (int64_t p = 0; p < batch * cin; ++p)
          for (int64_t r = 0; r < h; ++r)
            for (int64_t c = 0; c < w; ++c) xp[(p * hp + r + pad) * wp + c + pad] = xin[(p * h + r) * w + c];
      }
      for (DType xt : {DType::F32, T_}) {
        Pair x = put(xp, xt);
        for (DType yt : activation_types())
          for (bool acc : {false, true}) {
            Pair y = put(random(batch * cout * h * w), yt);
            cpu_.conv2d(x.cpu, batch, h, w, cw, y.cpu, padded, acc);
            dev_->conv2d(x.dev, batch, h, w, dw, y.dev, padded, acc);
            expect_close(y, conv_tol(yt),
                         cat("conv ", k, "x", k, " ", cin, "->", cout, " on ", h, "x", w, padded ? " padded" : "",
                             acc ? " accumulate" : "", with_bias ? "" : " no bias", " input ", dtype_name(xt),
                             " output ", dtype_name(yt)));
          }
      }
    }
    // The few-output kernel takes inputs at any element offset: one 2 values past an aligned address.
    if (k == 3 && cout <= 4 && w % 128 == 0)
      for (DType xt : {DType::F32, T_}) {
        const int64_t n = batch * cin * h * w, offset = 2;
        std::vector<float> shifted(static_cast<size_t>(offset), 0.0f);
        shifted.insert(shifted.end(), xin.begin(), xin.end());
        Pair x = put(shifted, xt);
        Pair y = put(random(batch * cout * h * w), DType::F32);
        cpu_.conv2d(x.cpu.slice(offset, n), batch, h, w, cw, y.cpu, false, false);
        dev_->conv2d(x.dev.slice(offset, n), batch, h, w, dw, y.dev, false, false);
        expect_close(y, conv_tol(DType::F32),
                     cat("conv 3x3 ", cin, "->", cout, " on ", h, "x", w, " input ", dtype_name(xt),
                         " 2 values past an aligned address"));
      }
    // An output 8 but not 16 bytes aligned goes to the mma.sync kernel where the wgmma kernel would run (so a
    // 9.0 device checks both, for float32 and 16-bit outputs; rows not a multiple of 128 wide, which only the
    // wgmma kernel takes, go to the columns' product), an output 4 bytes aligned to the columns' product; for
    // few-output shapes both go to the columns' product (that kernel stores float4s).
    if (k != 3 || w % 64 != 0) continue;
    Pair x = put(xin, T_);
    for (DType yt : activation_types())
      for (int64_t bytes : {8, 4})
        for (bool acc : {false, true}) {
          const int64_t n = batch * cout * h * w, offset = bytes / static_cast<int64_t>(dtype_size(yt));
          Pair y = put(random(n + offset), yt);
          cpu_.conv2d(x.cpu, batch, h, w, cw, y.cpu.slice(offset, n), false, acc);
          dev_->conv2d(x.dev, batch, h, w, dw, y.dev.slice(offset, n), false, acc);
          expect_close(y.cpu.slice(offset, n), y.dev.slice(offset, n), conv_tol(yt),
                       cat("conv 3x3 ", cin, "->", cout, " on ", h, "x", w, " into an output ", bytes,
                           " bytes past an aligned address", acc ? ", accumulate" : "", " output ", dtype_name(yt)));
        }
  }
}

// The decoder's norm → conv pairs: the device may normalise while it builds the columns (rows a multiple of 8
// wide, and not) or while the implicit-GEMM or few-output kernel reads its input (128 wide; 64 wide for the
// implicit GEMM on a 9.0 device), or compose the two steps (1×1); the CPU composes them.
TEST_P(BackendOps, GroupNormConv2d) {
  for (auto [batch, h, w, cin, cout, k] : {std::tuple{2, 6, 16, 64, 40, 3}, std::tuple{1, 5, 7, 32, 24, 3},
                                           std::tuple{2, 4, 8, 32, 16, 1}, std::tuple{2, 4, 128, 64, 160, 3},
                                           std::tuple{2, 8, 64, 64, 160, 3}, std::tuple{1, 9, 128, 32, 3, 3}}) {
    const int64_t pad = k / 2;
    const auto wv = rounded(random(cout * cin * k * k, -0.2f, 0.2f), T_), bv = random(cout);
    const Tensor wt = Tensor::from_vector<float>({cout, cin, k, k}, wv), bt = Tensor::from_vector<float>({cout}, bv);
    const auto cw = cpu_.make_conv(wt, &bt, pad), dw = dev_->make_conv(wt, &bt, pad);
    const auto xv = random(batch * cin * h * w, -2, 3);
    Pair gamma = put_f32(random(cin)), beta = put_f32(random(cin));
    for (DType at : activation_types()) {  // x and y both float32, or both the decoder's activation type
      // The few-output kernel (cout 3) writes float32 only: a 16-bit output takes the columns.
      Pair x = put(xv, at);
      for (bool silu : {false, true})
        for (bool acc : {false, true}) {
          Pair scratch = zeros(batch * cin * (h + 2 * pad) * (w + 2 * pad), T_);
          Pair y = put(random(batch * cout * h * w), at);
          cpu_.group_norm_conv2d(x.cpu, batch, h, w, 32, gamma.cpu, beta.cpu, 1e-6f, silu, cw, scratch.cpu, y.cpu, acc);
          dev_->group_norm_conv2d(x.dev, batch, h, w, 32, gamma.dev, beta.dev, 1e-6f, silu, dw, scratch.dev, y.dev, acc);
          expect_close(y, 2 * std::max(tol(), out_tol()) + (at == DType::F32 ? 0.0 : conv_tol(at)),
                       // the normalised input is rounded to the compute type
                       cat("group norm + conv ", k, "x", k, " ", cin, "->", cout, " on ", h, "x", w,
                           silu ? " silu" : "", acc ? " accumulate" : "", " activations ", dtype_name(at)));
        }
      // The decoder's last convolution: a 16-bit input into the float32 image.
      Pair image = put_f32(random(batch * cout * h * w));
      Pair scratch = zeros(batch * cin * (h + 2 * pad) * (w + 2 * pad), T_);
      cpu_.group_norm_conv2d(x.cpu, batch, h, w, 32, gamma.cpu, beta.cpu, 1e-6f, true, cw, scratch.cpu, image.cpu, false);
      dev_->group_norm_conv2d(x.dev, batch, h, w, 32, gamma.dev, beta.dev, 1e-6f, true, dw, scratch.dev, image.dev, false);
      expect_close(image, 2 * std::max(tol(), out_tol()),
                   cat("group norm + conv ", k, "x", k, " ", cin, "->", cout, " on ", h, "x", w, " input ",
                       dtype_name(at), " into float32"));
    }
  }
}

// The decoder's upsample → conv pairs: the device may upsample while the implicit-GEMM kernel reads its input
// (128 wide, and 64 wide on a 9.0 device) or compose the two steps (other shapes); the CPU composes them.
TEST_P(BackendOps, Upsample2xConv2d) {
  for (auto [batch, h, w, cin, cout] : {std::tuple{2, 2, 64, 32, 160}, std::tuple{1, 4, 32, 64, 320},
                                        std::tuple{1, 3, 5, 16, 24}}) {
    const auto wv = rounded(random(cout * cin * 9, -0.2f, 0.2f), T_), bv = random(cout);
    const Tensor wt = Tensor::from_vector<float>({cout, cin, 3, 3}, wv), bt = Tensor::from_vector<float>({cout}, bv);
    const auto cw = cpu_.make_conv(wt, &bt, 1), dw = dev_->make_conv(wt, &bt, 1);
    const auto xv = rounded(random(batch * cin * h * w), T_);  // exact in the compute type
    Pair scratch = zeros(batch * cin * (2 * h + 2) * (2 * w + 2), T_);
    for (DType at : activation_types()) {  // x and y both float32, or both the decoder's activation type
      Pair xa = put(xv, at);
      Pair y = put(random(batch * cout * 4 * h * w), at);
      cpu_.upsample2x_conv2d(xa.cpu, batch, h, w, cw, scratch.cpu, y.cpu);
      dev_->upsample2x_conv2d(xa.dev, batch, h, w, dw, scratch.dev, y.dev);
      expect_close(y, conv_tol(at),
                   cat("upsample x2 + conv ", cin, "->", cout, " from ", h, "x", w, " activations ", dtype_name(at)));
    }
    // Outputs 8 and 4 bytes past an aligned address: the mma.sync kernel (upsampling on the way) at 128 wide,
    // the composition at 64 wide and for every 4-byte offset; float32 and 16-bit activations.
    for (DType at : activation_types()) {
      Pair xa = put(xv, at);
      for (int64_t bytes : {8, 4}) {
        const int64_t n = batch * cout * 4 * h * w, offset = bytes / static_cast<int64_t>(dtype_size(at));
        Pair yo = put(random(n + offset), at);
        cpu_.upsample2x_conv2d(xa.cpu, batch, h, w, cw, scratch.cpu, yo.cpu.slice(offset, n));
        dev_->upsample2x_conv2d(xa.dev, batch, h, w, dw, scratch.dev, yo.dev.slice(offset, n));
        expect_close(yo.cpu.slice(offset, n), yo.dev.slice(offset, n), conv_tol(at),
                     cat("upsample x2 + conv ", cin, "->", cout, " from ", h, "x", w, " into an output ", bytes,
                         " bytes past an aligned address, activations ", dtype_name(at)));
      }
    }
  }
}

TEST_P(BackendOps, SpatialAttention) {
  const int64_t batch = 2, C = 64, N = 49;
  Pair qkv = put_f32(rounded(random(batch * 3 * C * N, -0.5f, 0.5f), T_));
  Pair out = zeros(batch * C * N, T_);
  cpu_.spatial_attention(qkv.cpu, batch, C, N, out.cpu);
  dev_->spatial_attention(qkv.dev, batch, C, N, out.dev);
  expect_close(out, std::max(tol(), out_tol()), "spatial_attention");
}

TEST_P(BackendOps, KeySimilarity) {
  const int64_t rows = 2, heads = 3;
  // Head dimensions: the models' 64 (8-element accesses, one step per lane), 40 (some lanes idle), 128 (two
  // steps) and 33 (one element per access); sides up to 512px's last two scales (24 -> 32).
  for (auto [dh, ps, cs] : {std::tuple<int64_t, int64_t, int64_t>{64, 1, 2}, {64, 3, 4}, {64, 10, 13}, {64, 24, 32},
                            {40, 3, 4}, {128, 5, 6}, {33, 5, 6}}) {
    SCOPED_TRACE(cat("head dimension ", dh));
    Pair prev = put_compute(random(rows * heads * (ps * ps + 2) * dh));  // a slab with spare capacity
    Pair cur = put_compute(random(rows * heads * cs * cs * dh));
    const AttentionSegment cp{prev.cpu.span().raw(), prev.cpu.span().raw(), ps * ps, (ps * ps + 2) * dh, DType::F32};
    const AttentionSegment cc{cur.cpu.span().raw(), cur.cpu.span().raw(), cs * cs, cs * cs * dh, DType::F32};
    const AttentionSegment dp{prev.dev.span().raw(), prev.dev.span().raw(), ps * ps, (ps * ps + 2) * dh, T_};
    const AttentionSegment dc{cur.dev.span().raw(), cur.dev.span().raw(), cs * cs, cs * cs * dh, T_};
    const double a = cpu_.key_similarity(cp, ps, cc, cs, rows, heads, dh);
    const double b = dev_->key_similarity(dp, ps, dc, cs, rows, heads, dh);
    EXPECT_NEAR(a, b, 1e-5) << ps << " -> " << cs;
    // The previous keys from an 8-bit store.
    const int64_t blocks = rows * heads, cap = ps * ps + 2;
    const Int8Slab cq = quantized(cpu_, prev.cpu, blocks, cap, ps * ps, dh);
    const Int8Slab dq = quantized(*dev_, prev.dev, blocks, cap, ps * ps, dh);
    const AttentionSegment cp8 = int8_segment(cq, cq, 0, ps * ps, cap, dh);
    const AttentionSegment dp8 = int8_segment(dq, dq, 0, ps * ps, cap, dh);
    const double a8 = cpu_.key_similarity(cp8, ps, cc, cs, rows, heads, dh);
    const double b8 = dev_->key_similarity(dp8, ps, dc, cs, rows, heads, dh);
    EXPECT_NEAR(a8, b8, 1e-5) << ps << " -> " << cs << " (8-bit previous keys)";
    EXPECT_NEAR(a8, a, 2e-2) << ps << " -> " << cs << " (8-bit against full-precision keys)";
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, BackendOps, ::testing::ValuesIn(other_backends()), backend_test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(BackendOps);

}  // namespace
}  // namespace amskv::test
