// libpng reports errors by longjmp from a callback. These callbacks record the message where the caller reads
// it after the jump: the error pointer given to png_create_{read,write}_struct must be a PngError.
#pragma once
#include <png.h>

#include <cstdio>

namespace amskv::io {

struct PngError {
  char message[256] = {};
  void set(const char* text) { std::snprintf(message, sizeof message, "%s", text); }
};

inline void png_record_error(png_structp png, png_const_charp text) {
  static_cast<PngError*>(png_get_error_ptr(png))->set(text);
  png_longjmp(png, 1);
}

inline void png_ignore_warning(png_structp, png_const_charp) {}

}  // namespace amskv::io
