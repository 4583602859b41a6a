// Matrix products through cuBLASLt, column-major as cuBLAS sees them: D[m×n] = alpha·op(A)·op(B) + beta·D,
// optionally plus a float32 bias per row of D (the BIAS epilogue) and a tanh-GELU (the GELU epilogue, which
// saves the FFN a pass over its widest activation), batched with fixed strides. Compute in
// fp32 (CUBLAS_COMPUTE_32F: tensor cores with fp32 accumulation for bf16/f16 inputs, true fp32 without TF32
// for fp32 inputs). Descriptors and the heuristic's algorithm are cached per shape, types and alignment.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

namespace amskv::backend::cuda {

struct GemmCall {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  const void* a = nullptr;
  int64_t lda = 0, stride_a = 0;
  const void* b = nullptr;
  int64_t ldb = 0, stride_b = 0;
  void* d = nullptr;
  int64_t ldd = 0, stride_d = 0;
  cudaDataType_t ab_type = CUDA_R_16BF;  // A and B
  cudaDataType_t d_type = CUDA_R_32F;
  float alpha = 1.0f, beta = 0.0f;  // beta != 0 accumulates onto D
  const void* bias = nullptr;       // [m], added to every column
  cudaDataType_t bias_type = CUDA_R_32F;
  bool gelu_tanh = false;  // D = gelu(D) after the bias (cuBLASLt's GELU epilogue is the tanh form)
  int batch = 1;
};

class Gemm {
 public:
  Gemm(cudaStream_t stream, size_t workspace_bytes);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;
  void run(const GemmCall& call);
  // Products whose bias went through a separate kernel because no algorithm took the epilogue.
  int64_t bias_fallbacks() const { return bias_fallbacks_; }

 private:
  struct Plan;
  using Key = std::tuple<int, int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                         int64_t, int, int, int, bool, int, int, int, int, bool>;
  Plan& plan_for(const GemmCall& c, bool with_bias, bool with_gelu);
  void add_bias(const GemmCall& c);  // when no algorithm supports the bias epilogue for this call

  cublasLtHandle_t handle_ = nullptr;
  cudaStream_t stream_;
  void* workspace_ = nullptr;
  size_t workspace_bytes_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
  int64_t bias_fallbacks_ = 0;
};

}  // namespace amskv::backend::cuda
