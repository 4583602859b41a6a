#include "io/tensor_map.h"

#include <new>

namespace amskv::io {

const Tensor& TensorMap::at(const std::string& key) const {
  auto it = tensors_.find(key);
  if (it == tensors_.end()) fail(source_, ": missing key ", key);
  return it->second;
}

const Tensor& TensorMap::at(const std::string& key, const Shape& expected) const {
  const Tensor& t = at(key);
  bool ok = t.ndim() == static_cast<int>(expected.size());
  for (size_t i = 0; ok && i < expected.size(); ++i) ok = expected[i] < 0 || expected[i] == t.shape()[i];
  if (!ok) fail(source_, ": key ", key, " has shape ", shape_str(t.shape()), ", expected ", shape_str(expected));
  return t;
}

const Tensor& TensorMap::weight(const std::string& key, const Shape& expected) const {
  const Tensor& t = at(key, expected);
  const DType d = t.dtype();
  if (d != DType::F32 && d != DType::F16 && d != DType::BF16 && d != DType::F64)
    fail(source_, ": key ", key, " has dtype ", dtype_name(d), ", expected floating point (F32, F16, BF16 or F64)");
  return t;
}

Tensor TensorMap::f32(const std::string& key) const {
  const Tensor& t = at(key);
  try {
    return t.to_f32();
  } catch (const std::bad_alloc&) {
    fail(source_, ": out of memory while converting ", key, " to float32 (", static_cast<uint64_t>(t.numel()) * 4,
         " bytes needed)");
  }
}

}  // namespace amskv::io
