// Read-only memory mapping of a whole file. Checkpoints are mapped rather than read so that tensors can be
// zero-copy views of the page cache; the mapping lives as long as any view holds `owner`.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace amskv::io {

struct MappedFile {
  const uint8_t* data = nullptr;  // never null, even for an empty file
  size_t size = 0;
  // Unmaps when the last holder goes away; pass it to Tensor::view.
  std::shared_ptr<const void> owner;
};

// Throws amskv::Error naming `path` if it cannot be opened, is not a regular file, or cannot be mapped.
MappedFile map_file(const std::string& path);

}  // namespace amskv::io
