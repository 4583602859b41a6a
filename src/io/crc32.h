// CRC-32 as zip and zlib compute it (polynomial 0xEDB88320), slicing-by-8: about 1 GB/s here, close to
// zlib's own (measured on 512 MB: zlib 0.35 s, this 0.46 s), so the engine needs no zlib.
#pragma once
#include <cstddef>
#include <cstdint>

namespace amskv::io {

// CRC-32 of `size` bytes, continuing from `crc` (0 to start).
uint32_t crc32(const void* data, size_t size, uint32_t crc = 0);

}  // namespace amskv::io
