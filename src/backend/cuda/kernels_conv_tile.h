// The tile of the implicit-GEMM 3×3 convolution, shared by its mma.sync kernel (kernels_conv.cu) and its
// wgmma kernel (kernels_conv_wgmma.cu): a block computes 160 output channels × 128 positions of two output
// rows (the wgmma kernel also 64 positions of four), 32 input channels per k step, from xs, the input rewritten position-major ([image][h + 2][w + 2][cin],
// zero border, the compute type).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"

namespace amskv::backend::cuda {

constexpr int kPositions = 128;          // output positions per block and row
constexpr int kRows = 2;                 // output rows per block
constexpr int kCouts = 160;              // output channels per block
constexpr int kChannels = 32;            // input channels per k step
constexpr int kWindow = kPositions + 2;  // input positions that 128 outputs of a 3-wide kernel read

// The mma.sync kernel's grid: (row pairs × 128-position stretches, output channel groups, images).
inline dim3 conv3x3_grid(int64_t batch, int64_t h, int64_t w, int64_t cout) {
  return dim3(static_cast<unsigned>(h / kRows * (w / kPositions)), static_cast<unsigned>(cout / kCouts),
              static_cast<unsigned>(batch));
}

// Whether the wgmma kernel runs on the current device (a build with sm_90a code, a 9.0 device, a driver with
// the tensor-map encoder).
bool conv3x3_wgmma_available();
// Whether it runs here and takes planes of h rows of w: w a multiple of 128 with h even (the mma.sync kernel's
// tiles), or w a multiple of 64 with h a multiple of 4.
bool conv3x3_wgmma_takes(int64_t h, int64_t w);
// y [batch][cout][h][w] (float32 or `t`) = (or +=) conv(xs) + bias, with the wgmma kernel; `xs` and `wk`
// (packed [cout][K] weights, taps then channels) of type `t` (BF16 or F16); channel counts as
// conv3x3_implicit_fits takes, planes as conv3x3_wgmma_takes, y 16-byte aligned (its rows leave shared memory
// by bulk copies).
void launch_conv3x3_wgmma(const void* xs, DType t, int64_t batch, int cin, int h, int w, const void* wk, int64_t K,
                          int cout, const float* bias, void* y, DType y_type, bool accumulate, cudaStream_t s);

}  // namespace amskv::backend::cuda
