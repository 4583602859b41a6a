// The backends besides the CPU that this build and machine can run, for tests that compare them with the CPU
// (operation conformance, golden runs). Empty on a machine without a GPU: those tests then do not
// instantiate (and say so), while the CPU runs every golden test on its own.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backend/backend_factory.h"
#ifdef AMSKV_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace amskv::test {

struct BackendUnderTest {
  std::string name;   // "cuda-f32", "cuda-bf16", "cuda-f16"
  std::string dtype;  // --dtype value
  DType compute = DType::F32;
  // Tolerance of max |got − ref| / max |ref| for a product-like result (inputs rounded to `compute`).
  double rel_tol = 1e-5;
};

inline std::vector<BackendUnderTest> other_backends() {
  std::vector<BackendUnderTest> out;
#ifdef AMSKV_HAVE_CUDA
  if (backend::cuda_device_available()) {
    out.push_back({"cuda-f32", "f32", DType::F32, 2e-5});
    out.push_back({"cuda-bf16", "bf16", DType::BF16, 2e-2});
    out.push_back({"cuda-f16", "f16", DType::F16, 4e-3});
  }
#endif
  return out;
}

inline std::unique_ptr<backend::Backend> make_backend_under_test(const BackendUnderTest& b) {
  backend::BackendOptions o;
  o.device = "cuda";
  o.dtype = b.dtype;
  return backend::make_backend(o);
}

inline std::string backend_test_name(const ::testing::TestParamInfo<BackendUnderTest>& info) {
  std::string n = info.param.name;
  for (char& c : n)
    if (c == '-') c = '_';
  return n;
}

}  // namespace amskv::test
