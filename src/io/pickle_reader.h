// A restricted unpickler for the data.pkl of a torch state dict: an OrderedDict mapping names to
// torch._utils._rebuild_tensor_v2(persistent storage id, offset, size, stride, ...). Nothing from the file is
// ever executed: GLOBAL resolves only a fixed whitelist, and every other callable is refused.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/load_budget.h"

namespace amskv::io {

// Torch writes storage keys as small decimal numbers and locations as "cpu" or "cuda:N"; longer strings are
// refused, so that a persistent id cannot carry megabytes.
constexpr size_t kMaxStorageString = 4096;

// A storage as a persistent id ('storage', type, key, location, numel) names it; its bytes live in the zip
// entry `<root>/data/<key>`. Every storage appears once, however many tensors view it (tied weights), so its
// strings are never copied per tensor.
struct PickledStorage {
  std::string key;       // e.g. "17"
  std::string type;      // torch storage class, e.g. "FloatStorage"
  std::string location;  // e.g. "cpu" or "cuda:0" (irrelevant to us)
  int64_t numel = 0;     // elements of the storage type
};

// One tensor of the state dict, as the pickle describes it.
struct PickledTensor {
  std::string key;             // state-dict name, e.g. "blocks.0.attn.mat_qkv.weight"
  size_t storage = 0;          // index into PickledStateDict::storages
  int64_t storage_offset = 0;  // in elements
  Shape size;
  Shape stride;  // in elements
};

struct PickledStateDict {
  std::vector<PickledStorage> storages;
  std::vector<PickledTensor> tensors;  // in insertion order, keys unique
};

// Unpickles `pickle` (protocols 2..5 opcodes as torch emits them). `file` names the checkpoint in errors;
// what the unpickler keeps (objects, strings, entries) is charged to `budget`. Throws amskv::Error on
// malformed input, non-whitelisted globals, a top-level object that is not a flat mapping of names to
// tensors, a key that appears twice (Python would keep the last silently), one storage key declared with
// two types or sizes, storage strings above kMaxStorageString, and input that would exceed the budget.
PickledStateDict read_state_dict_pickle(std::span<const uint8_t> pickle, const std::string& file, LoadBudget& budget);

}  // namespace amskv::io
