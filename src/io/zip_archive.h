// Reader for the zip container of torch.save (PyTorch >= 1.6) over bytes in memory. Only what torch writes
// is needed: stored (uncompressed) entries, optionally ZIP64. Nothing is copied; entry data are spans of
// the input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace amskv::io {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 = stored; anything else is refused when the data are asked for
  uint16_t flags = 0;
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;  // uncompressed
  uint64_t local_header_offset = 0;
};

class ZipArchive {
 public:
  // Parses the end-of-central-directory record(s) and the central directory. `name` (the file path) is
  // only used in error messages. Throws amskv::Error on anything malformed.
  ZipArchive(const uint8_t* data, size_t size, std::string name);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  // nullptr when there is no entry of that exact name.
  const ZipEntry* find(std::string_view entry_name) const;
  // The bytes of a stored entry. The data offset comes from the LOCAL header (30 + name length + local
  // extra length): torch pads data to 64 bytes with a local-only extra field, so the central directory's
  // extra length would be wrong. Throws for compressed or encrypted entries and out-of-range data.
  std::span<const uint8_t> read(const ZipEntry& entry) const;
  // Byte offset of the entry's data from the start of the archive (same checks as read()).
  uint64_t data_offset(const ZipEntry& entry) const;

  const std::string& name() const { return name_; }

 private:
  void parse();
  uint64_t find_eocd() const;

  const uint8_t* data_;
  size_t size_;
  std::string name_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> index_;  // entry name -> position in entries_
};

// True when the bytes start like a zip local file header ("PK\3\4").
bool looks_like_zip(const uint8_t* data, size_t size);

}  // namespace amskv::io
