// PNG output for generated images and plots (libpng). Files are written to a temporary beside `path` and
// renamed (AtomicFile), so nothing half-written is left under `path` on error.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace amskv::io {

// A text chunk (iTXt: UTF-8, uncompressed) written before the image data; `key` is 1-79 Latin-1 characters.
struct PngText {
  std::string key, text;
};

// A float in [0,1] to a byte the way the reference demo does it: x*255 in float32, then numpy's
// astype(uint8) truncation, clamped to [0,255] (NaN -> 0).
uint8_t float_to_u8(float x);

// One [3,H,W] planar float image in [0,1].
void write_png(const std::string& path, const float* chw, int64_t height, int64_t width,
               const std::vector<PngText>& text = {});

// N [3,H,W] images tiled like torchvision.utils.make_grid(nrow=columns, padding, pad_value=0): min(columns, n)
// images per row, `padding` black pixels around and between them.
void write_png_grid(const std::string& path, const float* images, int64_t n, int64_t height, int64_t width,
                    int64_t columns, int64_t padding = 2, const std::vector<PngText>& text = {});

// An interleaved RGB8 image [H,W,3] (plots, heatmaps).
void write_png_rgb8(const std::string& path, const uint8_t* rgb, int64_t height, int64_t width,
                    const std::vector<PngText>& text = {});

}  // namespace amskv::io
