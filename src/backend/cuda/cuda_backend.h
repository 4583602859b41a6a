// The CUDA backend (NVIDIA GPUs): matrix products through cuBLASLt with fp32 accumulation, fused kernels for
// everything else, a flash-style attention kernel over the KV cache's segment list, the KV store and every
// activation in device memory, a caching allocator so per-scale buffers cost no cudaMalloc.
// This header is plain C++ so that the engine can create the backend without CUDA headers.
#pragma once
#include <memory>

#include "backend/backend.h"

namespace amskv::backend {

// compute: BF16 (default), F16 or F32 (golden-test mode: fp32 matrix products without TF32). Throws
// amskv::Error when no CUDA device is usable, naming what the runtime said.
std::unique_ptr<Backend> make_cuda_backend(int device, DType compute);

// Whether a CUDA device is present and usable (tests skip GPU cases when it is not).
bool cuda_device_available();

}  // namespace amskv::backend
