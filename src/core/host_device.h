// Marks functions that CUDA kernels call as well as host code (the token draw's generator, the 8-bit KV
// rounding): the device's result must equal the CPU's.
#pragma once

#if defined(__CUDACC__)
#define AMSKV_HOST_DEVICE __host__ __device__
#else
#define AMSKV_HOST_DEVICE
#endif
