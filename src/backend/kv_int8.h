// The 8-bit KV format (Backend::kv_dtype() == I8), shared by every backend so that they round alike: each
// K or V vector of one token and head is stored as integers q in [−127, 127] with one float32 scale,
// value = q·scale, scale = max|v| / 127. K vectors are unit vectors (q/k normalisation), so the step is at
// most 1/127 of the largest component; V gets the same per-vector treatment.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace amskv::kv_int8 {

constexpr float kLevels = 127.0f;

// The stored scale of a vector whose largest magnitude is `m`.
AMSKV_HOST_DEVICE inline float scale_for(float m) { return m / kLevels; }
// What the vector's values are multiplied by before rounding (0 for a zero vector: every q is 0).
AMSKV_HOST_DEVICE inline float inverse_for(float m) { return m > 0.0f ? kLevels / m : 0.0f; }
// Round to nearest, ties to even (the default rounding mode on both sides), then clamp. fmaxf and fminf
// return the other operand for a NaN, so a NaN value (or any value of a vector holding an infinity, whose
// inverse is 0) becomes a defined −127 alike on every backend rather than an undefined conversion.
AMSKV_HOST_DEVICE inline int8_t quantize(float x, float inverse) {
  return static_cast<int8_t>(fminf(fmaxf(rintf(x * inverse), -kLevels), kLevels));
}

}  // namespace amskv::kv_int8
