#include "io/zip_writer.h"

#include "core/error.h"
#include "io/byte_util.h"
#include "io/crc32.h"

namespace amskv::io {

namespace {
constexpr uint64_t kMax32 = 0xFFFFFFFFu;
constexpr uint64_t kAlignment = 64;  // torch's kFieldAlignment: lets readers mmap tensors aligned

void put16(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}
void put32(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put64(std::vector<uint8_t>& b, uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint32_t sat32(uint64_t v) { return v >= kMax32 ? 0xFFFFFFFFu : static_cast<uint32_t>(v); }
}  // namespace

void ZipWriter::add(const std::string& name, std::span<const uint8_t> data) {
  AMSKV_CHECK(name.size() < 0xFFFF, out_.path(), ": zip entry name too long");
  Record r{name, crc32(data.data(), data.size()), data.size(), out_.position()};
  const bool zip64 = force_zip64_ || r.size >= kMax32;

  std::vector<uint8_t> h;
  put32(h, 0x04034b50);
  put16(h, zip64 ? 45 : 20);  // version needed: 4.5 for ZIP64
  put16(h, 0);                // flags: sizes and CRC are known up front, so no data descriptor
  put16(h, 0);                // stored
  put16(h, 0);                // time
  put16(h, 0);                // date
  put32(h, r.crc);
  put32(h, zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(r.size));
  put32(h, zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(r.size));
  put16(h, static_cast<uint16_t>(name.size()));
  const size_t extra_len_at = h.size();
  put16(h, 0);  // extra length, patched below
  h.insert(h.end(), name.begin(), name.end());
  const size_t extra_start = h.size();
  if (zip64) {  // a local ZIP64 field must carry both sizes
    put16(h, 0x0001);
    put16(h, 16);
    put64(h, r.size);
    put64(h, r.size);
  }
  // Padding field "FB" so that the data start at a multiple of 64 from the start of the file.
  const uint64_t after = r.offset + h.size() + 4;
  const uint64_t pad = (kAlignment - after % kAlignment) % kAlignment;
  put16(h, 0x4246);
  put16(h, static_cast<uint16_t>(pad));
  h.insert(h.end(), pad, 'Z');
  store_le<uint16_t>(h.data() + extra_len_at, static_cast<uint16_t>(h.size() - extra_start));
  out_.write(h.data(), h.size());
  out_.write(data.data(), data.size());
  records_.push_back(std::move(r));
}

void ZipWriter::finish() {
  const uint64_t cd_offset = out_.position();
  std::vector<uint8_t> c;
  for (const Record& r : records_) {
    c.clear();
    const bool big_size = force_zip64_ || r.size >= kMax32;
    const bool big_offset = force_zip64_ || r.offset >= kMax32;
    const bool zip64 = big_size || big_offset;
    put32(c, 0x02014b50);
    put16(c, zip64 ? 45 : 20);  // version made by
    put16(c, zip64 ? 45 : 20);  // version needed
    put16(c, 0);
    put16(c, 0);
    put16(c, 0);
    put16(c, 0);
    put32(c, r.crc);
    put32(c, big_size ? 0xFFFFFFFFu : static_cast<uint32_t>(r.size));
    put32(c, big_size ? 0xFFFFFFFFu : static_cast<uint32_t>(r.size));
    put16(c, static_cast<uint16_t>(r.name.size()));
    put16(c, static_cast<uint16_t>(zip64 ? 4 + 8 * (2 * big_size + big_offset) : 0));
    put16(c, 0);  // comment length
    put16(c, 0);  // disk
    put16(c, 0);  // internal attributes
    put32(c, 0);  // external attributes
    put32(c, big_offset ? 0xFFFFFFFFu : static_cast<uint32_t>(r.offset));
    c.insert(c.end(), r.name.begin(), r.name.end());
    if (zip64) {  // only the saturated fields, in the order uncompressed, compressed, offset
      put16(c, 0x0001);
      put16(c, static_cast<uint16_t>(8 * (2 * big_size + big_offset)));
      if (big_size) {
        put64(c, r.size);
        put64(c, r.size);
      }
      if (big_offset) put64(c, r.offset);
    }
    out_.write(c.data(), c.size());
  }
  const uint64_t cd_size = out_.position() - cd_offset;
  const uint64_t count = records_.size();
  c.clear();
  if (force_zip64_ || cd_offset >= kMax32 || cd_size >= kMax32 || count >= 0xFFFF) {
    const uint64_t eocd64 = out_.position();
    put32(c, 0x06064b50);
    put64(c, 44);  // size of the rest of this record
    put16(c, 45);
    put16(c, 45);
    put32(c, 0);  // this disk
    put32(c, 0);  // disk with the central directory
    put64(c, count);
    put64(c, count);
    put64(c, cd_size);
    put64(c, cd_offset);
    put32(c, 0x07064b50);  // locator
    put32(c, 0);
    put64(c, eocd64);
    put32(c, 1);  // total disks
  }
  put32(c, 0x06054b50);
  put16(c, 0);
  put16(c, 0);
  put16(c, static_cast<uint16_t>(count >= 0xFFFF ? 0xFFFF : count));
  put16(c, static_cast<uint16_t>(count >= 0xFFFF ? 0xFFFF : count));
  put32(c, sat32(cd_size));
  put32(c, force_zip64_ ? 0xFFFFFFFFu : sat32(cd_offset));
  put16(c, 0);  // comment length
  out_.write(c.data(), c.size());
}

}  // namespace amskv::io
