// Writes a file under a temporary name (`path.tmp-<pid>`) and renames it into place on commit(), so a
// failed or interrupted save never leaves a half-written file under the real name.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace amskv::io {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // throws amskv::Error naming the path if it cannot be created
  ~AtomicFile();                          // removes the temporary file unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void write_zeros(size_t size);
  uint64_t position() const { return position_; }
  // Flushes, closes and renames onto the final path.
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
