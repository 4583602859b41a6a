// One entry point for weight files: sniffs the content, not the extension.
#pragma once
#include <string>

#include "io/tensor_map.h"

namespace amskv::io {

// PK\3\4 -> PyTorch zip checkpoint; the legacy torch magic -> a clear "re-save" error; otherwise a
// safetensors file: its own error when byte 8 opens its JSON header, else "<file>: neither a PyTorch
// checkpoint nor a safetensors file (<why not as safetensors>)". Throws amskv::Error naming the file;
// anything but a regular file is refused before it is opened.
TensorMap load_tensor_file(const std::string& path);

}  // namespace amskv::io
