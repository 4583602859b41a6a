// Writes a file under a fresh temporary name beside it and renames it into place on commit(), so a failed or
// interrupted save never leaves a half-written file under the real name. The temporary is created
// exclusively and never through a symlink (see open_new_file), and its data reach the disk before the rename.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace amskv::io {

// Creates `path` for writing, failing (nullptr, errno set) if anything already exists there, a symlink
// included: O_CREAT | O_EXCL | O_NOFOLLOW, mode 0644 before the umask.
FILE* open_new_file(const std::string& path);

class AtomicFile {
 public:
  // The temporary is `<path>.tmp-<pid>-<counter>-<random>`. Throws amskv::Error naming the path if it cannot
  // be created.
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // removes the temporary file unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void write_zeros(size_t size);
  uint64_t position() const { return position_; }
  // Flushes, fsyncs, closes and renames onto the final path, then fsyncs the folder so the rename lasts.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_; }
  // The underlying stream, for libraries that write through FILE* (libpng). Check errors with commit().
  FILE* stream() { return file_; }

 private:
  std::string path_, temp_;
  FILE* file_ = nullptr;
  uint64_t position_ = 0;
  bool committed_ = false;
};

}  // namespace amskv::io
