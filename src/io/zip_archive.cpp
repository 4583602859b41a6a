#include "io/zip_archive.h"

#include <algorithm>

#include "core/error.h"
#include "io/byte_util.h"

namespace amskv::io {

namespace {
constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kEocd64Sig = 0x06064b50;
constexpr uint32_t kEocd64LocatorSig = 0x07064b50;
constexpr size_t kLocalSize = 30;
constexpr size_t kCentralSize = 46;
constexpr size_t kEocdSize = 22;
constexpr size_t kEocd64Size = 56;
constexpr size_t kLocatorSize = 20;
constexpr uint16_t kZip64ExtraId = 0x0001;
}  // namespace

bool looks_like_zip(const uint8_t* data, size_t size) {
  return size >= 4 && load_le<uint32_t>(data) == kLocalSig;
}

ZipArchive::ZipArchive(const uint8_t* data, size_t size, std::string name)
    : data_(data), size_(size), name_(std::move(name)) {
  parse();
}

uint64_t ZipArchive::find_eocd() const {
  if (size_ < kEocdSize) fail(name_, ": not a zip archive (", size_, " bytes, too short; truncated file?)");
  // The record is followed by a comment of up to 65535 bytes, so search backwards over that window.
  const size_t last = size_ - kEocdSize;
  const size_t first = last > 0xFFFF ? last - 0xFFFF : 0;
  for (size_t pos = last + 1; pos-- > first;) {
    if (load_le<uint32_t>(data_ + pos) != kEocdSig) continue;
    const uint16_t comment_len = load_le<uint16_t>(data_ + pos + 20);
    if (pos + kEocdSize + comment_len <= size_) return pos;
  }
  fail(name_, ": not a zip archive, or truncated (no end-of-central-directory record)");
}

void ZipArchive::parse() {
  const uint64_t eocd = find_eocd();
  const uint8_t* e = data_ + eocd;
  const uint16_t disk = load_le<uint16_t>(e + 4);
  const uint16_t cd_disk = load_le<uint16_t>(e + 6);
  uint64_t count = load_le<uint16_t>(e + 10);
  uint64_t cd_size = load_le<uint32_t>(e + 12);
  uint64_t cd_offset = load_le<uint32_t>(e + 16);
  if (disk != 0 || cd_disk != 0) fail(name_, ": multi-disk zip archives are not supported");

  // ZIP64: a locator right before the classic record points at the 64-bit record, whose values win.
  uint64_t cd_limit = eocd;
  if (eocd >= kLocatorSize && load_le<uint32_t>(data_ + eocd - kLocatorSize) == kEocd64LocatorSig) {
    const uint8_t* loc = data_ + eocd - kLocatorSize;
    const uint64_t rec = load_le<uint64_t>(loc + 8);
    if (load_le<uint32_t>(loc + 16) > 1) fail(name_, ": multi-disk ZIP64 archives are not supported");
    if (!range_ok(rec, kEocd64Size, eocd - kLocatorSize))
      fail(name_, ": corrupt ZIP64 end-of-central-directory locator (record offset ", rec, " out of range)");
    const uint8_t* r = data_ + rec;
    if (load_le<uint32_t>(r) != kEocd64Sig) fail(name_, ": corrupt ZIP64 end-of-central-directory record");
    if (load_le<uint32_t>(r + 16) != 0 || load_le<uint32_t>(r + 20) != 0)
      fail(name_, ": multi-disk ZIP64 archives are not supported");
    count = load_le<uint64_t>(r + 32);
    cd_size = load_le<uint64_t>(r + 40);
    cd_offset = load_le<uint64_t>(r + 48);
    cd_limit = rec;
  }
  if (!range_ok(cd_offset, cd_size, cd_limit))
    fail(name_, ": corrupt central directory (offset ", cd_offset, ", size ", cd_size,
         " beyond the end-of-central-directory record at ", cd_limit, "; truncated file?)");
  // Each entry takes at least 46 bytes, which bounds `count` before anything is allocated for it.
  if (count > cd_size / kCentralSize)
    fail(name_, ": corrupt central directory (", count, " entries cannot fit in ", cd_size, " bytes)");

  entries_.reserve(static_cast<size_t>(count));
  uint64_t pos = cd_offset;
  const uint64_t end = cd_offset + cd_size;
  for (uint64_t i = 0; i < count; ++i) {
    if (!range_ok(pos, kCentralSize, end) || load_le<uint32_t>(data_ + pos) != kCentralSig)
      fail(name_, ": corrupt central directory (entry ", i, " at offset ", pos, ")");
    const uint8_t* c = data_ + pos;
    ZipEntry entry;
    entry.flags = load_le<uint16_t>(c + 8);
    entry.method = load_le<uint16_t>(c + 10);
    entry.crc32 = load_le<uint32_t>(c + 16);
    entry.compressed_size = load_le<uint32_t>(c + 20);
    entry.size = load_le<uint32_t>(c + 24);
    const uint16_t name_len = load_le<uint16_t>(c + 28);
    const uint16_t extra_len = load_le<uint16_t>(c + 30);
    const uint16_t comment_len = load_le<uint16_t>(c + 32);
    const uint16_t disk_start = load_le<uint16_t>(c + 34);
    entry.local_header_offset = load_le<uint32_t>(c + 42);
    const uint64_t record = kCentralSize + uint64_t{name_len} + extra_len + comment_len;
    if (!range_ok(pos, record, end))
      fail(name_, ": corrupt central directory (entry ", i, " runs past the directory)");
    entry.name.assign(reinterpret_cast<const char*>(c + kCentralSize), name_len);

    // The ZIP64 extra field holds, in this order, only those values whose 32-bit field is saturated.
    const bool need_size = entry.size == 0xFFFFFFFFu;
    const bool need_csize = entry.compressed_size == 0xFFFFFFFFu;
    const bool need_offset = entry.local_header_offset == 0xFFFFFFFFu;
    const bool need_disk = disk_start == 0xFFFFu;
    if (need_size || need_csize || need_offset || need_disk) {
      const uint8_t* x = c + kCentralSize + name_len;
      const uint8_t* x_end = x + extra_len;
      bool found = false;
      while (x_end - x >= 4) {
        const uint16_t id = load_le<uint16_t>(x);
        const uint16_t len = load_le<uint16_t>(x + 2);
        if (len > x_end - x - 4) break;
        if (id == kZip64ExtraId) {
          const uint8_t* f = x + 4;
          const uint8_t* f_end = f + len;
          auto take64 = [&](uint64_t& v) {
            if (f_end - f < 8) fail(name_, ": corrupt ZIP64 extra field of entry '", entry.name, "'");
            v = load_le<uint64_t>(f);
            f += 8;
          };
          if (need_size) take64(entry.size);
          if (need_csize) take64(entry.compressed_size);
          if (need_offset) take64(entry.local_header_offset);
          if (need_disk && (f_end - f < 4 || load_le<uint32_t>(f) != 0))
            fail(name_, ": multi-disk zip archives are not supported");
          found = true;
          break;
        }
        x += 4 + len;
      }
      if (!found) fail(name_, ": entry '", entry.name, "' needs a ZIP64 extra field but has none");
    } else if (disk_start != 0) {
      fail(name_, ": multi-disk zip archives are not supported");
    }
    if (!index_.emplace(entry.name, entries_.size()).second)
      fail(name_, ": corrupt zip archive (entry '", entry.name, "' appears twice)");
    entries_.push_back(std::move(entry));
    pos += record;
  }
}

const ZipEntry* ZipArchive::find(std::string_view entry_name) const {
  auto it = index_.find(std::string(entry_name));
  return it == index_.end() ? nullptr : &entries_[it->second];
}

uint64_t ZipArchive::data_offset(const ZipEntry& entry) const {
  if (entry.flags & 1u) fail(name_, ": entry '", entry.name, "' is encrypted");
  if (entry.method != 0)
    fail(name_, ": entry '", entry.name, "' is compressed (method ", entry.method,
         "); only stored entries are supported, as torch.save writes them");
  if (entry.compressed_size != entry.size)
    fail(name_, ": entry '", entry.name, "' is stored but its sizes differ (", entry.compressed_size, " vs ",
         entry.size, ")");
  const uint64_t off = entry.local_header_offset;
  if (!range_ok(off, kLocalSize, size_) || load_le<uint32_t>(data_ + off) != kLocalSig)
    fail(name_, ": corrupt zip archive (no local header for entry '", entry.name, "' at offset ", off, ")");
  const uint16_t name_len = load_le<uint16_t>(data_ + off + 26);
  const uint16_t extra_len = load_le<uint16_t>(data_ + off + 28);
  const uint64_t start = off + kLocalSize + name_len + extra_len;  // cannot overflow: off < size_
  if (!range_ok(start, entry.size, size_))
    fail(name_, ": entry '", entry.name, "' (", entry.size, " bytes at offset ", start,
         ") runs past the end of the file (", size_, " bytes); truncated file?");
  if (name_len != entry.name.size() ||
      std::memcmp(data_ + off + kLocalSize, entry.name.data(), name_len) != 0)
    fail(name_, ": corrupt zip archive (local header name differs for entry '", entry.name, "')");
  return start;
}

std::span<const uint8_t> ZipArchive::read(const ZipEntry& entry) const {
  const uint64_t start = data_offset(entry);
  return {data_ + start, static_cast<size_t>(entry.size)};
}

}  // namespace amskv::io
