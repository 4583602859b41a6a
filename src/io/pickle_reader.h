// A restricted unpickler for the data.pkl of a torch state dict: an OrderedDict mapping names to
// torch._utils._rebuild_tensor_v2(persistent storage id, offset, size, stride, ...). Nothing from the file is
// ever executed: GLOBAL resolves only a fixed whitelist, and every other callable is refused.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace amskv::io {

// One tensor of the state dict, as the pickle describes it; the storage bytes live in the zip entry
// `<root>/data/<storage_key>`.
struct PickledTensor {
  std::string key;           // state-dict name, e.g. "blocks.0.attn.mat_qkv.weight"
  std::string storage_key;   // e.g. "17"
  std::string storage_type;  // torch storage class, e.g. "FloatStorage"
  std::string location;      // e.g. "cpu" or "cuda:0" (irrelevant to us)
  int64_t storage_numel = 0;  // elements of the storage type
  int64_t storage_offset = 0;  // in elements
  Shape size;
  Shape stride;  // in elements
};

// Unpickles `pickle` (protocols 2..5 opcodes as torch emits them) and returns the state dict's tensors in
// insertion order (a repeated key keeps the last value, like Python). `file` names the checkpoint in errors.
// Throws amskv::Error on malformed input, non-whitelisted globals, or a top-level object that is not a
// flat mapping of names to tensors.
std::vector<PickledTensor> read_state_dict_pickle(std::span<const uint8_t> pickle, const std::string& file);

}  // namespace amskv::io
