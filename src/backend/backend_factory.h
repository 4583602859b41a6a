// Picks a backend from the user's choice (--device, --dtype, --kv-dtype, --threads).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"

namespace amskv::backend {

struct BackendOptions {
  std::string device = "cpu";  // cpu, cuda
  std::string dtype = "auto";  // auto (f32 on the CPU, bf16 on CUDA), f32, bf16, f16
  std::string kv_dtype = "auto";  // auto (the compute dtype) or int8 (Backend::kv_dtype)
  int threads = 0;             // CPU threads (0: every core)
  int gpu = 0;                 // CUDA device index
};

// Devices this build can run on ("cpu", and "cuda" when built with CUDA).
const std::vector<std::string>& available_devices();
// Throws amskv::Error naming the device or dtype when the build or the machine cannot provide it.
std::unique_ptr<Backend> make_backend(const BackendOptions& options);

}  // namespace amskv::backend
