// Error checking for the CUDA runtime and cuBLASLt: every call's status is checked and a failure becomes an
// amskv::Error naming the call and what the runtime said (never an abort).
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include "core/error.h"

namespace amskv::backend::cuda {

[[noreturn]] inline void cuda_fail(cudaError_t e, const char* what, const char* file, int line) {
  fail("CUDA error in ", what, " (", file, ":", line, "): ", cudaGetErrorName(e), ": ", cudaGetErrorString(e));
}

[[noreturn]] inline void cublas_fail(cublasStatus_t s, const char* what, const char* file, int line) {
  fail("cuBLASLt error in ", what, " (", file, ":", line, "): status ", static_cast<int>(s));
}

}  // namespace amskv::backend::cuda

#define AMSKV_CUDA_CHECK(call)                                                                       \
  do {                                                                                               \
    const cudaError_t amskv_status_ = (call);                                                        \
    if (amskv_status_ != cudaSuccess) ::amskv::backend::cuda::cuda_fail(amskv_status_, #call, __FILE__, __LINE__); \
  } while (0)

#define AMSKV_CUBLAS_CHECK(call)                                                                       \
  do {                                                                                                 \
    const cublasStatus_t amskv_status_ = (call);                                                       \
    if (amskv_status_ != CUBLAS_STATUS_SUCCESS)                                                        \
      ::amskv::backend::cuda::cublas_fail(amskv_status_, #call, __FILE__, __LINE__);                   \
  } while (0)

// After a kernel launch: launch configuration errors surface here, not at the next sync.
#define AMSKV_CUDA_LAUNCHED() AMSKV_CUDA_CHECK(cudaGetLastError())
