// Host time per CUDA runtime and cuBLASLt call, for finding where a small batch's issue path goes: an
// LD_PRELOAD library that wraps the calls the engine makes, times each (and the gap since the previous
// wrapped call, i.e. the engine's own code between them), and prints count, total, mean, p50, p90 and max per
// call at exit. Nsight Systems cannot trace on the GPU machine. CMake builds it with the benchmark programs
// when CUDA is found (bench/libamskv_host_api_times.so); where they are off (scripts/gpu_check.sh), g++ does:
//
//   g++ -shared -fPIC -O2 -I/usr/local/cuda/include bench/host_api_times.cpp -o /tmp/libhostapi.so -ldl
//   export HOST_API_TIMES=out.txt LD_PRELOAD=/tmp/libhostapi.so
//   build-gpu/amskv bench --device cuda --shapes d30 --batches 1 --policies full --reps 20 --warmup 2
//
// Totals include warm-up (lazy module loading puts ms-long outliers into the first calls); p50 is the
// steady state. Kernel launches are `__cudaLaunchKernel` (what nvcc's launch stubs call in CUDA 13).
#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct Samples {
  double total_ns = 0, max_ns = 0;
  std::vector<float> ns;
};
std::map<std::string, Samples>* samples;
std::mutex mutex;
thread_local double last_end = 0;

double now_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

void add(const char* name, double ns) {
  std::lock_guard<std::mutex> lock(mutex);
  if (!samples) samples = new std::map<std::string, Samples>;
  Samples& s = (*samples)[name];
  s.total_ns += ns, s.max_ns = std::max(s.max_ns, ns);
  s.ns.push_back(static_cast<float>(ns));
}

struct Report {
  ~Report() {
    if (!samples) return;
    const char* path = std::getenv("HOST_API_TIMES");
    FILE* f = path ? std::fopen(path, "w") : stderr;
    if (!f) f = stderr;
    std::fprintf(f, "%-36s %9s %11s %9s %9s %9s %10s\n", "call (gap> : host time before it)", "count", "total ms",
                 "mean us", "p50 us", "p90 us", "max us");
    for (auto& [name, s] : *samples) {
      std::sort(s.ns.begin(), s.ns.end());
      const double n = static_cast<double>(s.ns.size());
      std::fprintf(f, "%-36s %9zu %11.2f %9.2f %9.2f %9.2f %10.1f\n", name.c_str(), s.ns.size(), s.total_ns / 1e6,
                   s.total_ns / n / 1e3, s.ns[s.ns.size() / 2] / 1e3, s.ns[s.ns.size() * 9 / 10] / 1e3, s.max_ns / 1e3);
    }
    if (f != stderr) std::fclose(f);
  }
} report;

template <class F>
F real(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

}  // namespace

// Gaps over 2 ms are waits between runs, not issue work, and are left out.
#define AMSKV_WRAP(ret, name, params, args)                                  \
  extern "C" ret name params {                                               \
    static const auto fn = real<ret(*) params>(#name);                       \
    const double t0 = now_ns();                                              \
    if (last_end > 0 && t0 - last_end < 2e6) add("gap> " #name, t0 - last_end); \
    const ret r = fn args;                                                   \
    add(#name, now_ns() - t0);                                               \
    last_end = now_ns();                                                     \
    return r;                                                                \
  }

AMSKV_WRAP(cudaError_t, __cudaLaunchKernel, (cudaKernel_t k, dim3 g, dim3 b, void** a, size_t sm, cudaStream_t s),
           (k, g, b, a, sm, s))
AMSKV_WRAP(cudaError_t, cudaEventRecord, (cudaEvent_t e, cudaStream_t s), (e, s))
AMSKV_WRAP(cudaError_t, cudaMemcpyAsync, (void* d, const void* src, size_t n, cudaMemcpyKind k, cudaStream_t s),
           (d, src, n, k, s))
AMSKV_WRAP(cudaError_t, cudaMemsetAsync, (void* d, int v, size_t n, cudaStream_t s), (d, v, n, s))
AMSKV_WRAP(cudaError_t, cudaStreamSynchronize, (cudaStream_t s), (s))
AMSKV_WRAP(cudaError_t, cudaEventSynchronize, (cudaEvent_t e), (e))
AMSKV_WRAP(cudaError_t, cudaMalloc, (void** p, size_t n), (p, n))
AMSKV_WRAP(cudaError_t, cudaFree, (void* p), (p))
AMSKV_WRAP(cudaError_t, cudaGetLastError, (void), ())
AMSKV_WRAP(cudaError_t, cudaStreamIsCapturing, (cudaStream_t s, cudaStreamCaptureStatus* c), (s, c))
AMSKV_WRAP(cudaError_t, cudaStreamBeginCapture, (cudaStream_t s, cudaStreamCaptureMode m), (s, m))
AMSKV_WRAP(cudaError_t, cudaStreamEndCapture, (cudaStream_t s, cudaGraph_t* g), (s, g))
AMSKV_WRAP(cudaError_t, cudaGraphLaunch, (cudaGraphExec_t g, cudaStream_t s), (g, s))
AMSKV_WRAP(cudaError_t, cudaGraphExecUpdate, (cudaGraphExec_t e, cudaGraph_t g, cudaGraphExecUpdateResultInfo* i),
           (e, g, i))
AMSKV_WRAP(cublasStatus_t, cublasLtMatmul,
           (cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void* alpha, const void* A, cublasLtMatrixLayout_t Ad,
            const void* B, cublasLtMatrixLayout_t Bd, const void* beta, const void* C, cublasLtMatrixLayout_t Cd,
            void* D, cublasLtMatrixLayout_t Dd, const cublasLtMatmulAlgo_t* algo, void* ws, size_t ws_bytes,
            cudaStream_t s),
           (h, d, alpha, A, Ad, B, Bd, beta, C, Cd, D, Dd, algo, ws, ws_bytes, s))
AMSKV_WRAP(cublasStatus_t, cublasLtMatmulAlgoGetHeuristic,
           (cublasLtHandle_t h, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
            cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t dd, cublasLtMatmulPreference_t p, int requested,
            cublasLtMatmulHeuristicResult_t* results, int* found),
           (h, d, a, b, c, dd, p, requested, results, found))
AMSKV_WRAP(cublasStatus_t, cublasLtMatmulDescSetAttribute,
           (cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void* v, size_t n), (d, a, v, n))
