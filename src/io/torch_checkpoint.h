// PyTorch checkpoints (torch.save zip format, PyTorch >= 1.6) holding a flat state dict of tensors.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "io/tensor_map.h"

namespace amskv::io {

// Maps `path` and reads its state dict. Contiguous, aligned tensors are zero-copy views into the mapping
// (which they keep alive); strided or unaligned ones are copied, within a LoadBudget of max(64 MiB, 4 x the
// file's size) for all copies and unpickling together. Throws amskv::Error naming the file, also for a key
// that appears twice and, instead of std::bad_alloc, when memory runs out.
TensorMap load_torch_checkpoint(const std::string& path);

// The same over bytes in memory. Views keep `owner` alive (it may be null when the caller guarantees that
// `data` outlives the tensors, as a fuzzer does). `name` is used for TensorMap::source and in errors.
TensorMap load_torch_checkpoint_from_memory(const uint8_t* data, size_t size, const std::string& name,
                                            std::shared_ptr<const void> owner);

// True for the legacy (pre-1.6) torch.save format, which starts with a pickled magic number.
bool looks_like_legacy_torch(const uint8_t* data, size_t size);

struct TorchSaveOptions {
  bool force_zip64 = false;  // write ZIP64 records even when not needed (for tests)
};

// Writes `tensors` (in order) as a state dict in the official zip format, loadable by torch.load:
// `<stem>/data.pkl` (protocol-2 pickle of an OrderedDict of _rebuild_tensor_v2 calls), `<stem>/data/<i>`
// (raw little-endian storages, 64-byte aligned), `<stem>/byteorder` and `<stem>/version`. Data are streamed
// from the tensors to a fresh temporary beside `path` (AtomicFile), which is renamed onto `path` when complete.
void save_torch_checkpoint(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                           const TorchSaveOptions& options = {});

}  // namespace amskv::io
