// Opens a path that should name an input file, without blocking on anything that is not one: open() on a
// FIFO waits for a writer forever, and a directory or device is never what the user meant. Every reader
// of user-named files (checkpoints, KV tables, AMS profiles) comes through here.
#pragma once
#include <cstdint>
#include <string>

namespace amskv::io {

class InputFile {
 public:
  // Throws amskv::Error "<path>: cannot open: <reason>", "<path>: is a directory" or
  // "<path>: not a regular file (a FIFO)" (socket, character device, ...).
  explicit InputFile(const std::string& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // The whole file (for small text files); throws naming the file if it is larger than `max_bytes`
  // (`what` says what the file was meant to be) or cannot be read.
  std::string read_all(uint64_t max_bytes, const std::string& what) const;

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace amskv::io
