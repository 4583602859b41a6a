// Element types that checkpoints and dumps use.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace amskv {

enum class DType : uint8_t { F32, F64, F16, BF16, I64, I32, I16, I8, U8, Bool };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);  // safetensors spelling: "F32", "I64", ...
bool dtype_from_name(std::string_view name, DType& out);

float half_to_float(uint16_t h);
float bfloat16_to_float(uint16_t b);
uint16_t float_to_half(float f);      // round to nearest even
uint16_t float_to_bfloat16(float f);  // round to nearest even

bool is_floating(DType t);  // F32, F64, F16, BF16
// Converts n values between floating types (rounding to nearest even), or copies them when the types agree
// (any type). Throws amskv::Error for any other pair.
void convert_values(const void* src, DType from, void* dst, DType to, int64_t n);

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::U8; }

}  // namespace amskv
