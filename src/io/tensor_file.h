// One entry point for weight files: sniffs the content, not the extension.
#pragma once
#include <string>

#include "io/tensor_map.h"

namespace amskv::io {

// PK\3\4 -> PyTorch zip checkpoint; the legacy torch magic -> a clear "re-save" error; otherwise a
// safetensors file if its header parses; otherwise "<file>: neither a PyTorch checkpoint nor a safetensors
// file". Throws amskv::Error naming the file.
TensorMap load_tensor_file(const std::string& path);

}  // namespace amskv::io
