// libFuzzer entry point for the safetensors reader. Every tensor's bytes are read, so that a view reaching
// outside the input shows up under ASan.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "read_all_tensors.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    read_all_tensors(amskv::io::load_safetensors_from_memory(data, size, "fuzz.safetensors", nullptr));
  } catch (const amskv::Error&) {
    // Rejecting malformed input with an error is the expected outcome.
  }
  return 0;
}
