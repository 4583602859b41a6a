// A small image classifier evaluated on a backend: the Fashion-MNIST quality network of
// tools/train/classifier.py (class consistency of generated images, and 128-d features for a Fréchet
// distance). The architecture, with widths read from the weights:
//   x in [0, 1] [N, 3, S, S] -> 2x − 1
//   conv1 -> SiLU -> conv2 -> SiLU -> avg-pool 2x2 -> conv3 -> SiLU -> conv4 -> SiLU -> avg-pool 2x2
//   -> conv5 -> SiLU -> avg-pool 2x2 -> mean over positions = features [N, F] -> fc -> logits [N, classes]
// (square k x k kernels, odd k, stride 1, zero padding k/2, biases; S divisible by 8). Every step is a
// Backend operation (conv2d, silu, area_resize for the pools and the mean, linear), so it runs wherever the
// generator runs; weights are uploaded once.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/tensor.h"
#include "io/tensor_map.h"

namespace amskv::quality {

struct ClassifierOutput {
  Tensor logits;    // F32 [N, classes]
  Tensor features;  // F32 [N, F]
};

class ImageClassifier {
 public:
  static constexpr int kConvs = 5;

  // Validates the tensors (errors name the file from `weights.source()`, the key and the expected shape;
  // unknown keys are refused) and uploads them.
  ImageClassifier(backend::Backend& backend, const io::TensorMap& weights);
  static ImageClassifier load(backend::Backend& backend, const std::string& path);
  ~ImageClassifier();
  ImageClassifier(ImageClassifier&&) noexcept;

  int64_t num_classes() const { return classes_; }
  int64_t feature_dim() const { return features_; }
  const std::string& source() const { return source_; }
  // Images evaluated per pass (bounds the scratch memory: about 0.5 MiB per 32x32 image).
  int64_t images_per_pass() const { return images_per_pass_; }
  void set_images_per_pass(int64_t n);

  // images F32 [N, 3, S, S] in [0, 1] (host).
  ClassifierOutput classify(const Tensor& images) const;
  // The same from backend memory: `count` images of side `side`, float32 [count, 3, side, side].
  ClassifierOutput classify(backend::DeviceSpan images, int64_t count, int64_t side) const;

 private:
  struct Impl;
  backend::Backend& backend_;
  std::string source_;
  int64_t classes_ = 0, features_ = 0, images_per_pass_ = 128;
  std::unique_ptr<Impl> impl_;
};

// Index of the largest logit per row of logits [N, C] (the first on ties).
std::vector<int64_t> argmax_rows(const Tensor& logits);

}  // namespace amskv::quality
