#include "quality/idx_dataset.h"

#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/error.h"

namespace amskv::quality {

namespace {

constexpr int64_t kMaxBytes = int64_t{1} << 30;  // Fashion-MNIST's largest file is 47 MB unpacked

// The whole file, decompressed when it is gzip (zlib's gzread passes plain files through unchanged).
std::vector<uint8_t> read_maybe_gzip(const std::string& path) {
  std::error_code ec;
  AMSKV_CHECK(std::filesystem::is_regular_file(path, ec), path, ": not a regular file (or missing)");
  std::unique_ptr<gzFile_s, int (*)(gzFile)> f(gzopen(path.c_str(), "rb"), gzclose);
  AMSKV_CHECK(f != nullptr, path, ": cannot open: ", std::strerror(errno));
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(1 << 20);
  for (;;) {
    const int got = gzread(f.get(), chunk.data(), static_cast<unsigned>(chunk.size()));
    if (got < 0) {
      int code = 0;
      const char* msg = gzerror(f.get(), &code);
      fail(path, ": cannot decompress (", msg ? msg : "zlib error", ")");
    }
    if (got == 0) break;
    AMSKV_CHECK(static_cast<int64_t>(out.size()) + got <= kMaxBytes, path, ": more than ", kMaxBytes,
                " bytes; not an IDX file this reader expects");
    out.insert(out.end(), chunk.begin(), chunk.begin() + got);
  }
  return out;
}

std::string find_file(const std::string& dir, const std::string& stem) {
  for (const std::string& name : {stem + ".gz", stem}) {
    const std::filesystem::path p = std::filesystem::path(dir) / name;
    std::error_code ec;
    if (std::filesystem::exists(p, ec)) return p.string();
  }
  fail(dir, ": neither ", stem, ".gz nor ", stem, " is there (Debian: apt-get install dataset-fashion-mnist, ",
       "files in /usr/share/datasets/fashion-mnist)");
}

}  // namespace

Tensor read_idx_u8(const std::string& path) {
  const std::vector<uint8_t> d = read_maybe_gzip(path);
  AMSKV_CHECK(d.size() >= 4, path, ": ", d.size(), " bytes, too short for an IDX header");
  AMSKV_CHECK(d[0] == 0 && d[1] == 0, path, ": not an IDX file (the first two bytes must be zero)");
  AMSKV_CHECK(d[2] == 0x08, path, ": IDX element type 0x", std::hex, int{d[2]}, std::dec,
              ", expected 0x08 (unsigned bytes)");
  const int ndim = d[3];
  AMSKV_CHECK(ndim >= 1 && ndim <= 4, path, ": IDX with ", ndim, " dimensions, expected 1 to 4");
  const size_t header = 4 + 4 * static_cast<size_t>(ndim);
  AMSKV_CHECK(d.size() >= header, path, ": truncated IDX header");
  Shape shape;
  int64_t numel = 1;
  for (int i = 0; i < ndim; ++i) {
    const uint8_t* p = d.data() + 4 + 4 * i;
    const int64_t n = (int64_t{p[0]} << 24) | (int64_t{p[1]} << 16) | (int64_t{p[2]} << 8) | int64_t{p[3]};
    shape.push_back(n);
    numel *= n;
    AMSKV_CHECK(numel <= kMaxBytes, path, ": dimensions ", shape_str(shape), " too large");
  }
  AMSKV_CHECK(static_cast<int64_t>(d.size() - header) == numel, path, ": ", d.size() - header,
              " bytes of data, expected ", numel, " for dimensions ", shape_str(shape));
  Tensor t = Tensor::zeros(DType::U8, shape);
  if (numel) std::memcpy(t.mutable_data<uint8_t>(), d.data() + header, static_cast<size_t>(numel));
  return t;
}

LabelledImages load_idx_split(const std::string& dir, const std::string& split) {
  AMSKV_CHECK(split == "train" || split == "test", "dataset split '", split, "': expected train or test");
  const std::string prefix = split == "train" ? "train" : "t10k";
  const std::string image_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string label_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  LabelledImages out;
  out.images = read_idx_u8(image_path);
  AMSKV_CHECK(out.images.ndim() == 3, image_path, ": dimensions ", shape_str(out.images.shape()),
              ", expected [N, H, W]");
  const Tensor labels = read_idx_u8(label_path);
  AMSKV_CHECK(labels.ndim() == 1 && labels.dim(0) == out.images.dim(0), label_path, ": dimensions ",
              shape_str(labels.shape()), ", expected [", out.images.dim(0), "] to match ", image_path);
  out.labels = Tensor::zeros(DType::I64, labels.shape());
  for (int64_t i = 0; i < labels.numel(); ++i) out.labels.mutable_data<int64_t>()[i] = labels.data<uint8_t>()[i];
  return out;
}

Tensor grey_to_unit_rgb(const Tensor& images, int64_t first, int64_t count, int64_t pad) {
  AMSKV_CHECK(images.ndim() == 3 && images.dtype() == DType::U8, "grey images: shape ",
              shape_str(images.shape()), " ", dtype_name(images.dtype()), ", expected U8 [N, H, W]");
  AMSKV_CHECK(first >= 0 && count >= 0 && first + count <= images.dim(0) && pad >= 0, "grey images: rows [", first,
              ", ", first + count, ") of ", images.dim(0), ", padding ", pad);
  const int64_t H = images.dim(1), W = images.dim(2), OH = H + 2 * pad, OW = W + 2 * pad;
  Tensor out = Tensor::zeros(DType::F32, {count, 3, OH, OW});
  float* o = out.mutable_data<float>();
  const uint8_t* in = images.data<uint8_t>();
  for (int64_t n = 0; n < count; ++n)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
          o[((n * 3 + c) * OH + y + pad) * OW + x + pad] =
              static_cast<float>(in[((first + n) * H + y) * W + x]) / 255.0f;
  return out;
}

}  // namespace amskv::quality
