#include "io/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace amskv::io {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  temp_ = path_ + ".tmp-" + std::to_string(::getpid());
  file_ = std::fopen(temp_.c_str(), "wb");
  if (!file_) fail(path_, ": cannot create ", temp_, ": ", std::strerror(errno));
  std::setvbuf(file_, nullptr, _IOFBF, size_t{1} << 20);
}

AtomicFile::~AtomicFile() {
  if (committed_) return;
  if (file_) std::fclose(file_);
  std::remove(temp_.c_str());
}

void AtomicFile::write(const void* data, size_t size) {
  if (size == 0) return;
  if (std::fwrite(data, 1, size, file_) != size) fail(path_, ": write failed: ", std::strerror(errno));
  position_ += size;
}

void AtomicFile::write_zeros(size_t size) {
  static const char kZeros[4096] = {};
  while (size > 0) {
    const size_t n = size < sizeof kZeros ? size : sizeof kZeros;
    write(kZeros, n);
    size -= n;
  }
}

void AtomicFile::commit() {
  const bool flushed = std::fflush(file_) == 0 && !std::ferror(file_);
  const int err = errno;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed) fail(path_, ": write failed: ", std::strerror(err));
  if (std::rename(temp_.c_str(), path_.c_str()) != 0)
    fail(path_, ": cannot rename ", temp_, " into place: ", std::strerror(errno));
  committed_ = true;
}

}  // namespace amskv::io
