// The model amskv ships (weights/fashion-mnist: a Fashion-MNIST VAR, 10 classes, 32 px images), used when a
// command is given no checkpoint. Looked for beside the executable first, so that an installed or copied
// build finds its own copy, then in the source tree the build came from.
#pragma once
#include <string>
#include <vector>

namespace amskv::cli {

struct ShippedModel {
  std::string var_path, vae_path;
};

// The folders searched, in order: <exe dir>/../weights/fashion-mnist (a build folder inside the repository),
// <exe dir>/../share/amskv/weights/fashion-mnist (an install), <source dir>/weights/fashion-mnist.
std::vector<std::string> shipped_model_dirs();

// The first folder holding both var_fmnist.safetensors and vae_fmnist.safetensors; throws naming every folder
// it looked in when none does.
ShippedModel find_shipped_model();

}  // namespace amskv::cli
