#include "io/mapped_file.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "io/input_file.h"

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
  const InputFile file(path);  // refuses FIFOs, directories and devices before anything can block
  MappedFile out;
  if (file.size() == 0) {
    out.data = kEmpty;
    out.size = 0;
    out.owner = std::make_shared<int>(0);
    return out;
  }
  const size_t size = static_cast<size_t>(file.size());
  void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, file.fd(), 0);
  if (addr == MAP_FAILED) fail(path, ": cannot map ", size, " bytes: ", std::strerror(errno));
  // The mapping stays valid after the descriptor is closed.
  auto mapping = std::make_shared<Mapping>();
  mapping->addr = addr;
  mapping->size = size;
  out.data = static_cast<const uint8_t*>(addr);
  out.size = size;
  out.owner = std::move(mapping);
  return out;
}

}  // namespace amskv::io
