#include "io/png_reader.h"

#include <png.h>

#include <unistd.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "io/input_file.h"
#include "io/png_error.h"

namespace amskv::io {

namespace {

constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
constexpr size_t kMaxTextBytes = size_t{1} << 20;
constexpr uint64_t kMaxDeflateRatio = 1100;  // zlib's bound is 1032:1

struct Source {
  const uint8_t* data;
  size_t size, at;
  PngError error;
};

void read_bytes(png_structp png, png_bytep out, png_size_t n) {
  auto* src = static_cast<Source*>(png_get_io_ptr(png));
  if (n > src->size - src->at) png_error(png, "the file ends inside a chunk");
  std::memcpy(out, src->data + src->at, n);
  src->at += n;
}

// What decode() hands back through plain C types (libpng's longjmp must not skip C++ destructors, so no C++
// object with one lives in decode's frame).
struct Decoded {
  uint32_t height, width;
  uint8_t* rgb;     // malloc'd, height * width * 3 (null when pixels were not wanted)
  png_bytepp rows;  // malloc'd row pointers into rgb (here, not a local: a local changed after setjmp is lost)
};

// Reads the file into `out`; on error returns false with the message in src->error.message. The text of
// `info` and `end` stays valid until png_destroy_read_struct, so `use_text` copies it before that.
bool decode(Source* src, bool pixels, Decoded* out, void (*use_text)(png_textp, int, void*), void* ctx) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src->error, png_record_error, png_ignore_warning);
  if (!png) {
    src->error.set("out of memory");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  png_infop end = info ? png_create_info_struct(png) : nullptr;
  if (!info || !end) {
    png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    src->error.set("out of memory");
    return false;
  }
  out->rgb = nullptr;
  out->rows = nullptr;
  if (setjmp(png_jmpbuf(png))) {
    std::free(out->rows);
    std::free(out->rgb);
    out->rgb = nullptr;
    out->rows = nullptr;
    png_destroy_read_struct(&png, &info, &end);
    return false;
  }
  png_set_read_fn(png, src, read_bytes);
  png_set_user_limits(png, kMaxPngSide, kMaxPngSide);
  png_set_chunk_cache_max(png, 1000);
  png_set_chunk_malloc_max(png, kMaxTextBytes + 1024);
  png_read_info(png, info);
  out->width = png_get_image_width(png, info);
  out->height = png_get_image_height(png, info);
  if (pixels) {
    if (uint64_t{out->width} * out->height > kMaxPngPixels) png_error(png, "image too large");
    // Deflate expands at most about 1032:1, so a file of `size` bytes holds at most ~1032·size bytes of
    // filtered rows: a header that declares more is refused before its pixels are allocated (a 100-byte file
    // must not cost 192 MiB).
    const uint64_t raw = uint64_t{out->height} * (png_get_rowbytes(png, info) + 1);
    if (raw > kMaxDeflateRatio * src->size + 1024)
      png_error(png, "its header declares more pixel data than the file can hold");
    png_set_expand(png);  // palette and low-depth gray to 8 bits, tRNS to alpha
    png_set_strip_16(png);
    png_set_strip_alpha(png);
    png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != size_t{out->width} * 3) png_error(png, "unexpected row size after conversion");
    out->rgb = static_cast<uint8_t*>(std::malloc(size_t{out->height} * out->width * 3));
    out->rows = static_cast<png_bytepp>(std::malloc(sizeof(png_bytep) * out->height));
    if (!out->rgb || !out->rows) png_error(png, "out of memory");
    for (uint32_t y = 0; y < out->height; ++y) out->rows[y] = out->rgb + size_t{y} * out->width * 3;
    png_read_image(png, out->rows);
    png_read_end(png, end);
  }
  // Text before the image data is on `info`; after it, on `end`.
  png_textp text = nullptr;
  int count = 0;
  if (png_get_text(png, info, &text, &count) > 0) use_text(text, count, ctx);
  if (pixels && png_get_text(png, end, &text, &count) > 0) use_text(text, count, ctx);
  std::free(out->rows);
  out->rows = nullptr;
  png_destroy_read_struct(&png, &info, &end);
  return true;
}

void copy_text(png_textp text, int count, void* ctx) {
  auto* map = static_cast<std::map<std::string, std::string>*>(ctx);
  for (int i = 0; i < count; ++i) {
    const char* body = text[i].text ? text[i].text : "";
    const size_t length = text[i].compression >= PNG_ITXT_COMPRESSION_NONE ? text[i].itxt_length : text[i].text_length;
    map->emplace(text[i].key ? text[i].key : "", std::string(body, std::min(length, std::strlen(body))));
  }
}

// Every chunk's declared length must fit in what is left of the file, and a text chunk within kMaxTextBytes:
// libpng allocates a chunk's buffer from its declared length before reading it (a 133-byte file declaring a
// 2 GB zTXt chunk, found by fuzz_png, cost 2 GB). Throws naming the file, the chunk and its offset.
void check_chunk_lengths(const uint8_t* data, size_t size, const std::string& name) {
  size_t at = sizeof kSignature;
  while (size - at >= 8) {  // a chunk's length and type are there: libpng would act on them
    const uint64_t length = (uint64_t{data[at]} << 24) | (uint64_t{data[at + 1]} << 16) |
                            (uint64_t{data[at + 2]} << 8) | uint64_t{data[at + 3]};
    const std::string type(reinterpret_cast<const char*>(data + at + 4), 4);
    const bool printable = std::all_of(type.begin(), type.end(), [](char c) { return c >= 33 && c <= 126; });
    const std::string shown = printable ? type : std::string("(unnamed)");
    if (size - at < 12 || length > size - at - 12)
      fail(name, ": chunk ", shown, " at byte ", at, " declares ", length, " bytes, more than the ",
           size - at < 12 ? 0 : size - at - 12, " left in the file");
    if ((type == "tEXt" || type == "zTXt" || type == "iTXt") && length > kMaxTextBytes)
      fail(name, ": text chunk at byte ", at, " is ", length, " bytes (at most ", kMaxTextBytes, ")");
    if (type == "IEND") return;
    at += 12 + length;
  }
}

}  // namespace

bool looks_like_png(const uint8_t* data, size_t size) {
  return size >= sizeof kSignature && std::memcmp(data, kSignature, sizeof kSignature) == 0;
}

bool is_png_file(const std::string& path) {
  try {
    const InputFile f(path);
    uint8_t head[8] = {};
    return ::pread(f.fd(), head, sizeof head, 0) == static_cast<ssize_t>(sizeof head) && looks_like_png(head, 8);
  } catch (const Error&) {
    return false;
  }
}

PngImage read_png_from_memory(const uint8_t* data, size_t size, const std::string& name, bool pixels) {
  if (!looks_like_png(data, size)) fail(name, ": not a PNG file (no PNG signature)");
  check_chunk_lengths(data, size, name);
  Source src{data, size, 0, {}};
  Decoded d{};
  PngImage image;
  if (!decode(&src, pixels, &d, copy_text, &image.text)) fail(name, ": not a readable PNG: ", src.error.message);
  image.height = d.height;
  image.width = d.width;
  if (d.rgb) {
    image.rgb.assign(d.rgb, d.rgb + size_t{d.height} * d.width * 3);
    std::free(d.rgb);
  }
  return image;
}

PngImage read_png(const std::string& path, bool pixels) {
  const InputFile f(path);
  const std::string bytes = f.read_all(kMaxPngBytes, "PNG image");
  return read_png_from_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path, pixels);
}

}  // namespace amskv::io
