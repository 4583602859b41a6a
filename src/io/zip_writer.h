// Writes a zip archive of stored entries the way torch.save lays it out: each entry's data start on a
// 64-byte boundary, padded through an extra field ("FB") of the local header only, and ZIP64 records once
// sizes or offsets no longer fit in 32 bits. Data are streamed to the file; nothing is buffered whole.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "io/crc32.h"  // crc32(), which zip entries carry

namespace amskv::io {

class ZipWriter {
 public:
  // `force_zip64` writes ZIP64 records even for small archives (tests use it).
  explicit ZipWriter(AtomicFile& out, bool force_zip64 = false) : out_(out), force_zip64_(force_zip64) {}

  // Appends a stored entry holding `data`.
  void add(const std::string& name, std::span<const uint8_t> data);
  // Writes the central directory and end records. The caller then commits the AtomicFile.
  void finish();

 private:
  struct Record {
    std::string name;
    uint32_t crc;
    uint64_t size;
    uint64_t offset;
  };
  AtomicFile& out_;
  bool force_zip64_;
  std::vector<Record> records_;
};

}  // namespace amskv::io
