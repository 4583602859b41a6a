#include "core/tensor.h"

#include <cstring>
#include <sstream>

namespace amskv {

std::string shape_str(const Shape& s) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < s.size(); ++i) out << (i ? ", " : "") << s[i];
  out << ']';
  return out.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Tensor Tensor::zeros(DType dtype, Shape shape) {
  for (int64_t d : shape) AMSKV_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  const size_t bytes = t.nbytes();
  // 64-byte aligned so that vector loads never straddle cache lines.
  auto* buf = static_cast<unsigned char*>(::operator new[](bytes ? bytes : 1, std::align_val_t{64}));
  std::memset(buf, 0, bytes);
  t.owner_ = std::shared_ptr<const void>(buf, [](const void* p) {
    ::operator delete[](const_cast<void*>(p), std::align_val_t{64});
  });
  t.data_ = buf;
  t.writable_ = true;
  return t;
}

Tensor Tensor::view(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> owner) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.data_ = data;
  t.owner_ = std::move(owner);
  t.writable_ = false;
  return t;
}

Tensor Tensor::reshaped(Shape shape) const {
  AMSKV_CHECK(shape_numel(shape) == numel(), "cannot reshape ", shape_str(shape_), " to ", shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

namespace {
template <class Out, class Fn>
void convert_all(const Tensor& src, Out* dst, Fn&& cast) {
  const int64_t n = src.numel();
  switch (src.dtype()) {
    case DType::F32: { auto* p = static_cast<const float*>(src.raw()); for (int64_t i = 0; i < n; ++i) dst[i] = cast(p[i]); break; }
    case DType::F64: { auto* p = static_cast<const double*>(src.raw()); for (int64_t i = 0; i < n; ++i) dst[i] = cast(p[i]); break; }
    case DType::F16: { auto* p = static_cast<const uint16_t*>(src.raw()); for (int64_t i = 0; i < n; ++i) dst[i] = cast(half_to_float(p[i])); break; }
    case DType::BF16: { auto* p = static_cast<const uint16_t*>(src.raw()); for (int64_t i = 0; i < n; ++i) dst[i] = cast(bfloat16_to_float(p[i])); break; }
    case DType::I64: { auto* p = static_cast<const int64_t*>(src.raw()); for (int64_t i = 0; i < n; ++i) dst[i] = cast(p[i]); break; }
    case DType::I32: { auto* p = static_cast<const int32_t*>(src.raw()); for (int64_t i = 0; i < n; ++i) dst[i] = cast(p[i]); break; }
    case DType::I16: { auto* p = static_cast<const int16_t*>(src.raw()); for (int64_t i = 0; i < n; ++i) dst[i] = cast(p[i]); break; }
    case DType::I8: { auto* p = static_cast<const int8_t*>(src.raw()); for (int64_t i = 0; i < n; ++i) dst[i] = cast(p[i]); break; }
    case DType::U8:
    case DType::Bool: { auto* p = static_cast<const uint8_t*>(src.raw()); for (int64_t i = 0; i < n; ++i) dst[i] = cast(p[i]); break; }
  }
}
}  // namespace

Tensor Tensor::to_f32() const {
  if (dtype_ == DType::F32) return *this;
  Tensor out = zeros(DType::F32, shape_);
  convert_all(*this, out.mutable_data<float>(), [](auto v) { return static_cast<float>(v); });
  return out;
}

std::vector<double> Tensor::to_f64_vector() const {
  std::vector<double> out(static_cast<size_t>(numel()));
  convert_all(*this, out.data(), [](auto v) { return static_cast<double>(v); });
  return out;
}

}  // namespace amskv
