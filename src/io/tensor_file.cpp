#include "io/tensor_file.h"

#include "core/error.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "io/torch_checkpoint.h"
#include "io/zip_archive.h"

namespace amskv::io {

TensorMap load_tensor_file(const std::string& path) {
  MappedFile f = map_file(path);
  if (looks_like_zip(f.data, f.size) || looks_like_legacy_torch(f.data, f.size))
    return load_torch_checkpoint_from_memory(f.data, f.size, path, f.owner);
  try {
    return load_safetensors_from_memory(f.data, f.size, path, f.owner);
  } catch (const Error& e) {
    // A safetensors file starts with a small header length followed by '{'. If it does not, the safetensors
    // parser's complaint would only mislead.
    const bool plausible = f.size >= 9 && f.data[7] == 0 && f.data[6] == 0 && f.data[8] == '{';
    if (plausible) throw;
    fail(path, ": neither a PyTorch checkpoint nor a safetensors file");
  }
}

}  // namespace amskv::io
