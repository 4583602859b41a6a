#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace amskv::io {

namespace {
// mmap of length 0 is invalid, so empty files get a pointer to this instead.
const uint8_t kEmpty[1] = {0};

struct Mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr) ::munmap(addr, size);
  }
};
}  // namespace

MappedFile map_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(path, ": cannot stat: ", std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, ": not a regular file");
  }
  MappedFile out;
  if (st.st_size == 0) {
    ::close(fd);
    out.data = kEmpty;
    out.size = 0;
    out.owner = std::make_shared<int>(0);
    return out;
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping stays valid after the descriptor is closed
  if (addr == MAP_FAILED) fail(path, ": cannot map ", size, " bytes: ", std::strerror(err));
  auto mapping = std::make_shared<Mapping>();
  mapping->addr = addr;
  mapping->size = size;
  out.data = static_cast<const uint8_t*>(addr);
  out.size = size;
  out.owner = std::move(mapping);
  return out;
}

}  // namespace amskv::io
