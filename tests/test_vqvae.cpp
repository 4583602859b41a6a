// VQVAE side of generation: CPU kernels (conv, GroupNorm, resampling, activations), the φ index rule, config
// inference and validation, and the golden references (f_hat accumulation, next-scale maps, decoded images).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/cpu/activations.h"
#include "backend/cpu/conv2d.h"
#include "backend/cpu/group_norm.h"
#include "backend/cpu/resample.h"
#include "core/error.h"
#include "core/tensor.h"
#include "golden_dir.h"
#include "host_span.h"
#include "io/tensor_file.h"
#include "model/random_model.h"
#include "model/vqvae.h"
#include "model/vqvae_config.h"

namespace amskv {
namespace {

using model::Vqvae;
using model::decode_pass_sizes;

std::vector<float> random_vec(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = nd(g);
  return v;
}

// ---------------------------------------------------------------------------------------------------------------
// φ index rule (spec C.7)

TEST(VqvaePhiIndex, MatchesReferenceTables) {
  const std::map<int, std::vector<int>> expected = {
      {4, {0, 1, 2, 3}},
      {5, {0, 1, 2, 2, 3}},
      {8, {0, 0, 1, 1, 2, 2, 3, 3}},
      {10, {0, 0, 1, 1, 1, 2, 2, 3, 3, 3}},  // k = 2 and 7 are exact ties decided by double rounding
      {14, {0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3}},
  };
  for (const auto& [K, table] : expected) {
    for (int k = 0; k < K; ++k) {
      EXPECT_EQ(model::phi_index(k, K, 4), table[static_cast<size_t>(k)]) << "K=" << K << " k=" << k;
    }
  }
}

TEST(VqvaePhiIndex, OtherPhiCounts) {
  // n != 4 uses ticks linspace(1/(2n), 1 − 1/(2n), n).
  for (int k = 0; k < 10; ++k) EXPECT_EQ(model::phi_index(k, 10, 1), 0);
  // n = 2: ticks 0.25, 0.75 -> ratio < 0.5 picks 0, > 0.5 picks 1.
  EXPECT_EQ(model::phi_index(0, 10, 2), 0);
  EXPECT_EQ(model::phi_index(4, 10, 2), 0);
  EXPECT_EQ(model::phi_index(5, 10, 2), 1);
  EXPECT_EQ(model::phi_index(9, 10, 2), 1);
  // n = K (one φ per scale, ticks at the bin centres): the identity.
  for (int k = 0; k < 10; ++k) EXPECT_EQ(model::phi_index(k, 10, 10), k);
  EXPECT_THROW(model::phi_index(10, 10, 4), Error);
}

// ---------------------------------------------------------------------------------------------------------------
// Area windows (spec Appendix A) and bicubic taps (Appendix B)

std::vector<std::pair<int64_t, int64_t>> windows(int64_t in, int64_t out) {
  std::vector<std::pair<int64_t, int64_t>> w;
  for (const auto& a : cpu::area_windows(in, out)) w.emplace_back(a.start, a.end);
  return w;
}

using Win = std::vector<std::pair<int64_t, int64_t>>;

TEST(VqvaeResample, AreaWindows256) {
  EXPECT_EQ(windows(16, 2), (Win{{0, 8}, {8, 16}}));
  EXPECT_EQ(windows(16, 3), (Win{{0, 6}, {5, 11}, {10, 16}}));
  EXPECT_EQ(windows(16, 5), (Win{{0, 4}, {3, 7}, {6, 10}, {9, 13}, {12, 16}}));
  EXPECT_EQ(windows(16, 6), (Win{{0, 3}, {2, 6}, {5, 8}, {8, 11}, {10, 14}, {13, 16}}));
  EXPECT_EQ(windows(16, 10),
            (Win{{0, 2}, {1, 4}, {3, 5}, {4, 7}, {6, 8}, {8, 10}, {9, 12}, {11, 13}, {12, 15}, {14, 16}}));
  EXPECT_EQ(windows(16, 13), (Win{{0, 2}, {1, 3}, {2, 4}, {3, 5}, {4, 7}, {6, 8}, {7, 9}, {8, 10}, {9, 12}, {11, 13},
                                  {12, 14}, {13, 15}, {14, 16}}));
  for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(windows(16, 8)[static_cast<size_t>(i)], std::make_pair(2 * i, 2 * i + 2));
  for (int64_t i = 0; i < 16; ++i) EXPECT_EQ(windows(16, 16)[static_cast<size_t>(i)], std::make_pair(i, i + 1));
}

TEST(VqvaeResample, AreaWindows512) {
  EXPECT_EQ(windows(32, 3), (Win{{0, 11}, {10, 22}, {21, 32}}));
  EXPECT_EQ(windows(32, 6), (Win{{0, 6}, {5, 11}, {10, 16}, {16, 22}, {21, 27}, {26, 32}}));
  EXPECT_EQ(windows(32, 9),
            (Win{{0, 4}, {3, 8}, {7, 11}, {10, 15}, {14, 18}, {17, 22}, {21, 25}, {24, 29}, {28, 32}}));
  EXPECT_EQ(windows(32, 13), (Win{{0, 3}, {2, 5}, {4, 8}, {7, 10}, {9, 13}, {12, 15}, {14, 18}, {17, 20}, {19, 23},
                                  {22, 25}, {24, 28}, {27, 30}, {29, 32}}));
  EXPECT_EQ(windows(32, 18), (Win{{0, 2}, {1, 4}, {3, 6}, {5, 8}, {7, 9}, {8, 11}, {10, 13}, {12, 15}, {14, 16},
                                  {16, 18}, {17, 20}, {19, 22}, {21, 24}, {23, 25}, {24, 27}, {26, 29}, {28, 31},
                                  {30, 32}}));
  EXPECT_EQ(windows(32, 24), (Win{{0, 2},   {1, 3},   {2, 4},   {4, 6},   {5, 7},   {6, 8},   {8, 10},  {9, 11},
                                  {10, 12}, {12, 14}, {13, 15}, {14, 16}, {16, 18}, {17, 19}, {18, 20}, {20, 22},
                                  {21, 23}, {22, 24}, {24, 26}, {25, 27}, {26, 28}, {28, 30}, {29, 31}, {30, 32}}));
}

TEST(VqvaeResample, AreaResizeAveragesWindows) {
  // 32 -> 9 on a ramp plane: every output is the mean of its (overlapping) 2-D window.
  std::vector<float> x(32 * 32);
  for (int i = 0; i < 32 * 32; ++i) x[static_cast<size_t>(i)] = static_cast<float>(i % 37) * 0.25f - 3.0f;
  std::vector<float> y(9 * 9);
  cpu::area_resize(x.data(), 1, 32, 32, 9, 9, y.data());
  const auto w = cpu::area_windows(32, 9);
  for (int oy = 0; oy < 9; ++oy)
    for (int ox = 0; ox < 9; ++ox) {
      double s = 0;
      int n = 0;
      for (int64_t iy = w[oy].start; iy < w[oy].end; ++iy)
        for (int64_t ix = w[ox].start; ix < w[ox].end; ++ix, ++n) s += x[static_cast<size_t>(iy * 32 + ix)];
      EXPECT_NEAR(y[static_cast<size_t>(oy * 9 + ox)], s / n, 1e-6);
    }
}

TEST(VqvaeResample, BicubicSourceCoordinates) {
  const auto t13 = cpu::bicubic_taps(13, 16);
  EXPECT_DOUBLE_EQ(t13[0].src, -0.09375);
  EXPECT_DOUBLE_EQ(t13[1].src, 0.71875);
  EXPECT_DOUBLE_EQ(t13[2].src, 1.53125);
  const auto t10 = cpu::bicubic_taps(10, 16);
  EXPECT_DOUBLE_EQ(t10[0].src, -0.1875);
  EXPECT_DOUBLE_EQ(t10[1].src, 0.4375);
  EXPECT_DOUBLE_EQ(t10[2].src, 1.0625);
  const auto t5 = cpu::bicubic_taps(5, 16);
  EXPECT_DOUBLE_EQ(t5[0].src, -0.34375);
  EXPECT_DOUBLE_EQ(t5[1].src, -0.03125);
  EXPECT_DOUBLE_EQ(t5[2].src, 0.28125);
  // First tap of 13 -> 16: floor(−0.09375) = −1, t = 0.90625; taps −2..1 clamp to 0,0,0,1.
  EXPECT_EQ(t13[0].index[0], 0);
  EXPECT_EQ(t13[0].index[1], 0);
  EXPECT_EQ(t13[0].index[2], 0);
  EXPECT_EQ(t13[0].index[3], 1);
  for (const auto& tp : t13) EXPECT_NEAR(tp.weight[0] + tp.weight[1] + tp.weight[2] + tp.weight[3], 1.0, 1e-15);
  // pn = 1: every tap clamps to the single input.
  for (const auto& tp : cpu::bicubic_taps(1, 16)) {
    for (int j = 0; j < 4; ++j) EXPECT_EQ(tp.index[j], 0);
  }
}

TEST(VqvaeResample, BicubicConstantAndIdentity) {
  std::vector<float> one = {2.5f, -1.0f};  // two planes of 1x1
  std::vector<float> up(2 * 16 * 16);
  cpu::bicubic_resize(one.data(), 2, 1, 1, 16, 16, up.data());
  for (int i = 0; i < 256; ++i) {
    EXPECT_FLOAT_EQ(up[static_cast<size_t>(i)], 2.5f);
    EXPECT_FLOAT_EQ(up[static_cast<size_t>(256 + i)], -1.0f);
  }
  const auto x = random_vec(3 * 7 * 7, 5);
  std::vector<float> y(x.size());
  cpu::bicubic_resize(x.data(), 3, 7, 7, 7, 7, y.data());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], x[i]);
}

TEST(VqvaeResample, BicubicMatchesDoubleReference) {
  // 5x6 -> 16x16 against a direct double evaluation of the separable kernel.
  const int64_t ih = 5, iw = 6, o = 16;
  const auto x = random_vec(static_cast<size_t>(ih * iw), 9);
  std::vector<float> y(o * o);
  cpu::bicubic_resize(x.data(), 1, ih, iw, o, o, y.data());
  const auto ty = cpu::bicubic_taps(ih, o), tx = cpu::bicubic_taps(iw, o);
  for (int64_t oy = 0; oy < o; ++oy)
    for (int64_t ox = 0; ox < o; ++ox) {
      double s = 0;
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j)
          s += ty[oy].weight[i] * tx[ox].weight[j] * x[static_cast<size_t>(ty[oy].index[i] * iw + tx[ox].index[j])];
      EXPECT_NEAR(y[static_cast<size_t>(oy * o + ox)], s, 1e-5);
    }
}

TEST(VqvaeResample, NearestUpsamplePadded) {
  const std::vector<float> x = {1, 2, 3, 4, 5, 6};  // 1 plane, 2x3
  std::vector<float> y(4 * 6), yp(6 * 8, -7.0f);
  cpu::nearest_upsample2x(x.data(), 1, 2, 3, y.data());
  cpu::nearest_upsample2x(x.data(), 1, 2, 3, yp.data(), 1);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 6; ++c) {
      EXPECT_EQ(y[static_cast<size_t>(r * 6 + c)], x[static_cast<size_t>((r / 2) * 3 + c / 2)]);
      EXPECT_EQ(yp[static_cast<size_t>((r + 1) * 8 + c + 1)], y[static_cast<size_t>(r * 6 + c)]);
    }
  for (int c = 0; c < 8; ++c) {
    EXPECT_EQ(yp[static_cast<size_t>(c)], 0.0f);
    EXPECT_EQ(yp[static_cast<size_t>(40 + c)], 0.0f);
  }
  for (int r = 0; r < 6; ++r) {
    EXPECT_EQ(yp[static_cast<size_t>(r * 8)], 0.0f);
    EXPECT_EQ(yp[static_cast<size_t>(r * 8 + 7)], 0.0f);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Convolution, GroupNorm, activations against direct double evaluations

std::vector<double> naive_conv(const std::vector<float>& x, int64_t B, int64_t cin, int64_t h, int64_t w,
                               const std::vector<float>& wt, const std::vector<float>& bias, int64_t cout, int64_t k,
                               int64_t pad) {
  const int64_t oh = h + 2 * pad - k + 1, ow = w + 2 * pad - k + 1;
  std::vector<double> y(static_cast<size_t>(B * cout * oh * ow));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t co = 0; co < cout; ++co)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          double s = bias.empty() ? 0.0 : bias[static_cast<size_t>(co)];
          for (int64_t ci = 0; ci < cin; ++ci)
            for (int64_t ky = 0; ky < k; ++ky)
              for (int64_t kx = 0; kx < k; ++kx) {
                const int64_t iy = oy + ky - pad, ix = ox + kx - pad;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                s += static_cast<double>(wt[static_cast<size_t>(((co * cin + ci) * k + ky) * k + kx)]) *
                     x[static_cast<size_t>(((b * cin + ci) * h + iy) * w + ix)];
              }
          y[static_cast<size_t>(((b * cout + co) * oh + oy) * ow + ox)] = s;
        }
  return y;
}

struct ConvCase {
  int64_t batch, cin, cout, h, w, k, pad;
  bool packed;
};

class VqvaeConv : public ::testing::TestWithParam<ConvCase> {};

TEST_P(VqvaeConv, MatchesDirectEvaluation) {
  const ConvCase c = GetParam();
  const int64_t oh = c.h + 2 * c.pad - c.k + 1, ow = c.w + 2 * c.pad - c.k + 1;
  const auto x = random_vec(static_cast<size_t>(c.batch * c.cin * c.h * c.w), 1);
  const auto wt = random_vec(static_cast<size_t>(c.cout * c.cin * c.k * c.k), 2, 0.3f);
  const auto bias = random_vec(static_cast<size_t>(c.cout), 3);
  const auto init = random_vec(static_cast<size_t>(c.batch * c.cout * oh * ow), 4);
  const auto ref = naive_conv(x, c.batch, c.cin, c.h, c.w, wt, bias, c.cout, c.k, c.pad);
  std::vector<float> taps;
  cpu::Conv2dParams p;
  p.weight = wt.data();
  p.bias = bias.data();
  p.cin = c.cin;
  p.cout = c.cout;
  p.kh = p.kw = c.k;
  p.pad = c.pad;
  if (c.packed) {
    taps = cpu::pack_conv_taps(wt.data(), c.cout, c.cin, c.k, c.k);
    p.taps = taps.data();
  }
  for (bool accumulate : {false, true}) {
    std::vector<float> y = init;
    cpu::conv2d(x.data(), c.batch, c.h, c.w, p, y.data(), accumulate);
    double err = 0, mag = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      const double r = ref[i] + (accumulate ? init[i] : 0.0);
      err = std::max(err, std::fabs(y[i] - r));
      mag = std::max(mag, std::fabs(r));
    }
    EXPECT_LE(err, 2e-6 * std::max(1.0, mag)) << "accumulate=" << accumulate;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, VqvaeConv,
                         ::testing::Values(ConvCase{1, 5, 7, 9, 11, 3, 1, false},   // shifted GEMM, one band
                                           ConvCase{2, 3, 4, 70, 40, 3, 1, true},   // several bands, packed taps
                                           ConvCase{3, 4, 6, 5, 5, 3, 1, false},    // batched im2col
                                           ConvCase{2, 3, 2, 6, 7, 1, 0, false},    // 1x1
                                           ConvCase{1, 2, 3, 7, 6, 5, 2, false},    // 5x5
                                           ConvCase{2, 3, 4, 4, 5, 3, 0, false},    // no padding, batched
                                           ConvCase{1, 3, 4, 4, 5, 3, 0, true}));   // no padding, shifted

TEST(VqvaeGroupNorm, MatchesDirectEvaluation) {
  const int64_t B = 2, C = 64, h = 5, w = 7, G = 32;
  auto x = random_vec(static_cast<size_t>(B * C * h * w), 11, 2.0f);
  for (size_t i = 0; i < x.size(); ++i) x[i] += 3.0f;  // a mean offset
  const auto gamma = random_vec(C, 12), beta = random_vec(C, 13);
  for (bool silu : {false, true}) {
    std::vector<float> y(x.size()), yp(static_cast<size_t>(B * C * (h + 2) * (w + 2)), 9.0f);
    cpu::group_norm(x.data(), y.data(), B, C, h * w, G, gamma.data(), beta.data(), 1e-6f, silu);
    cpu::group_norm_padded(x.data(), yp.data(), B, C, h, w, 1, G, gamma.data(), beta.data(), 1e-6f, silu);
    const int64_t cpg = C / G, n = cpg * h * w;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t g = 0; g < G; ++g) {
        const float* p = x.data() + (b * C + g * cpg) * h * w;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < n; ++i) mean += p[i];
        mean /= n;
        for (int64_t i = 0; i < n; ++i) var += (p[i] - mean) * (p[i] - mean);
        var /= n;
        for (int64_t i = 0; i < n; ++i) {
          const int64_t c = g * cpg + i / (h * w), pos = i % (h * w);
          double r = (p[i] - mean) / std::sqrt(var + 1e-6) * gamma[static_cast<size_t>(c)] + beta[static_cast<size_t>(c)];
          if (silu) r = r / (1.0 + std::exp(-r));
          EXPECT_NEAR(y[static_cast<size_t>((b * C + c) * h * w + pos)], r, 2e-6 * std::max(1.0, std::fabs(r)));
          EXPECT_EQ(yp[static_cast<size_t>((b * C + c) * (h + 2) * (w + 2) + (pos / w + 1) * (w + 2) + pos % w + 1)],
                    y[static_cast<size_t>((b * C + c) * h * w + pos)]);
        }
      }
    for (int64_t pl = 0; pl < B * C; ++pl)
      for (int64_t r = 0; r < h + 2; ++r)
        for (int64_t c = 0; c < w + 2; ++c)
          if (r == 0 || c == 0 || r == h + 1 || c == w + 1) {
            ASSERT_EQ(yp[static_cast<size_t>((pl * (h + 2) + r) * (w + 2) + c)], 0.0f);
          }
  }
  std::vector<float> y(30);
  EXPECT_THROW(cpu::group_norm(x.data(), y.data(), 1, 30, 1, 32, nullptr, nullptr, 1e-6f, false), Error);
}

TEST(VqvaeActivations, SiluAndGeluTanh) {
  std::vector<float> xs;
  for (float v = -30.0f; v <= 30.0f; v += 0.037f) xs.push_back(v);
  xs.push_back(-100.0f);
  xs.push_back(100.0f);
  std::vector<float> s = xs, g = xs;
  cpu::silu(s.data(), static_cast<int64_t>(s.size()));
  cpu::gelu_tanh(g.data(), static_cast<int64_t>(g.size()));
  for (size_t i = 0; i < xs.size(); ++i) {
    const double x = xs[i];
    const double rs = x / (1.0 + std::exp(-x));
    const double rg = 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    EXPECT_NEAR(s[i], rs, 3e-7 * std::max(1.0, std::fabs(rs))) << x;
    EXPECT_NEAR(g[i], rg, 1e-6 * std::max(1.0, std::fabs(rg))) << x;
  }
  for (float v : {-80.0f, -10.0f, -1.0f, 0.0f, 0.5f, 10.0f, 80.0f})
    EXPECT_NEAR(cpu::fast_exp(v), std::exp(static_cast<double>(v)), 2e-7 * std::exp(static_cast<double>(v)));
}

// ---------------------------------------------------------------------------------------------------------------
// Config inference on a synthetic checkpoint

// A small VQVAE state dict in the official layout: ch 32, ch_mult (1, 2), one res block + 1, attention at the
// last level and in the middle, 4 φ convs, optional encoder stand-in.
io::TensorMap synthetic_vqvae(uint32_t seed = 7, bool encoder = true) {
  model::RandomVqvaeSpec spec;
  spec.vocab = 24, spec.cvae = 4, spec.ch = 32, spec.ch_mult = {1, 2}, spec.num_res_blocks = 1, spec.seed = seed;
  io::TensorMap t = model::to_tensor_map(model::random_vqvae_weights(spec), "synthetic.pth");
  // Tensors of the full checkpoint that generation ignores: they must be accepted.
  t.insert("quantize.ema_vocab_hit_SV", Tensor::zeros(DType::F32, {3, 24}));
  t.insert("quant_conv.weight", Tensor::zeros(DType::F32, {4, 4, 3, 3}));
  t.insert("quant_conv.bias", Tensor::zeros(DType::F32, {4}));
  if (encoder) t.insert("encoder.conv_in.weight", Tensor::zeros(DType::F32, {32, 3, 3, 3}));
  return t;
}

TEST(VqvaeConfig, InfersSyntheticSizes) {
  const auto t = synthetic_vqvae();
  const auto c = model::infer_vqvae_config(t);
  EXPECT_EQ(c.vocab, 24);
  EXPECT_EQ(c.cvae, 4);
  EXPECT_EQ(c.ch, 32);
  EXPECT_EQ(c.ch_mult, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(c.num_res_blocks, 1);
  EXPECT_EQ(c.level_has_attn, (std::vector<bool>{false, true}));
  EXPECT_TRUE(c.mid_attn);
  EXPECT_TRUE(c.has_encoder);
  EXPECT_EQ(c.num_phi, 4);
  EXPECT_EQ(c.upsample_factor(), 2);
  int64_t params = 0;
  for (const auto& [k, v] : t.all())
    if (k != "quantize.ema_vocab_hit_SV") params += v.numel();
  EXPECT_EQ(c.param_count, params);
  EXPECT_NE(c.summary().find("ch_mult=1,2"), std::string::npos) << c.summary();
  EXPECT_FALSE(model::infer_vqvae_config(synthetic_vqvae(7, false)).has_encoder);
}

void expect_error_with(const io::TensorMap& t, const std::vector<std::string>& parts) {
  try {
    model::infer_vqvae_config(t);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

TEST(VqvaeConfig, WrongShapeIsAClearError) {
  auto t = synthetic_vqvae();
  t.insert("decoder.up.0.block.1.conv2.weight", Tensor::zeros(DType::F32, {32, 32, 1, 3}));
  expect_error_with(t, {"synthetic.pth", "decoder.up.0.block.1.conv2.weight", "[32, 32, 1, 3]", "[32, 32, 3, 3]"});

  auto t2 = synthetic_vqvae();
  t2.insert("decoder.mid.attn_1.qkv.bias", Tensor::zeros(DType::F32, {64}));
  expect_error_with(t2, {"decoder.mid.attn_1.qkv.bias", "[192]"});

  auto t3 = synthetic_vqvae();
  t3.insert("quantize.quant_resi.qresi_ls.2.weight", Tensor::zeros(DType::F32, {4, 4, 3}));
  expect_error_with(t3, {"quantize.quant_resi.qresi_ls.2.weight"});
}

TEST(VqvaeConfig, MissingAndUnexpectedKeys) {
  io::TensorMap missing("m.pth");
  const auto full = synthetic_vqvae();
  for (const auto& [k, v] : full.all())
    if (k != "decoder.up.1.attn.1.proj_out.bias") missing.insert(k, v);
  expect_error_with(missing, {"m.pth", "missing key decoder.up.1.attn.1.proj_out.bias"});

  auto extra = synthetic_vqvae();
  extra.insert("decoder.up.1.block.0.extra", Tensor::zeros(DType::F32, {1}));
  expect_error_with(extra, {"unexpected key decoder.up.1.block.0.extra"});

  io::TensorMap var("var.pth");
  var.insert("class_emb.weight", Tensor::zeros(DType::F32, {11, 8}));
  expect_error_with(var, {"var.pth", "VAR transformer"});
}

TEST(VqvaeModel, DecodePassSizes) {
  EXPECT_EQ(decode_pass_sizes(128, 60), (std::vector<int64_t>{43, 43, 42}));
  EXPECT_EQ(decode_pass_sizes(128, 32), (std::vector<int64_t>{32, 32, 32, 32}));
  EXPECT_EQ(decode_pass_sizes(5, 100), (std::vector<int64_t>{5}));
  EXPECT_EQ(decode_pass_sizes(3, 0), (std::vector<int64_t>{1, 1, 1}));
  EXPECT_THROW(decode_pass_sizes(0, 4), Error);
  for (int64_t batch = 1; batch <= 70; ++batch)
    for (int64_t most = 1; most <= 20; ++most) {
      const auto sizes = decode_pass_sizes(batch, most);
      int64_t sum = 0;
      for (int64_t n : sizes) sum += n;
      EXPECT_EQ(sum, batch);
      EXPECT_EQ(static_cast<int64_t>(sizes.size()), (batch + std::min(most, batch) - 1) / std::min(most, batch));
      EXPECT_LE(sizes.front(), most);
      EXPECT_LE(sizes.front() - sizes.back(), 1);
      EXPECT_TRUE(std::is_sorted(sizes.rbegin(), sizes.rend()));
    }
}

TEST(VqvaeModel, SyntheticDecodeShapeAndRange) {
  const Vqvae vae(test::cpu(), synthetic_vqvae());
  Tensor f = Tensor::zeros(DType::F32, {2, 4, 3, 3});
  const auto v = random_vec(2 * 4 * 9, 21);
  std::copy(v.begin(), v.end(), f.mutable_data<float>());
  const Tensor img = vae.decode(f);
  ASSERT_EQ(img.shape(), (Shape{2, 3, 6, 6}));
  for (int64_t i = 0; i < img.numel(); ++i) {
    EXPECT_GE(img.data<float>()[i], 0.0f);
    EXPECT_LE(img.data<float>()[i], 1.0f);
  }
  // Images are decoded independently: decoding image 1 alone gives the same result.
  const Tensor one = vae.decode(Tensor::view(DType::F32, {1, 4, 3, 3}, f.data<float>() + 36, nullptr));
  for (int64_t i = 0; i < one.numel(); ++i) EXPECT_EQ(one.data<float>()[i], img.data<float>()[108 + i]);
  EXPECT_THROW(vae.decode(Tensor::zeros(DType::F32, {1, 5, 3, 3})), Error);
  const int64_t bad = 24;
  std::vector<float> fh(4 * 9);
  EXPECT_THROW(vae.accumulate_scale({1, 3}, 0, test::host_span(&bad, 1), 1, test::host_span(fh.data(), 36)), Error);
}

// ---------------------------------------------------------------------------------------------------------------
// Golden references

struct GoldenCase {
  std::string name;
  std::vector<int64_t> patch_nums;
  io::TensorMap golden;
  nlohmann::json config;
};

GoldenCase load_case(const std::string& name) {
  GoldenCase c;
  c.name = name;
  const std::string dir = golden_case_dir(name);
  std::ifstream in(dir + "/config.json");
  if (!in) fail("cannot open ", dir, "/config.json");
  c.config = nlohmann::json::parse(in);
  c.patch_nums = c.config.at("patch_nums").get<std::vector<int64_t>>();
  c.golden = io::load_tensor_file(dir + "/golden.safetensors");
  return c;
}

// The VQVAE a case names in its config.json (shared between cases, so loaded once per file).
const Vqvae& golden_vae(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Vqvae>> cache;
  std::ifstream in(golden_case_dir(name) + "/config.json");
  const std::string path = golden_case_dir(name) + "/" + nlohmann::json::parse(in).at("vae_file").get<std::string>();
  auto& slot = cache[path];
  if (!slot) slot = std::make_unique<Vqvae>(test::cpu(), io::load_tensor_file(path));
  return *slot;
}

// max |a − ref| and max |ref|
std::pair<double, double> compare(const float* a, const Tensor& ref) {
  const auto r = ref.to_f64_vector();
  double err = 0, mag = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(a[i]) - r[i]));
    mag = std::max(mag, std::fabs(r[i]));
  }
  return {err, mag};
}

class VqvaeGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(VqvaeGolden, ConfigOfGoldenVae) {
  const GoldenCase gc = load_case(GetParam());
  const auto& c = golden_vae(GetParam()).config();
  // Both golden VQVAEs are built like the official one at ch 32 (the mini one without its encoder).
  EXPECT_EQ(c.vocab, gc.config.at("V").get<int64_t>());
  EXPECT_EQ(c.cvae, gc.config.at("Cvae").get<int64_t>());
  EXPECT_EQ(c.ch, gc.config.at("ch").get<int64_t>());
  EXPECT_EQ(c.ch_mult, (std::vector<int64_t>{1, 1, 2, 2, 4}));
  EXPECT_EQ(c.num_res_blocks, 2);
  EXPECT_EQ(c.level_has_attn, (std::vector<bool>{false, false, false, false, true}));
  EXPECT_TRUE(c.mid_attn);
  EXPECT_EQ(c.has_encoder, GetParam() != "mini");
  EXPECT_EQ(c.num_phi, 4);
}

TEST_P(VqvaeGolden, AccumulateAndNextMap) {
  const GoldenCase gc = load_case(GetParam());
  const Vqvae& vae = golden_vae(GetParam());
  const int K = static_cast<int>(gc.patch_nums.size());
  const int64_t HW = gc.patch_nums.back(), C = vae.config().cvae;
  for (const std::string run : {"forced", "greedy"}) {
    const int64_t B = gc.golden.at(run + ".idx.0").dim(0);
    std::vector<float> f_hat(static_cast<size_t>(B * C * HW * HW), 0.0f);
    double worst_fhat = 0, worst_next = 0;  // max over scales of err / max|ref|
    for (int k = 0; k < K; ++k) {
      const Tensor& idx = gc.golden.at(cat(run, ".idx.", k), {B, gc.patch_nums[k] * gc.patch_nums[k]});
      vae.accumulate_scale(gc.patch_nums, k, test::host_span(idx.data<int64_t>(), idx.numel()), B,
                           test::host_span(f_hat.data(), static_cast<int64_t>(f_hat.size())));
      const auto [err, mag] = compare(f_hat.data(), gc.golden.at(cat(run, ".fhat.", k), {B, C, HW, HW}));
      EXPECT_LE(err, 1e-5 * mag) << gc.name << " " << run << ".fhat." << k << " (max |ref| " << mag << ")";
      worst_fhat = std::max(worst_fhat, err / mag);
      if (k + 1 < K) {
        const int64_t pn = gc.patch_nums[k + 1];
        std::vector<float> next(static_cast<size_t>(B * C * pn * pn));
        vae.next_map(test::host_span(f_hat.data(), static_cast<int64_t>(f_hat.size())), B, HW, pn,
                     test::host_span(next.data(), static_cast<int64_t>(next.size())));
        const auto [e2, m2] = compare(next.data(), gc.golden.at(cat(run, ".next_map.", k), {B, C, pn, pn}));
        EXPECT_LE(e2, 1e-5 * m2) << gc.name << " " << run << ".next_map." << k << " (max |ref| " << m2 << ")";
        worst_next = std::max(worst_next, e2 / m2);
      }
    }
    std::printf("[   info   ] %s %s: max err / max|ref| fhat %.2e, next_map %.2e (limit 1e-5)\n", gc.name.c_str(),
                run.c_str(), worst_fhat, worst_next);
  }
}

TEST_P(VqvaeGolden, DecodeImages) {
  const GoldenCase gc = load_case(GetParam());
  const Vqvae& vae = golden_vae(GetParam());
  const int K = static_cast<int>(gc.patch_nums.size());
  for (const std::string run : {"forced", "greedy"}) {
    const Tensor& ref = gc.golden.at(run + ".image");
    const Tensor img = vae.decode(gc.golden.at(cat(run, ".fhat.", K - 1)));
    ASSERT_EQ(img.shape(), ref.shape());
    const auto [err, mag] = compare(img.data<float>(), ref);
    EXPECT_LE(err, 1e-4) << gc.name << " " << run << ".image";
    EXPECT_LE(mag, 1.0);
    std::printf("[   info   ] %s %s.image: max abs err %.2e (limit 1e-4)\n", gc.name.c_str(), run.c_str(), err);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, VqvaeGolden, ::testing::ValuesIn(golden_cases()));

}  // namespace
}  // namespace amskv
