#include "io/png_writer.h"

#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/png_error.h"

namespace amskv::io {

namespace {

// PNG allows 2^31-1; we also keep H*W*3 well inside memory.
constexpr int64_t kMaxSide = int64_t{1} << 20;
constexpr int64_t kMaxPixels = int64_t{1} << 30;

void check_size(const std::string& path, int64_t height, int64_t width) {
  if (height <= 0 || width <= 0 || height > kMaxSide || width > kMaxSide || height * width > kMaxPixels)
    fail(path, ": cannot write a PNG of ", height, "x", width, " pixels");
}


// Kept free of C++ objects with destructors, since libpng's longjmp would skip them.
bool encode(FILE* fp, png_bytepp rows, uint32_t height, uint32_t width, png_textp text, int text_count,
            PngError* slot) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, slot, png_record_error, png_ignore_warning);
  if (!png) {
    slot->set("out of memory");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    slot->set("out of memory");
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_init_io(png, fp);
  png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (text_count > 0) png_set_text(png, info, text, text_count);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

uint8_t float_to_u8(float x) {
  const float v = x * 255.0f;
  if (!(v > 0.0f)) return 0;  // also NaN
  if (v >= 255.0f) return 255;
  return static_cast<uint8_t>(v);  // truncation, like astype(uint8)
}

void write_png_rgb8(const std::string& path, const uint8_t* rgb, int64_t height, int64_t width,
                    const std::vector<PngText>& text) {
  check_size(path, height, width);
  std::vector<png_text> chunks(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i].key.empty() || text[i].key.size() > 79)
      fail(path, ": PNG text key '", text[i].key.substr(0, 80), "' must have 1 to 79 characters");
    chunks[i].compression = PNG_ITXT_COMPRESSION_NONE;
    chunks[i].key = const_cast<char*>(text[i].key.c_str());
    chunks[i].text = const_cast<char*>(text[i].text.c_str());
    chunks[i].itxt_length = text[i].text.size();
  }
  std::vector<png_bytep> rows(static_cast<size_t>(height));
  for (int64_t y = 0; y < height; ++y)
    rows[static_cast<size_t>(y)] = const_cast<png_bytep>(rgb + static_cast<size_t>(y * width * 3));
  AtomicFile file(path);
  PngError slot;
  if (!encode(file.stream(), rows.data(), static_cast<uint32_t>(height), static_cast<uint32_t>(width), chunks.data(),
              static_cast<int>(chunks.size()), &slot))
    fail(path, ": PNG encoding failed: ", slot.message);
  file.commit();
}

void write_png(const std::string& path, const float* chw, int64_t height, int64_t width,
               const std::vector<PngText>& text) {
  write_png_grid(path, chw, 1, height, width, 1, 0, text);
}

void write_png_grid(const std::string& path, const float* images, int64_t n, int64_t height, int64_t width,
                    int64_t columns, int64_t padding, const std::vector<PngText>& text) {
  if (n <= 0 || columns <= 0 || padding < 0 || padding > kMaxSide)
    fail(path, ": cannot write a grid of ", n, " images in ", columns, " columns with padding ", padding);
  check_size(path, height, width);
  const int64_t cols = std::min(columns, n);
  const int64_t rows = (n + cols - 1) / cols;
  const int64_t grid_h = rows * (height + padding) + padding;
  const int64_t grid_w = cols * (width + padding) + padding;
  check_size(path, grid_h, grid_w);
  std::vector<uint8_t> rgb(static_cast<size_t>(grid_h * grid_w * 3), 0);
  const int64_t plane = height * width;
  for (int64_t i = 0; i < n; ++i) {
    const float* img = images + i * 3 * plane;
    const int64_t y0 = (i / cols) * (height + padding) + padding;
    const int64_t x0 = (i % cols) * (width + padding) + padding;
    for (int64_t y = 0; y < height; ++y) {
      uint8_t* out = rgb.data() + ((y0 + y) * grid_w + x0) * 3;
      for (int64_t x = 0; x < width; ++x)
        for (int64_t c = 0; c < 3; ++c) out[x * 3 + c] = float_to_u8(img[c * plane + y * width + x]);
    }
  }
  write_png_rgb8(path, rgb.data(), grid_h, grid_w, text);
}

}  // namespace amskv::io
