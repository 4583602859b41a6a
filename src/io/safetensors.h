// safetensors files: an 8-byte little-endian header length, a JSON header
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then raw data.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "io/tensor_map.h"

namespace amskv::io {

// Maps `path`; tensors are zero-copy views (copied only when misaligned); `__metadata__` fills
// TensorMap::metadata. Throws amskv::Error naming the file on any malformed header, dtype, shape or offset;
// on a header with a repeated key or nesting deeper than kMaxJsonDepth; on data ranges that overlap, leave
// gaps or do not reach the end of the file (the format requires them to tile the data section); and, instead
// of std::bad_alloc, when memory runs out.
TensorMap load_safetensors(const std::string& path);

// The same over bytes in memory; views keep `owner` alive (null is allowed when `data` outlives them).
TensorMap load_safetensors_from_memory(const uint8_t* data, size_t size, const std::string& name,
                                       std::shared_ptr<const void> owner);

// Writes through a fresh temporary beside `path` and a rename (AtomicFile). Tensors are laid out by
// decreasing element size (stable), as the reference implementation does, so every tensor stays aligned to
// its element size.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace amskv::io
