#include "backend/backend_factory.h"

#include "backend/cpu/cpu_backend.h"
#ifdef AMSKV_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace amskv::backend {

const std::vector<std::string>& available_devices() {
#ifdef AMSKV_HAVE_CUDA
  static const std::vector<std::string> devices = {"cpu", "cuda"};
#else
  static const std::vector<std::string> devices = {"cpu"};
#endif
  return devices;
}

namespace {
std::unique_ptr<Backend> make_device(const BackendOptions& o) {
  if (o.device == "cpu") {
    AMSKV_CHECK(o.dtype == "auto" || o.dtype == "f32", "--dtype ", o.dtype,
                ": the CPU backend computes in f32 only (reference-exact); use --device cuda for bf16/f16");
    return std::make_unique<CpuBackend>(o.threads);
  }
  if (o.device == "cuda") {
#ifdef AMSKV_HAVE_CUDA
    DType t = DType::BF16;
    if (o.dtype == "f32") t = DType::F32;
    else if (o.dtype == "f16") t = DType::F16;
    else AMSKV_CHECK(o.dtype == "auto" || o.dtype == "bf16", "--dtype ", o.dtype, " is not one of auto, f32, bf16, f16");
    return make_cuda_backend(o.gpu, t);
#else
    fail("--device cuda: this build of amskv has no CUDA backend (configure with CUDA available, "
         "-DAMSKV_CUDA=ON)");
#endif
  }
  fail("--device ", o.device, " is not one of cpu, cuda");
}
}  // namespace

std::unique_ptr<Backend> make_backend(const BackendOptions& o) {
  AMSKV_CHECK(o.kv_dtype == "auto" || o.kv_dtype == "int8", "--kv-dtype ", o.kv_dtype, " is not one of auto, int8");
  std::unique_ptr<Backend> b = make_device(o);
  b->set_kv_int8(o.kv_dtype == "int8");
  return b;
}

}  // namespace amskv::backend
