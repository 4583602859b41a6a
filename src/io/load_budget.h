// What loading one file may allocate beyond zero-copy views of it. Tensors are views of the file's memory
// map; only strided, expanded or misaligned ones are copied, and the unpickler keeps some bookkeeping per
// state-dict entry. Both are charged here, per file, so that no small file can make us allocate gigabytes
// (stride-0 views of one float, thousands of entries sharing memoised shapes): the total stays under
// max(64 MiB, 4 x the file's size). Real checkpoints copy nothing or a fraction of themselves.
#pragma once
#include <cstdint>
#include <new>
#include <string>

#include "core/error.h"
#include "core/tensor.h"

namespace amskv::io {

class LoadBudget {
 public:
  static constexpr uint64_t kFloorBytes = uint64_t{64} << 20;
  static constexpr uint64_t kFileMultiple = 4;

  LoadBudget(const std::string& file, uint64_t file_size);

  // Counts `bytes` against the budget; beyond it throws "<file>: refusing to expand: <what...> needs N more
  // bytes, beyond the L bytes that a file of S bytes may expand to while loading".
  template <class... What>
  void charge(uint64_t bytes, const What&... what) {
    if (bytes <= limit_ - used_) {
      used_ += bytes;
      return;
    }
    fail(file_, ": refusing to expand: ", what..., " needs ", bytes, " more bytes, beyond the ", limit_,
         " bytes that a file of ", file_size_, " bytes may expand to while loading (", used_, " used so far)");
  }

  // A zero-filled tensor for a copy, charged to the budget. Out of memory becomes an amskv::Error
  // "<file>: out of memory while loading (tensor '<key>' needs N bytes)".
  Tensor allocate(DType dtype, const Shape& shape, const std::string& key);

  uint64_t used() const { return used_; }
  uint64_t limit() const { return limit_; }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  uint64_t file_size_;
  uint64_t limit_;
  uint64_t used_ = 0;
};

// Runs a loader, turning std::bad_alloc from anywhere in it into "<file>: out of memory while loading (...)".
template <class Fn>
auto naming_out_of_memory(const std::string& file, Fn&& load) -> decltype(load()) {
  try {
    return load();
  } catch (const std::bad_alloc&) {
    fail(file, ": out of memory while loading");
  }
}

}  // namespace amskv::io
