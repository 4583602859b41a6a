// Memory that lives on a backend's device. The model, the VQVAE, the KV store and the engine hold and pass
// these around and take sub-ranges of them, but never read or write the elements: only the backend that
// allocated the memory does (through raw()). On the CPU backend the memory is ordinary host memory; on the
// CUDA backend it is device memory that host code must not dereference.
#pragma once
#include <cstdint>
#include <memory>

#include "core/dtype.h"
#include "core/error.h"

namespace amskv::backend {

// A typed run of `size` elements. Cheap to copy; owns nothing.
class DeviceSpan {
 public:
  DeviceSpan() = default;
  DeviceSpan(void* data, DType dtype, int64_t size) : data_(data), dtype_(dtype), size_(size) {}

  DType dtype() const { return dtype_; }
  int64_t size() const { return size_; }
  size_t bytes() const { return static_cast<size_t>(size_) * dtype_size(dtype_); }
  bool empty() const { return size_ == 0; }

  // Elements [offset, offset + count) (count < 0: to the end), bounds-checked.
  DeviceSpan slice(int64_t offset, int64_t count = -1) const {
    if (count < 0) count = size_ - offset;
    AMSKV_CHECK(offset >= 0 && count >= 0 && offset + count <= size_, "device span: slice [", offset, ", ",
                offset + count, ") of ", size_, " elements");
    return {static_cast<char*>(data_) + static_cast<size_t>(offset) * dtype_size(dtype_), dtype_, count};
  }

  // For backends only: the address in the backend's memory space.
  void* raw() const { return data_; }

 private:
  void* data_ = nullptr;
  DType dtype_ = DType::F32;
  int64_t size_ = 0;
};

// Owns what a backend allocated (or keeps alive memory it wraps); freed when the last copy goes away.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(DeviceSpan span, std::shared_ptr<const void> holder) : span_(span), holder_(std::move(holder)) {}

  const DeviceSpan& span() const { return span_; }
  operator DeviceSpan() const { return span_; }  // NOLINT: a buffer is usable wherever a span is
  DeviceSpan slice(int64_t offset, int64_t count = -1) const { return span_.slice(offset, count); }
  DType dtype() const { return span_.dtype(); }
  int64_t size() const { return span_.size(); }
  size_t bytes() const { return span_.bytes(); }
  bool allocated() const { return holder_ != nullptr; }

 private:
  DeviceSpan span_;
  std::shared_ptr<const void> holder_;
};

}  // namespace amskv::backend
