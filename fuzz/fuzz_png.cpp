// libFuzzer entry point for the PNG reader (`inspect IMAGE.png` and `generate --from IMAGE.png` read PNGs that
// may come from anywhere): the bytes are decoded with and without pixels. Refusing them with amskv::Error is
// the expected outcome; a crash, a sanitizer report or another exception is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "core/error.h"
#include "io/png_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (bool pixels : {false, true}) {
    try {
      const amskv::io::PngImage png = amskv::io::read_png_from_memory(data, size, "fuzz.png", pixels);
      if (pixels && png.rgb.size() != static_cast<size_t>(png.height * png.width * 3)) std::abort();
    } catch (const amskv::Error&) {
    } catch (const std::exception& e) {
      std::fprintf(stderr, "the PNG reader let through: %s\n", e.what());
      std::abort();
    }
  }
  return 0;
}
