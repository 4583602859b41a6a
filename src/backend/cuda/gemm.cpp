#include "backend/cuda/gemm.h"

#include <algorithm>
#include <cstdio>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace amskv::backend::cuda {

namespace {

size_t type_size(cudaDataType_t t) { return t == CUDA_R_32F ? 4 : 2; }
DType dtype_of(cudaDataType_t t) { return t == CUDA_R_32F ? DType::F32 : (t == CUDA_R_16BF ? DType::BF16 : DType::F16); }

// The largest power of two (at most 256) dividing the address and every column or batch step of a matrix:
// cuBLASLt assumes 256-byte alignment unless told otherwise, and kernels that assume more than the data has
// would read wrong addresses.
uint32_t alignment(const void* p, int64_t ld, int64_t stride, size_t esize) {
  uint64_t v = reinterpret_cast<uintptr_t>(p) | (static_cast<uint64_t>(ld) * esize) |
               (static_cast<uint64_t>(stride) * esize) | 256u;
  return static_cast<uint32_t>(v & (~v + 1));
}

template <class T>
void set_attr(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const T& v) {
  AMSKV_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, a, &v, sizeof v));
}

cublasLtMatrixLayout_t layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, int batch, int64_t stride) {
  cublasLtMatrixLayout_t l = nullptr;
  AMSKV_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld));
  if (batch > 1) {
    const int32_t count = batch;
    AMSKV_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count));
    AMSKV_CUBLAS_CHECK(
        cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride));
  }
  return l;
}

}  // namespace

struct Gemm::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool has_algo = false;
  ~Plan() {
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

Gemm::Gemm(cudaStream_t stream, size_t workspace_bytes) : stream_(stream), workspace_bytes_(workspace_bytes) {
  AMSKV_CUBLAS_CHECK(cublasLtCreate(&handle_));
  AMSKV_CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
}

Gemm::~Gemm() {
  plans_.clear();
  if (workspace_) cudaFree(workspace_);
  if (handle_) cublasLtDestroy(handle_);
}

Gemm::Plan& Gemm::plan_for(const GemmCall& c, bool with_bias, bool with_gelu) {
  const size_t ab = type_size(c.ab_type), dd = type_size(c.d_type);
  const uint32_t al_a = alignment(c.a, c.lda, c.stride_a, ab), al_b = alignment(c.b, c.ldb, c.stride_b, ab),
                 al_d = alignment(c.d, c.ldd, c.stride_d, dd);
  const Key key{c.trans_a, c.trans_b, c.m, c.n, c.k, c.lda, c.ldb, c.ldd, c.stride_a, c.stride_b, c.stride_d, c.batch,
                static_cast<int>(c.ab_type), static_cast<int>(c.d_type), c.beta != 0.0f, with_bias,
                static_cast<int>(al_a), static_cast<int>(al_b), static_cast<int>(al_d), static_cast<int>(c.bias_type),
                with_gelu};
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;

  auto p = std::make_unique<Plan>();
  AMSKV_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  set_attr(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, c.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N);
  set_attr(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, c.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N);
  const cublasLtEpilogue_t epilogue = with_bias ? (with_gelu ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_BIAS)
                                                : (with_gelu ? CUBLASLT_EPILOGUE_GELU : CUBLASLT_EPILOGUE_DEFAULT);
  if (epilogue != CUBLASLT_EPILOGUE_DEFAULT) set_attr(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue);
  if (with_bias) set_attr(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, static_cast<int32_t>(c.bias_type));
  p->a = layout(c.ab_type, c.trans_a ? c.k : c.m, c.trans_a ? c.m : c.k, c.lda, c.batch, c.stride_a);
  p->b = layout(c.ab_type, c.trans_b ? c.n : c.k, c.trans_b ? c.k : c.n, c.ldb, c.batch, c.stride_b);
  p->d = layout(c.d_type, c.m, c.n, c.ldd, c.batch, c.stride_d);

  cublasLtMatmulPreference_t pref = nullptr;
  AMSKV_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = workspace_bytes_;
  AMSKV_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  for (auto [attr, value] : {std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, al_a},
                             std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, al_b},
                             std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, al_d},
                             std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, al_d}})
    AMSKV_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof value));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t s =
      cublasLtMatmulAlgoGetHeuristic(handle_, p->desc, p->a, p->b, p->d, p->d, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s == CUBLAS_STATUS_SUCCESS && found > 0) {
    p->algo = result.algo;
    p->has_algo = true;
  }
  return *plans_.emplace(key, std::move(p)).first->second;
}

void Gemm::run(const GemmCall& c) {
  if (c.m == 0 || c.n == 0 || c.batch == 0) return;
  // The fused epilogue when an algorithm takes it; else the product with what it does take, and kernels for
  // the rest (bias before GELU, as the epilogue orders them).
  const bool bias = c.bias != nullptr;
  bool bias_by_kernel = false, gelu_by_kernel = false;
  Plan* p = &plan_for(c, bias, c.gelu_tanh);
  if (!p->has_algo && c.gelu_tanh) {
    p = &plan_for(c, bias, false);
    gelu_by_kernel = true;
  }
  if (!p->has_algo && bias) {
    p = &plan_for(c, false, false);
    bias_by_kernel = true;
    gelu_by_kernel = c.gelu_tanh;
  }
  if (!p->has_algo)
    fail("cuBLASLt has no algorithm for a ", c.m, "x", c.n, "x", c.k, " product (batch ", c.batch, ")");
  if (bias_by_kernel && bias_fallbacks_ == 0)
    std::fprintf(stderr, "amskv: note: cuBLASLt offers no bias epilogue for a %lldx%lldx%lld product; the bias is "
                         "added by a separate kernel\n", static_cast<long long>(c.m), static_cast<long long>(c.n),
                 static_cast<long long>(c.k));
  if (bias && !bias_by_kernel) set_attr(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, c.bias);
  AMSKV_CUBLAS_CHECK(cublasLtMatmul(handle_, p->desc, &c.alpha, c.a, p->a, c.b, p->b, &c.beta, c.d, p->d, c.d, p->d,
                                    &p->algo, workspace_, workspace_bytes_, stream_));
  if (bias_by_kernel) add_bias(c);
  if (gelu_by_kernel) {
    AMSKV_CHECK(c.batch == 1 && c.ldd == c.m, "GELU after a strided or batched product");
    launch_gelu_tanh(c.d, dtype_of(c.d_type), c.m * c.n, stream_);
  }
}

void Gemm::add_bias(const GemmCall& c) {
  AMSKV_CHECK(c.bias_type == CUDA_R_32F, "cuBLASLt has no bias epilogue for a ", c.m, "x", c.n, "x", c.k,
              " product with a 16-bit bias");
  launch_add_bias_columns(c.d, dtype_of(c.d_type), c.m, c.n, c.ldd, c.batch, c.stride_d, static_cast<const float*>(c.bias), stream_);
  ++bias_fallbacks_;
}

}  // namespace amskv::backend::cuda
