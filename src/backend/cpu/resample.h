// Spatial resampling of NCHW float32 planes, matching PyTorch's F.interpolate on the CPU:
// bicubic (align_corners=False, A = −0.75, no antialias), area (= adaptive average pooling) and nearest ×2.
#pragma once
#include <cstdint>
#include <vector>

namespace amskv::cpu {

// One output index of a 1-D bicubic resize: src = (in/out)·(o + 0.5) − 0.5 (computed in double, not clamped),
// base = floor(src) (at most in − 1), t = src − base clamped to [0, 1]; taps base−1 .. base+2 clamped to [0, in−1]
// with weights W2(t+1), W1(t), W1(1−t), W2(2−t) (cubic convolution, A = −0.75).
struct CubicTaps {
  double src = 0;
  int64_t index[4] = {0, 0, 0, 0};
  double weight[4] = {0, 0, 0, 0};
};
std::vector<CubicTaps> bicubic_taps(int64_t in, int64_t out);

// One output index of adaptive average pooling: input range [start, end) with start = floor(i·in/out),
// end = ceil((i+1)·in/out) (windows overlap when out does not divide in).
struct AreaWindow {
  int64_t start = 0, end = 0;
};
std::vector<AreaWindow> area_windows(int64_t in, int64_t out);

// x [planes, in_h, in_w] -> y [planes, out_h, out_w] (planes = batch·channels). Separable: along x first
// (for every input row), then along y; float accumulation in tap order.
void bicubic_resize(const float* x, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w,
                    float* y);

// Adaptive average pooling (F.interpolate(mode='area') / adaptive_avg_pool2d): each output is the mean over its
// 2-D window (sum in double).
void area_resize(const float* x, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w, float* y);

// Nearest-neighbour ×2: y[p, 2i+a, 2j+b] = x[p, i, j]; y is [planes, 2h, 2w].
// With pad > 0, y is written as zero-padded planes [planes, 2h + 2·pad, 2w + 2·pad] (the input layout of
// cpu::conv2d_padded).
void nearest_upsample2x(const float* x, int64_t planes, int64_t h, int64_t w, float* y, int64_t pad = 0);

}  // namespace amskv::cpu
