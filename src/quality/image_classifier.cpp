#include "quality/image_classifier.h"

#include <algorithm>

#include "core/error.h"
#include "io/tensor_file.h"

namespace amskv::quality {

namespace {
constexpr bool kPoolAfter[ImageClassifier::kConvs] = {false, true, false, true, true};  // 1-based: 2, 4, 5
}  // namespace

struct ImageClassifier::Impl {
  std::vector<backend::ConvWeight> convs;
  backend::LinearWeight fc;
};

ImageClassifier::ImageClassifier(backend::Backend& backend, const io::TensorMap& t)
    : backend_(backend), source_(t.source()), impl_(std::make_unique<Impl>()) {
  std::vector<std::string> known = {"fc.weight", "fc.bias"};
  int64_t cin = 3;
  for (int i = 1; i <= kConvs; ++i) {
    const std::string w_key = cat("conv", i, ".weight"), b_key = cat("conv", i, ".bias");
    known.push_back(w_key), known.push_back(b_key);
    const Tensor& w = t.weight(w_key, {-1, -1, -1, -1});
    const int64_t cout = w.dim(0), k = w.dim(2);
    AMSKV_CHECK(w.dim(1) == cin && w.dim(3) == k && k % 2 == 1 && cout > 0, source_, ": key ", w_key,
                " has shape ", shape_str(w.shape()), ", expected [cout, ", cin, ", k, k] with odd k (", cin,
                i == 1 ? " = RGB input channels)" : cat(" = conv", i - 1, "'s output channels)"));
    const Tensor bias = t.weight(b_key, {cout}).to_f32();
    impl_->convs.push_back(backend.make_conv(w.to_f32(), &bias, k / 2));
    cin = cout;
  }
  features_ = cin;
  const Tensor& fw = t.weight("fc.weight", {-1, features_});
  classes_ = fw.dim(0);
  AMSKV_CHECK(classes_ > 0, source_, ": key fc.weight has no classes");
  const Tensor fb = t.weight("fc.bias", {classes_}).to_f32();
  impl_->fc = backend.make_linear(fw.to_f32(), &fb);
  for (const auto& [key, tensor] : t.all())
    AMSKV_CHECK(std::find(known.begin(), known.end(), key) != known.end(), source_, ": unexpected key ", key,
                " (a classifier has conv1..conv", kConvs, " and fc, tools/train/classifier.py)");
}

ImageClassifier ImageClassifier::load(backend::Backend& backend, const std::string& path) {
  return ImageClassifier(backend, io::load_tensor_file(path));
}

ImageClassifier::~ImageClassifier() = default;
ImageClassifier::ImageClassifier(ImageClassifier&&) noexcept = default;

void ImageClassifier::set_images_per_pass(int64_t n) {
  AMSKV_CHECK(n >= 1, "classifier: images per pass must be positive, got ", n);
  images_per_pass_ = n;
}

ClassifierOutput ImageClassifier::classify(const Tensor& images) const {
  AMSKV_CHECK(images.ndim() == 4 && images.dim(1) == 3 && images.dim(2) == images.dim(3), source_,
              ": images have shape ", shape_str(images.shape()), ", expected [N, 3, S, S]");
  const Tensor x = images.to_f32();
  backend::DeviceBuffer dev = backend_.alloc(DType::F32, x.numel());
  if (x.numel()) backend_.upload(dev, x.raw(), DType::F32);
  return classify(dev, x.dim(0), x.dim(2));
}

ClassifierOutput ImageClassifier::classify(backend::DeviceSpan images, int64_t count, int64_t side) const {
  AMSKV_CHECK(count >= 0 && side > 0 && side % 8 == 0, source_, ": images of side ", side,
              ", expected a positive multiple of 8 (three 2x2 pools)");
  const int64_t per_image = 3 * side * side;
  AMSKV_CHECK(images.dtype() == DType::F32 && images.size() >= count * per_image, source_, ": ", images.size(), " ",
              dtype_name(images.dtype()), " values for ", count, " images of 3x", side, "x", side, " float32");
  ClassifierOutput out;
  out.logits = Tensor::zeros(DType::F32, {count, classes_});
  out.features = Tensor::zeros(DType::F32, {count, features_});
  if (count == 0) return out;

  backend::Backend& b = backend_;
  const int64_t pass = std::min(count, images_per_pass_);
  // Two ping-pong buffers as large as the widest activation of a pass (every conv writes float32).
  int64_t widest = 3 * side * side;
  {
    int64_t s = side;
    for (int i = 0; i < kConvs; ++i) {
      widest = std::max(widest, impl_->convs[i].cout * s * s);
      if (kPoolAfter[i]) s /= 2;
    }
  }
  backend::DeviceBuffer a = b.alloc(DType::F32, pass * widest), c = b.alloc(DType::F32, pass * widest);
  // The normalisation x·2 − 1 happens before the zero padding of conv1 (as in PyTorch), so it cannot be
  // folded into conv1's weights: y = 0 + 2·x + (−1)·ones.
  Tensor ones_host = Tensor::zeros(DType::F32, {pass * per_image});
  std::fill_n(ones_host.mutable_data<float>(), ones_host.numel(), 1.0f);
  const backend::DeviceBuffer ones = b.constant(ones_host, DType::F32);
  const bool fc_takes_f32 = b.compute_dtype() == DType::F32;
  backend::DeviceBuffer fc_in = fc_takes_f32 ? backend::DeviceBuffer() : b.alloc(b.compute_dtype(), pass * features_);
  backend::DeviceBuffer logits = b.alloc(DType::F32, pass * classes_);

  for (int64_t first = 0; first < count; first += pass) {
    const int64_t n = std::min(pass, count - first);
    backend::DeviceSpan x = a.slice(0, n * per_image);
    b.fill_zero(x);
    b.accumulate(x, 2.0f, images.slice(first * per_image, n * per_image), -1.0f, ones.slice(0, n * per_image));
    backend::DeviceBuffer* in = &a;
    backend::DeviceBuffer* tmp = &c;
    int64_t s = side;
    for (int i = 0; i < kConvs; ++i) {
      const backend::ConvWeight& w = impl_->convs[static_cast<size_t>(i)];
      const backend::DeviceSpan y = tmp->slice(0, n * w.cout * s * s);
      b.conv2d(in->slice(0, n * w.cin * s * s), n, s, s, w, y, false, false);
      b.silu(y, y);
      std::swap(in, tmp);
      if (kPoolAfter[i]) {
        b.area_resize(in->slice(0, n * w.cout * s * s), n * w.cout, s, s, s / 2, s / 2,
                      tmp->slice(0, n * w.cout * (s / 2) * (s / 2)));
        s /= 2;
        std::swap(in, tmp);
      }
    }
    // Mean over the remaining s x s positions: [n, F, s, s] -> [n, F] (planes are image-major).
    const backend::DeviceSpan feats = tmp->slice(0, n * features_);
    b.area_resize(in->slice(0, n * features_ * s * s), n * features_, s, s, 1, 1, feats);
    b.download(feats, out.features.mutable_data<float>() + first * features_);
    backend::DeviceSpan fc_x = feats;
    if (!fc_takes_f32) {  // linear() wants its input in the compute dtype
      fc_x = fc_in.slice(0, n * features_);
      b.upload(fc_x, out.features.data<float>() + first * features_, DType::F32);
    }
    b.linear(fc_x, n, impl_->fc, logits.slice(0, n * classes_));
    b.download(logits.slice(0, n * classes_), out.logits.mutable_data<float>() + first * classes_);
  }
  return out;
}

std::vector<int64_t> argmax_rows(const Tensor& logits) {
  AMSKV_CHECK(logits.ndim() == 2 && logits.dim(1) > 0, "argmax: logits have shape ", shape_str(logits.shape()),
              ", expected [N, C]");
  const Tensor l = logits.to_f32();
  const int64_t N = l.dim(0), C = l.dim(1);
  std::vector<int64_t> out(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    const float* row = l.data<float>() + i * C;
    out[static_cast<size_t>(i)] = std::max_element(row, row + C) - row;
  }
  return out;
}

}  // namespace amskv::quality
