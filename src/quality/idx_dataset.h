// Image datasets in the IDX format of (Fashion-)MNIST, plain or gzip-compressed (Debian's
// dataset-fashion-mnist ships /usr/share/datasets/fashion-mnist/*-idx?-ubyte.gz), and the preprocessing the
// Fashion-MNIST models were trained with (tools/train/common.py to_unit): 28x28 zero-padded by 2 pixels to
// 32x32, grey replicated to RGB, values / 255 in [0, 1].
#pragma once
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace amskv::quality {

// An IDX file of unsigned bytes (type 0x08): U8 tensor with the file's dimensions. Errors name the file:
// bad magic, another element type, more than 4 dimensions, a size that disagrees with the dimensions or is
// over 1 GiB, truncated or corrupt compression.
Tensor read_idx_u8(const std::string& path);

struct LabelledImages {
  Tensor images;  // U8 [N, H, W]
  Tensor labels;  // I64 [N]
};

// The "train" or "test" split of an MNIST-style directory: {train,t10k}-images-idx3-ubyte and
// -labels-idx1-ubyte, each with or without .gz. Checks that the counts agree.
LabelledImages load_idx_split(const std::string& dir, const std::string& split);

// U8 [N, H, W] rows [first, first + count) -> F32 [count, 3, H + 2·pad, W + 2·pad] in [0, 1], zero borders.
Tensor grey_to_unit_rgb(const Tensor& images, int64_t first, int64_t count, int64_t pad);

}  // namespace amskv::quality
