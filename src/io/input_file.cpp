#include "io/input_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace amskv::io {

namespace {
const char* kind_of(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a file";
}

void check_regular(const std::string& path, const struct stat& st) {
  if (S_ISDIR(st.st_mode)) fail(path, ": is a directory, not a file");
  if (!S_ISREG(st.st_mode)) fail(path, ": not a regular file (", kind_of(st.st_mode), ")");
}
}  // namespace

InputFile::InputFile(const std::string& path) : path_(path) {
  // stat() first: it never blocks, so a FIFO is refused before open() could wait for a writer.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail(path, ": cannot open: ", std::strerror(errno));
  check_regular(path, st);
  // O_NONBLOCK as well, in case the path is swapped for a FIFO between stat() and open(); it changes nothing
  // for a regular file.
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd_ < 0) fail(path, ": cannot open: ", std::strerror(errno));
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    fail(path, ": cannot stat: ", std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    check_regular(path, st);
  }
  size_ = static_cast<uint64_t>(st.st_size);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::string InputFile::read_all(uint64_t max_bytes, const std::string& what) const {
  if (size_ > max_bytes)
    fail(path_, ": ", what, " of ", size_, " bytes is larger than the ", max_bytes, " bytes such a file can need");
  std::string out(static_cast<size_t>(size_), '\0');
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path_, ": cannot read: ", std::strerror(errno));
    if (n == 0) break;  // shrank while we read: parse what is there
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

}  // namespace amskv::io
