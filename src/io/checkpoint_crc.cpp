#include "io/checkpoint_crc.h"

#include <cstdio>

#include "core/error.h"
#include "io/crc32.h"
#include "io/mapped_file.h"
#include "io/zip_archive.h"

namespace amskv::io {

namespace {
std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}
}  // namespace

CrcReport verify_zip_crc(const uint8_t* data, size_t size, const std::string& name) {
  const ZipArchive zip(data, size, name);
  CrcReport report;
  for (const ZipEntry& e : zip.entries()) {
    if (e.method != 0) {
      ++report.skipped;
      continue;
    }
    const auto bytes = zip.read(e);
    const uint32_t crc = crc32(bytes.data(), bytes.size());
    if (crc != e.crc32)
      fail(name, ": entry '", e.name, "' is corrupt (CRC-32 ", hex32(crc), ", the archive records ", hex32(e.crc32),
           ")");
    ++report.entries;
    report.bytes += bytes.size();
  }
  return report;
}

CrcReport verify_checkpoint_crc(const std::string& path) {
  const MappedFile f = map_file(path);
  if (!looks_like_zip(f.data, f.size)) return {};
  return verify_zip_crc(f.data, f.size, path);
}

}  // namespace amskv::io
