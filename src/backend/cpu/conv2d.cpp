#include "backend/cpu/conv2d.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "backend/cpu/gemm.h"
#include "core/error.h"

namespace amskv::cpu {

namespace {

// Output columns per shifted-GEMM band: the band's accumulator [cout, n] stays in cache across the taps.
constexpr int64_t kBandCols = 4096;
// Maps with at most this many output positions and batch > 1 go through one batched im2col GEMM.
constexpr int64_t kBatchedMaxPositions = 1024;
// Copies and stores of fewer elements than this stay on the calling thread.
constexpr int64_t kParallelMin = int64_t{1} << 18;

struct Scratch {
  std::unique_ptr<float[]> data;
  size_t size = 0;
  float* get(size_t n) {
    if (n > size) {
      data.reset();
      data = std::make_unique_for_overwrite<float[]>(n);
      size = n;
    }
    return data.get();
  }
};

thread_local Scratch t_cols;   // im2col columns
thread_local Scratch t_acc;    // GEMM accumulator bands
thread_local Scratch t_pad;    // padded input copies
thread_local Scratch t_taps;   // regrouped weights

void check_params(const Conv2dParams& p, int64_t batch, int64_t h, int64_t w) {
  AMSKV_CHECK(p.weight && p.cin > 0 && p.cout > 0 && p.kh > 0 && p.kw > 0 && p.pad >= 0,
              "conv2d: invalid parameters (cin ", p.cin, ", cout ", p.cout, ", kernel ", p.kh, "x", p.kw, ", pad ",
              p.pad, ")");
  AMSKV_CHECK(batch >= 0 && h > 0 && w > 0 && conv2d_out_size(h, p.kh, p.pad) > 0 &&
                  conv2d_out_size(w, p.kw, p.pad) > 0,
              "conv2d: invalid input size ", h, "x", w, " for a ", p.kh, "x", p.kw, " kernel with padding ", p.pad);
}

// im2col rows for one image: col[k][oy·ow + ox] = x[ci, oy + ky − pad, ox + kx − pad] (0 outside) with
// k = (ci·kh + ky)·kw + kx; `ld` is the row stride of col.
void im2col(const float* x, int64_t h, int64_t w, const Conv2dParams& p, float* col, int64_t ld) {
  const int64_t K = p.cin * p.kh * p.kw;
  const int64_t oh = conv2d_out_size(h, p.kh, p.pad), ow = conv2d_out_size(w, p.kw, p.pad);
#pragma omp parallel for schedule(static) if (K * oh * ow >= kParallelMin)
  for (int64_t k = 0; k < K; ++k) {
    const int64_t kx = k % p.kw, ky = (k / p.kw) % p.kh, ci = k / (p.kw * p.kh);
    const float* plane = x + ci * h * w;
    float* dst = col + k * ld;
    const int64_t ox0 = std::clamp<int64_t>(p.pad - kx, 0, ow);
    const int64_t ox1 = std::clamp<int64_t>(w + p.pad - kx, ox0, ow);
    for (int64_t oy = 0; oy < oh; ++oy, dst += ow) {
      const int64_t iy = oy + ky - p.pad;
      if (iy < 0 || iy >= h) {
        std::memset(dst, 0, sizeof(float) * static_cast<size_t>(ow));
        continue;
      }
      const float* srow = plane + iy * w + (kx - p.pad);
      for (int64_t ox = 0; ox < ox0; ++ox) dst[ox] = 0.0f;
      std::memcpy(dst + ox0, srow + ox0, sizeof(float) * static_cast<size_t>(ox1 - ox0));
      for (int64_t ox = ox1; ox < ow; ++ox) dst[ox] = 0.0f;
    }
  }
}

// dst[i] (+)= src[i] + bias for i < n.
inline void store_row(const float* src, float* dst, int64_t n, float bias, bool accumulate) {
  if (accumulate) {
    for (int64_t i = 0; i < n; ++i) dst[i] += src[i] + bias;
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] + bias;
  }
}

}  // namespace

int64_t conv2d_out_size(int64_t in, int64_t k, int64_t pad) { return in + 2 * pad - k + 1; }

std::vector<float> pack_conv_taps(const float* weight, int64_t cout, int64_t cin, int64_t kh, int64_t kw) {
  const int64_t T = kh * kw;
  std::vector<float> taps(static_cast<size_t>(T * cout * cin));
  for (int64_t co = 0; co < cout; ++co)
    for (int64_t ci = 0; ci < cin; ++ci)
      for (int64_t t = 0; t < T; ++t) taps[static_cast<size_t>((t * cout + co) * cin + ci)] = weight[(co * cin + ci) * T + t];
  return taps;
}

void conv2d_padded(const float* xp, int64_t batch, int64_t h, int64_t w, const Conv2dParams& p, float* y,
                   bool accumulate) {
  check_params(p, batch, h, w);
  if (batch == 0) return;
  const int64_t hp = h + 2 * p.pad, wp = w + 2 * p.pad;
  const int64_t oh = conv2d_out_size(h, p.kh, p.pad), ow = conv2d_out_size(w, p.kw, p.pad);
  const int64_t T = p.kh * p.kw;
  const float* taps = p.taps;
  if (!taps) {
    float* t = t_taps.get(static_cast<size_t>(T * p.cout * p.cin));
    for (int64_t co = 0; co < p.cout; ++co)
      for (int64_t ci = 0; ci < p.cin; ++ci)
        for (int64_t k = 0; k < T; ++k) t[(k * p.cout + co) * p.cin + ci] = p.weight[(co * p.cin + ci) * T + k];
    taps = t;
  }
  const int64_t band = std::clamp<int64_t>(kBandCols / wp, 1, oh);
  float* acc = t_acc.get(static_cast<size_t>(p.cout * band * wp));
  const int64_t in_plane = p.cin * hp * wp, out_plane = p.cout * oh * ow;
  for (int64_t b = 0; b < batch; ++b) {
    const float* xb = xp + b * in_plane;
    float* yb = y + b * out_plane;
    for (int64_t r0 = 0; r0 < oh; r0 += band) {
      const int64_t rows = std::min(band, oh - r0);
      // Positions q = r·wp + ox for r < rows; the last row stops at its last valid column so that no tap reads
      // past the padded plane.
      const int64_t n = (rows - 1) * wp + ow;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t ky = t / p.kw, kx = t % p.kw;
        gemm(false, false, p.cout, n, p.cin, 1.0f, taps + t * p.cout * p.cin, p.cin, xb + (r0 + ky) * wp + kx,
             hp * wp, t ? 1.0f : 0.0f, acc, n);
      }
#pragma omp parallel for schedule(static) if (p.cout * n >= kParallelMin)
      for (int64_t co = 0; co < p.cout; ++co) {
        const float bias = p.bias ? p.bias[co] : 0.0f;
        for (int64_t r = 0; r < rows; ++r)
          store_row(acc + co * n + r * wp, yb + co * oh * ow + (r0 + r) * ow, ow, bias, accumulate);
      }
    }
  }
}

void conv2d(const float* x, int64_t batch, int64_t h, int64_t w, const Conv2dParams& p, float* y, bool accumulate) {
  check_params(p, batch, h, w);
  if (batch == 0) return;
  const int64_t oh = conv2d_out_size(h, p.kh, p.pad), ow = conv2d_out_size(w, p.kw, p.pad);
  const int64_t K = p.cin * p.kh * p.kw;
  const int64_t in_plane = p.cin * h * w, out_plane = p.cout * oh * ow, P = oh * ow;

  if (p.kh == 1 && p.kw == 1 && p.pad == 0) {
    // y_b[cout, P] = W[cout, cin] · x_b[cin, P]; bias folded in first so that the GEMM accumulates onto it.
    for (int64_t b = 0; b < batch; ++b) {
      float* yb = y + b * out_plane;
      if (p.bias) {
#pragma omp parallel for schedule(static) if (p.cout * P >= kParallelMin)
        for (int64_t co = 0; co < p.cout; ++co) {
          float* d = yb + co * P;
          const float bv = p.bias[co];
          if (accumulate) {
            for (int64_t i = 0; i < P; ++i) d[i] += bv;
          } else {
            for (int64_t i = 0; i < P; ++i) d[i] = bv;
          }
        }
      }
      const float beta = (accumulate || p.bias) ? 1.0f : 0.0f;
      gemm(false, false, p.cout, P, K, 1.0f, p.weight, K, x + b * in_plane, P, beta, yb, P);
    }
    return;
  }

  if (batch > 1 && P <= kBatchedMaxPositions) {
    // Small maps: cols [K, batch·P] -> acc [cout, batch·P] in one GEMM, then scattered to NCHW.
    const int64_t N = batch * P;
    float* col = t_cols.get(static_cast<size_t>(K * N));
    for (int64_t b = 0; b < batch; ++b) im2col(x + b * in_plane, h, w, p, col + b * P, N);
    float* acc = t_acc.get(static_cast<size_t>(p.cout * N));
    gemm(false, false, p.cout, N, K, 1.0f, p.weight, K, col, N, 0.0f, acc, N);
#pragma omp parallel for collapse(2) schedule(static) if (p.cout * N >= kParallelMin)
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t co = 0; co < p.cout; ++co)
        store_row(acc + co * N + b * P, y + b * out_plane + co * P, P, p.bias ? p.bias[co] : 0.0f, accumulate);
    return;
  }

  // Zero-pad into scratch, then the shifted GEMMs.
  const int64_t hp = h + 2 * p.pad, wp = w + 2 * p.pad;
  float* xp = t_pad.get(static_cast<size_t>(batch * p.cin * hp * wp));
#pragma omp parallel for schedule(static) if (batch * p.cin * hp * wp >= kParallelMin)
  for (int64_t pl = 0; pl < batch * p.cin; ++pl) {
    const float* s = x + pl * h * w;
    float* d = xp + pl * hp * wp;
    std::memset(d, 0, sizeof(float) * static_cast<size_t>(p.pad * wp));
    for (int64_t r = 0; r < h; ++r) {
      float* dr = d + (r + p.pad) * wp;
      for (int64_t c = 0; c < p.pad; ++c) dr[c] = dr[p.pad + w + c] = 0.0f;
      std::memcpy(dr + p.pad, s + r * w, sizeof(float) * static_cast<size_t>(w));
    }
    std::memset(d + (p.pad + h) * wp, 0, sizeof(float) * static_cast<size_t>(p.pad * wp));
  }
  conv2d_padded(xp, batch, h, w, p, y, accumulate);
}

void conv2d_release_scratch() {
  t_cols = Scratch{};
  t_acc = Scratch{};
  t_pad = Scratch{};
  t_taps = Scratch{};
}

}  // namespace amskv::cpu
