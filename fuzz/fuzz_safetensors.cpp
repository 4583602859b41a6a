// libFuzzer entry point for the safetensors reader. Every tensor's bytes are read, so that a view reaching
// outside the input shows up under ASan.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const amskv::io::TensorMap m =
        amskv::io::load_safetensors_from_memory(data, size, "fuzz.safetensors", nullptr);
    volatile uint8_t sink = 0;
    for (const auto& [key, t] : m.all()) {
      const auto* p = static_cast<const uint8_t*>(t.raw());
      for (size_t i = 0; i < t.nbytes(); ++i) sink = sink ^ p[i];
    }
  } catch (const amskv::Error&) {
    // Rejecting malformed input with an error is the expected outcome.
  }
  return 0;
}
