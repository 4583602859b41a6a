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
    // A safetensors file has its JSON header right after the 8-byte header length; with a '{' there, the
    // safetensors reader's complaint is the one that says what is wrong (a header length of 2^63, say).
    const bool plausible = f.size >= 9 && f.data[8] == '{';
    if (plausible) throw;
    // Otherwise say both what the file is not and why, without repeating the path.
    std::string why = e.what();
    if (why.compare(0, path.size() + 2, path + ": ") == 0) why.erase(0, path.size() + 2);
    fail(path, ": neither a PyTorch checkpoint nor a safetensors file (", why, ")");
  }
}

}  // namespace amskv::io
