#include "io/load_budget.h"

#include <algorithm>
#include <new>

namespace amskv::io {

LoadBudget::LoadBudget(const std::string& file, uint64_t file_size)
    : file_(file),
      file_size_(file_size),
      limit_(std::max(kFloorBytes, file_size > UINT64_MAX / kFileMultiple ? UINT64_MAX : file_size * kFileMultiple)) {}

Tensor LoadBudget::allocate(DType dtype, const Shape& shape, const std::string& key) {
  const uint64_t bytes = static_cast<uint64_t>(shape_numel(shape)) * dtype_size(dtype);  // callers checked overflow
  charge(bytes, "a copy of tensor '", key, "' (", dtype_name(dtype), " ", shape_str(shape), ")");
  try {
    return Tensor::zeros(dtype, shape);
  } catch (const std::bad_alloc&) {
    fail(file_, ": out of memory while loading (tensor '", key, "' needs ", bytes, " bytes)");
  }
}

}  // namespace amskv::io
