// A typed n-d array that either owns its bytes or views bytes owned elsewhere (a memory-mapped
// checkpoint), kept alive by a shared handle. Row-major and contiguous: strided checkpoint tensors are
// made contiguous by the reader.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace amskv {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);  // "[2, 3, 4]"
int64_t shape_numel(const Shape& s);

class Tensor {
 public:
  Tensor() = default;

  // Owning, zero-filled.
  static Tensor zeros(DType dtype, Shape shape);
  // A view of bytes owned by `owner` (which must outlive the use of `data`).
  static Tensor view(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> owner);
  template <class T>
  static Tensor from_vector(Shape shape, const std::vector<T>& values) {
    Tensor t = zeros(dtype_of<T>(), std::move(shape));
    AMSKV_CHECK(static_cast<int64_t>(values.size()) == t.numel(), "Tensor::from_vector: ", values.size(),
                " values for shape ", shape_str(t.shape()));
    std::copy(values.begin(), values.end(), t.mutable_data<T>());
    return t;
  }

  bool defined() const { return data_ != nullptr || numel() == 0; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? i + ndim() : i); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool owns_data() const { return writable_; }

  const void* raw() const { return data_; }
  template <class T>
  const T* data() const {
    AMSKV_CHECK(dtype_ == dtype_of<T>(), "tensor of dtype ", dtype_name(dtype_), " read as ",
                dtype_name(dtype_of<T>()));
    return static_cast<const T*>(data_);
  }
  template <class T>
  T* mutable_data() {
    AMSKV_CHECK(writable_, "tensor is a read-only view");
    return const_cast<T*>(data<T>());
  }

  // A float32 copy (or this tensor itself when it is float32 already); F16/BF16/F64/integers are converted.
  Tensor to_f32() const;
  // A float64 copy of any numeric tensor.
  std::vector<double> to_f64_vector() const;
  // Same bytes, new shape (numel must match).
  Tensor reshaped(Shape shape) const;

 private:
  DType dtype_ = DType::F32;
  Shape shape_;
  const void* data_ = nullptr;
  std::shared_ptr<const void> owner_;
  bool writable_ = false;
};

}  // namespace amskv
