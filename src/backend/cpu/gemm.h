// Matrix products on the CPU through BLAS (OpenBLAS, multi-threaded). Row-major everywhere.
#pragma once
#include <cstdint>

namespace amskv::cpu {

// y[rows, out] = x[rows, in] · W[out, in]ᵀ (+ bias[out]); the layout of PyTorch's nn.Linear weights.
void linear(const float* x, int64_t rows, int64_t in, const float* weight, const float* bias, int64_t out, float* y);

// C[m, n] = alpha · op(A) · op(B) + beta · C, row-major, with leading dimensions.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace amskv::cpu
