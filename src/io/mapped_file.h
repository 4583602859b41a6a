// Read-only memory mapping of a whole file. Checkpoints are mapped rather than read so that tensors can be
// zero-copy views of the page cache; the mapping lives as long as any view holds `owner`. The file must not
// change while mapped: a truncation makes later reads of the lost pages end the process with SIGBUS (see
// docs/input_safety.md).
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

// Throws amskv::Error naming `path` if it cannot be opened, is not a regular file (checked before opening, so a
// FIFO never blocks us), or cannot be mapped.
MappedFile map_file(const std::string& path);

}  // namespace amskv::io
