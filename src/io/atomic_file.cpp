#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace amskv::io {

namespace {

// 64 unpredictable bits for a temporary name, so nobody can plant a file or symlink there in advance (and
// O_EXCL refuses one that is there anyway).
std::string random_suffix() {
  uint64_t r = 0;
  if (::getrandom(&r, sizeof r, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof r)) {
    // No entropy yet (early boot): the address of a local and the clock still differ between runs.
    r = reinterpret_cast<uintptr_t>(&r) ^
        static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  static const char kHex[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 0; i < 16; ++i) s[static_cast<size_t>(i)] = kHex[(r >> (4 * i)) & 15];
  return s;
}

std::string temp_name(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return cat(path, ".tmp-", ::getpid(), "-", counter++, "-", random_suffix());
}

// Makes the rename itself durable. Best effort: some file systems refuse fsync on a folder.
void sync_parent_folder(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  const int fd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

FILE* open_new_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return nullptr;
  FILE* f = ::fdopen(fd, "wb");
  if (!f) {
    const int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    errno = err;
  }
  return f;
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  // A clash with an existing name is astronomically unlikely; a few attempts make it impossible in practice.
  for (int attempt = 0; attempt < 4 && !file_; ++attempt) {
    temp_ = temp_name(path_);
    file_ = open_new_file(temp_);
    if (!file_ && errno != EEXIST) break;
  }
  if (!file_) fail(path_, ": cannot create ", temp_, ": ", std::strerror(errno));
  std::setvbuf(file_, nullptr, _IOFBF, size_t{1} << 20);
}

AtomicFile::~AtomicFile() {
  if (committed_) return;
  if (file_) std::fclose(file_);
  ::unlink(temp_.c_str());
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
  // fsync before the rename: otherwise a crash soon after can leave the new name pointing at an empty file.
  const bool flushed = std::fflush(file_) == 0 && !std::ferror(file_) && ::fsync(::fileno(file_)) == 0;
  const int err = errno;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed) fail(path_, ": write failed: ", std::strerror(err));
  if (std::rename(temp_.c_str(), path_.c_str()) != 0)
    fail(path_, ": cannot rename ", temp_, " into place: ", std::strerror(errno));
  committed_ = true;
  sync_parent_folder(path_);
}

}  // namespace amskv::io
