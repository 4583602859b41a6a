// Reads PNG files (libpng): the images `amskv generate` wrote, to show the settings they record (`inspect`)
// and to regenerate them (`generate --from`), and in tests to compare pixels. The input is untrusted: the file
// is refused beyond kMaxPngBytes, the image beyond kMaxPngSide per side or kMaxPngPixels, a text chunk beyond
// 1 MiB, and any malformed data with an error naming the file (never a longjmp across C++ frames or an abort).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace amskv::io {

constexpr uint64_t kMaxPngBytes = uint64_t{256} << 20;
constexpr uint32_t kMaxPngSide = 1u << 15;
constexpr uint64_t kMaxPngPixels = uint64_t{1} << 26;  // 64 Mpixels: 192 MiB of RGB

struct PngImage {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> rgb;                  // [H][W][3], 8 bits (expanded from any colour type and depth)
  std::map<std::string, std::string> text;  // tEXt, zTXt and iTXt chunks by key (the first of a repeated key)
};

// The 8-byte PNG signature.
bool looks_like_png(const uint8_t* data, size_t size);
// Whether `path` is a regular file that starts with it (false when it cannot be read).
bool is_png_file(const std::string& path);

// `pixels` false reads the text chunks and the size only.
PngImage read_png(const std::string& path, bool pixels = true);
// The same over bytes in memory; `name` names them in errors.
PngImage read_png_from_memory(const uint8_t* data, size_t size, const std::string& name, bool pixels = true);

}  // namespace amskv::io
