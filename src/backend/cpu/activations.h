// Elementwise activations on float32 arrays: vectorized (polynomial exp), OpenMP-parallel for large arrays.
//
// Threading in the CPU kernels: GEMMs run on OpenBLAS's threads (the OpenMP build, so they share the OpenMP
// pool with these loops and nothing spins against anything); the loops here use `omp parallel` only above a
// size threshold, because on two cores a parallel region costs ~tens of µs and each barrier is exposed to any
// other load on the machine. Elementwise work is ~3% of the VQVAE decoder.
#pragma once
#include <bit>
#include <cstdint>

namespace amskv::cpu {

namespace detail {
// Range reduction x = n·ln2 + r, |r| <= ln2/2, then a degree-6 Taylor/minimax polynomial for e^r and a scale by
// 2^n through the exponent bits. Plain arithmetic so that the loops below vectorize.
inline float exp_kernel(float x) {
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.7f ? 88.7f : x;
  // Round to nearest through the 1.5·2^23 trick (exact for |x·log2e| < 2^22; vectorizes everywhere).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  // ln2 split in a high part with few mantissa bits (exact products) and a low correction.
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  // e^r on [-0.3466, 0.3466]: Cephes-style coefficients.
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n for n in [-126, 128): the float with exponent field n + 127 (n = 128 only for x in [88.38, 88.7],
  // handled by splitting the scale in two).
  const int ni = static_cast<int>(n);
  const int n1 = ni >> 1, n2 = ni - n1;
  const float s1 = std::bit_cast<float>(static_cast<uint32_t>(n1 + 127) << 23);
  const float s2 = std::bit_cast<float>(static_cast<uint32_t>(n2 + 127) << 23);
  return p * s1 * s2;
}

inline float silu_kernel(float x) { return x / (1.0f + exp_kernel(-x)); }

inline float gelu_tanh_kernel(float x) {
  const float k0 = 0.7978845608028654f;  // sqrt(2/pi)
  const float u = k0 * (x + 0.044715f * x * x * x);
  // tanh(u) = 1 - 2/(e^{2u} + 1); e^{2u} saturates cleanly through the clamp in exp_kernel.
  const float t = 1.0f - 2.0f / (exp_kernel(2.0f * u) + 1.0f);
  return 0.5f * x * (1.0f + t);
}

}  // namespace detail

// e^x in float, within ~1e-7 relative over [-87.3, 88.7] (inputs are clamped to that range); plain arithmetic,
// so loops calling it vectorize. Used by the array functions below and available to other kernels (softmax).
inline float fast_exp(float x) { return detail::exp_kernel(x); }
inline float silu_scalar(float x) { return detail::silu_kernel(x); }
inline float gelu_tanh_scalar(float x) { return detail::gelu_tanh_kernel(x); }

// x·sigmoid(x) = x / (1 + e^-x), in place or out of place (x == y allowed).
void silu(float* x, int64_t n);
void silu(const float* x, float* y, int64_t n);

// GELU with the tanh approximation: 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))).
void gelu_tanh(float* x, int64_t n);
void gelu_tanh(const float* x, float* y, int64_t n);

}  // namespace amskv::cpu
