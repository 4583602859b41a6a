// The CPU backend's memory is host memory, so tests can hand it host arrays as device spans.
#pragma once
#include <cstdint>
#include <type_traits>

#include "backend/cpu/cpu_backend.h"

namespace amskv::test {

inline backend::CpuBackend& cpu() {
  static backend::CpuBackend backend;
  return backend;
}

template <class T>
backend::DeviceSpan host_span(T* data, int64_t count) {
  using U = std::remove_const_t<T>;
  static_assert(std::is_same_v<U, float> || std::is_same_v<U, int64_t>, "host_span: float or int64 arrays");
  return {const_cast<U*>(data), std::is_same_v<U, float> ? DType::F32 : DType::I64, count};
}

}  // namespace amskv::test
