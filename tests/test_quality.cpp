// The quality measures (src/quality): the symmetric eigensolver and matrix square root, the Fréchet
// distance on closed-form cases, feature statistics and their file, class consistency, the IDX reader, and
// the C++ classifier against PyTorch's (tests/fixtures/quality/classifier_reference.safetensors).
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "io/tensor_file.h"
#include "io_test_util.h"
#include "quality/class_consistency.h"
#include "quality/feature_stats_file.h"
#include "quality/frechet.h"
#include "quality/idx_dataset.h"
#include "quality/image_classifier.h"
#include "quality/symmetric_eigen.h"

using namespace amskv;
using namespace amskv::quality;
using amskv::io_test::expect_error;
using amskv::io_test::ScratchDir;

namespace {

const std::string kClassifier = std::string(AMSKV_SOURCE_DIR) + "/weights/fashion-mnist/classifier_fmnist.safetensors";
const std::string kReference = std::string(AMSKV_SOURCE_DIR) + "/tests/fixtures/quality/classifier_reference.safetensors";
const std::string kTestStats = std::string(AMSKV_SOURCE_DIR) + "/weights/fashion-mnist/fmnist_test_features.safetensors";
const std::string kFmnistDir = "/usr/share/datasets/fashion-mnist";

using Matrix = std::vector<double>;

Matrix matmul(const Matrix& a, const Matrix& b, int64_t n) {
  Matrix c(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < n; ++j) c[i * n + j] += a[i * n + k] * b[k * n + j];
  return c;
}

Matrix transpose(const Matrix& a, int64_t n) {
  Matrix t(a.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) t[j * n + i] = a[i * n + j];
  return t;
}

// B·Bᵀ for a random B with `rank` columns: symmetric PSD, singular when rank < n.
Matrix random_psd(int64_t n, int64_t rank, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> d;
  Matrix b(static_cast<size_t>(n * rank));
  for (double& v : b) v = d(rng);
  Matrix s(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < rank; ++k) s[i * n + j] += b[i * rank + k] * b[j * rank + k];
  return s;
}

double max_abs_diff(const Matrix& a, const Matrix& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

GaussianStats gaussian(std::vector<double> mu, Matrix sigma) {
  GaussianStats s;
  s.dim = static_cast<int64_t>(mu.size());
  s.mu = std::move(mu);
  s.sigma = std::move(sigma);
  return s;
}

Matrix diagonal(const std::vector<double>& d) {
  const size_t n = d.size();
  Matrix m(n * n, 0.0);
  for (size_t i = 0; i < n; ++i) m[i * n + i] = d[i];
  return m;
}

}  // namespace

// --- eigensolver and square root ------------------------------------------------------------------------

TEST(SymmetricEigen, DecomposesARandomMatrix) {
  const int64_t n = 40;
  const Matrix a = random_psd(n, n, 1);
  const SymmetricEigen e = symmetric_eigen(a, n);
  ASSERT_EQ(e.values.size(), static_cast<size_t>(n));
  for (int64_t k = 1; k < n; ++k) EXPECT_LE(e.values[k - 1], e.values[k]);
  // A·V = V·diag(λ) and VᵀV = I.
  const Matrix av = matmul(a, e.vectors, n);
  Matrix vl = e.vectors;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) vl[i * n + j] *= e.values[j];
  EXPECT_LT(max_abs_diff(av, vl), 1e-9 * e.values.back());
  EXPECT_LT(max_abs_diff(matmul(transpose(e.vectors, n), e.vectors, n), diagonal(std::vector<double>(n, 1.0))), 1e-12);
  const std::vector<double> only = symmetric_eigenvalues(a, n);
  EXPECT_LT(max_abs_diff(only, e.values), 1e-9 * e.values.back());
}

TEST(SymmetricEigen, KnownTwoByTwo) {
  // [[2, 1], [1, 2]]: eigenvalues 1 and 3, eigenvectors (1, −1)/√2 and (1, 1)/√2.
  const SymmetricEigen e = symmetric_eigen({2, 1, 1, 2}, 2);
  EXPECT_NEAR(e.values[0], 1.0, 1e-14);
  EXPECT_NEAR(e.values[1], 3.0, 1e-14);
  EXPECT_NEAR(std::abs(e.vectors[0 * 2 + 1]), std::sqrt(0.5), 1e-14);  // column 1 = (1, 1)/√2 up to sign
  EXPECT_NEAR(e.vectors[0 * 2 + 1], e.vectors[1 * 2 + 1], 1e-14);
  EXPECT_NEAR(e.vectors[0 * 2 + 0], -e.vectors[1 * 2 + 0], 1e-14);
}

TEST(SymmetricEigen, RefusesBadInput) {
  expect_error([] { symmetric_eigen({1, 2, 3}, 2, "test matrix"); }, {"test matrix", "3 values", "2x2"});
  expect_error([] { symmetric_eigen({1, NAN, NAN, 1}, 2, "test matrix"); }, {"test matrix", "non-finite"});
  EXPECT_TRUE(symmetric_eigen({}, 0).values.empty());
}

TEST(SqrtmPsd, SquaresBackToTheMatrix) {
  for (int64_t rank : {30, 12}) {  // full rank and singular
    const int64_t n = 30;
    const Matrix a = random_psd(n, rank, 2 + static_cast<unsigned>(rank));
    const Matrix r = sqrtm_psd(a, n);
    EXPECT_LT(max_abs_diff(r, transpose(r, n)), 1e-12) << "rank " << rank;
    double scale = 0;
    for (double v : a) scale = std::max(scale, std::abs(v));
    EXPECT_LT(max_abs_diff(matmul(r, r, n), a), 1e-10 * scale) << "rank " << rank;
    for (double l : symmetric_eigenvalues(r, n)) EXPECT_GT(l, -1e-7) << "rank " << rank;  // PSD
  }
}

TEST(SqrtmPsd, DiagonalAndClampedNegative) {
  const Matrix r = sqrtm_psd(diagonal({4, 9, 0, -1e-12}), 4);
  EXPECT_LT(max_abs_diff(r, diagonal({2, 3, 0, 0})), 1e-14);
}

// --- Fréchet distance -----------------------------------------------------------------------------------

TEST(Frechet, IdenticalStatsGiveZero) {
  const int64_t n = 64;
  GaussianStats s = gaussian(std::vector<double>(n, 0.3), random_psd(n, n, 5));
  double trace_s = 0;
  for (int64_t i = 0; i < n; ++i) trace_s += s.sigma[i * n + i];
  EXPECT_NEAR(frechet_distance(s, s), 0.0, 1e-10 * trace_s);
  // A singular covariance: its null directions give eigenvalues of rounding size (~ε·‖S‖²) whose square
  // roots add up to about sqrt(ε)·‖S‖ each; relative to tr(S) that is still ~1e-7.
  GaussianStats singular = gaussian(std::vector<double>(n, 0.0), random_psd(n, 10, 6));
  double trace = 0;
  for (int64_t i = 0; i < n; ++i) trace += singular.sigma[i * n + i];
  EXPECT_NEAR(frechet_distance(singular, singular), 0.0, 1e-6 * trace);
}

TEST(Frechet, IdenticalFeatureSetsGiveZero) {
  std::mt19937 rng(3);
  std::normal_distribution<float> d;
  std::vector<float> v(500 * 16);
  for (float& x : v) x = d(rng);
  const Tensor f = Tensor::from_vector<float>({500, 16}, v);
  EXPECT_NEAR(frechet_distance(feature_stats(f), feature_stats(f)), 0.0, 1e-10);
}

TEST(Frechet, OneDimensionalClosedForm) {
  // N(m1, s1²) vs N(m2, s2²): (m1 − m2)² + (s1 − s2)².
  const double fd = frechet_distance(gaussian({1.5}, {4.0}), gaussian({-0.5}, {0.25}));
  EXPECT_NEAR(fd, 4.0 + 1.5 * 1.5, 1e-12);
}

TEST(Frechet, DiagonalClosedForm) {
  const std::vector<double> va = {1, 4, 9, 0.01}, vb = {4, 1, 16, 0.04};
  const auto a = gaussian({0, 1, 2, 3}, diagonal(va)), b = gaussian({1, 1, 0, 3}, diagonal(vb));
  double want = 1 + 0 + 4 + 0;
  for (size_t i = 0; i < va.size(); ++i) want += std::pow(std::sqrt(va[i]) - std::sqrt(vb[i]), 2);
  const FrechetTerms t = frechet_terms(a, b);
  EXPECT_NEAR(t.mean_term, 5.0, 1e-12);
  EXPECT_NEAR(t.distance(), want, 1e-12);
}

TEST(Frechet, NonCommutingTwoByTwoClosedForm) {
  // For 2x2 matrices with positive eigenvalues: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)); with M = S1·S2.
  const Matrix s1 = {2.0, 0.6, 0.6, 1.0}, s2 = {0.5, -0.3, -0.3, 1.5};
  const Matrix m = matmul(s1, s2, 2);
  const double det = (s1[0] * s1[3] - s1[1] * s1[2]) * (s2[0] * s2[3] - s2[1] * s2[2]);
  const double tr_sqrt = std::sqrt(m[0] + m[3] + 2 * std::sqrt(det));
  const double want = 0.5 * 0.5 + 3.0 + 2.0 - 2 * tr_sqrt;
  EXPECT_NEAR(frechet_distance(gaussian({0.5, 0}, s1), gaussian({0, 0}, s2)), want, 1e-12);
  EXPECT_NEAR(frechet_distance(gaussian({0, 0}, s2), gaussian({0.5, 0}, s1)), want, 1e-12);  // symmetric
}

TEST(Frechet, SymmetricForRandomCovariances) {
  const int64_t n = 48;
  const auto a = gaussian(std::vector<double>(n, 0.1), random_psd(n, n, 7));
  const auto b = gaussian(std::vector<double>(n, -0.2), random_psd(n, 20, 8));
  const double ab = frechet_distance(a, b), ba = frechet_distance(b, a);
  EXPECT_GT(ab, 0.0);
  EXPECT_NEAR(ab, ba, 1e-8 * ab);
}

TEST(Frechet, RefusesMismatchedSizes) {
  expect_error([] { frechet_distance(gaussian({0}, {1}), gaussian({0, 0}, diagonal({1, 1}))); },
               {"feature sizes differ", "1", "2"});
  expect_error([] { frechet_distance(gaussian({0, 0}, {1}), gaussian({0, 0}, diagonal({1, 1}))); },
               {"first", "covariance"});
}

TEST(FeatureStats, MeanAndUnbiasedCovariance) {
  // Rows (1, 2), (3, 6), (5, 4): mean (3, 4); covariance [[4, 2], [2, 4]] (divided by N − 1 = 2).
  const GaussianStats s = feature_stats(Tensor::from_vector<float>({3, 2}, {1, 2, 3, 6, 5, 4}));
  EXPECT_EQ(s.count, 3);
  EXPECT_NEAR(s.mu[0], 3.0, 1e-12);
  EXPECT_NEAR(s.mu[1], 4.0, 1e-12);
  EXPECT_LT(max_abs_diff(s.sigma, {4, 2, 2, 4}), 1e-12);
  expect_error([] { feature_stats(Tensor::from_vector<float>({1, 2}, {1, 2}), "one row"); },
               {"one row", "at least 2 samples"});
  expect_error([] { feature_stats(Tensor::from_vector<float>({2, 1}, {1, NAN}), "nan rows"); },
               {"nan rows", "non-finite"});
}

TEST(FeatureStatsFile, RoundTripsAndChecks) {
  ScratchDir dir;
  const GaussianStats s = gaussian({1, 2}, {4, 2, 2, 4});
  GaussianStats counted = s;
  counted.count = 10;
  save_feature_stats(dir.path("s.safetensors"), counted, {{"classifier", "c.safetensors"}});
  const FeatureStatsFile f = load_feature_stats(dir.path("s.safetensors"));
  EXPECT_EQ(f.stats.mu, s.mu);
  EXPECT_EQ(f.stats.sigma, s.sigma);
  EXPECT_EQ(f.stats.count, 10);
  EXPECT_EQ(f.metadata.at("classifier"), "c.safetensors");

  io::save_safetensors(dir.path("bad.safetensors"), {{"mu", Tensor::from_vector<double>({2}, {1, 2})},
                                                     {"sigma", Tensor::from_vector<double>({2, 1}, {1, 2})}});
  expect_error([&] { load_feature_stats(dir.path("bad.safetensors")); }, {"bad.safetensors", "sigma", "[2, 1]"});
  io::save_safetensors(dir.path("asym.safetensors"), {{"mu", Tensor::from_vector<double>({2}, {1, 2})},
                                                      {"sigma", Tensor::from_vector<double>({2, 2}, {1, 2, 3, 1})}});
  expect_error([&] { load_feature_stats(dir.path("asym.safetensors")); }, {"asym.safetensors", "not symmetric"});
  io::save_safetensors(dir.path("extra.safetensors"), {{"mu", Tensor::from_vector<double>({1}, {1})},
                                                       {"sigma", Tensor::from_vector<double>({1, 1}, {1})},
                                                       {"count", Tensor::from_vector<int64_t>({1}, {3})}});
  expect_error([&] { load_feature_stats(dir.path("extra.safetensors")); }, {"extra.safetensors", "unexpected key count"});
}

// --- class consistency ----------------------------------------------------------------------------------

TEST(ClassConsistency, CountsPerClassAndSkipsUnconditional) {
  const ClassConsistency c = class_consistency({0, 1, 1, 2, 0, 3}, {0, 1, 2, 2, -1, 3}, 3 + 1);
  EXPECT_EQ(c.scored, 5);
  EXPECT_EQ(c.correct, 4);
  EXPECT_EQ(c.skipped, 1);
  EXPECT_DOUBLE_EQ(c.accuracy(), 0.8);
  EXPECT_EQ(c.per_class_scored, (std::vector<int64_t>{1, 1, 2, 1}));
  EXPECT_EQ(c.per_class_correct, (std::vector<int64_t>{1, 1, 1, 1}));
  const ClassConsistency u = class_consistency({0}, {4}, 4);  // label = classes: the null class
  EXPECT_EQ(u.skipped, 1);
  expect_error([] { class_consistency({0}, {7}, 4); }, {"label 7", "outside"});
  expect_error([] { class_consistency({0, 1}, {0}, 4); }, {"2 predictions for 1 labels"});
}

// --- IDX files ------------------------------------------------------------------------------------------

namespace {
std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> b = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) b.insert(b.end(), {uint8_t(d >> 24), uint8_t(d >> 16), uint8_t(d >> 8), uint8_t(d)});
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

void write_gzip(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  gzclose(f);
}
}  // namespace

TEST(IdxDataset, ReadsPlainAndGzip) {
  ScratchDir dir;
  const std::vector<uint8_t> pixels = {0, 255, 10, 20, 30, 40, 50, 60};  // 2 images of 2x2
  io_test::write_bytes(dir.path("train-images-idx3-ubyte"), idx_bytes({2, 2, 2}, pixels));
  write_gzip(dir.path("train-labels-idx1-ubyte.gz"), idx_bytes({2}, {3, 7}));
  const LabelledImages d = load_idx_split(dir.path(""), "train");
  EXPECT_EQ(d.images.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(d.images.data<uint8_t>()[1], 255);
  EXPECT_EQ(d.labels.data<int64_t>()[1], 7);

  const Tensor rgb = grey_to_unit_rgb(d.images, 1, 1, 1);
  ASSERT_EQ(rgb.shape(), (Shape{1, 3, 4, 4}));
  for (int c = 0; c < 3; ++c) {
    const float* p = rgb.data<float>() + c * 16;
    EXPECT_EQ(p[0], 0.0f);                     // border
    EXPECT_FLOAT_EQ(p[1 * 4 + 1], 30 / 255.f);  // first pixel of image 1
    EXPECT_FLOAT_EQ(p[2 * 4 + 2], 60 / 255.f);
  }
  expect_error([&] { load_idx_split(dir.path(""), "test"); }, {"t10k-images-idx3-ubyte", "dataset-fashion-mnist"});
  expect_error([&] { load_idx_split(dir.path(""), "valid"); }, {"valid", "train or test"});
}

TEST(IdxDataset, RefusesMalformedFiles) {
  ScratchDir dir;
  io_test::write_bytes(dir.path("short"), idx_bytes({2, 2, 2}, {1, 2, 3}));
  expect_error([&] { read_idx_u8(dir.path("short")); }, {"short", "3 bytes of data", "expected 8"});
  std::vector<uint8_t> floats = idx_bytes({1}, {0, 0, 0, 0});
  floats[2] = 0x0D;
  io_test::write_bytes(dir.path("floats"), floats);
  expect_error([&] { read_idx_u8(dir.path("floats")); }, {"floats", "element type 0xd"});
  io_test::write_bytes(dir.path("magic"), {1, 2, 3, 4, 5});
  expect_error([&] { read_idx_u8(dir.path("magic")); }, {"magic", "not an IDX file"});
  std::vector<uint8_t> gz_bad = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3};
  io_test::write_bytes(dir.path("bad.gz"), gz_bad);
  EXPECT_THROW(read_idx_u8(dir.path("bad.gz")), Error);
}

// --- the classifier -------------------------------------------------------------------------------------

TEST(ImageClassifier, MatchesPyTorch) {
  backend::CpuBackend cpu;
  ImageClassifier net = ImageClassifier::load(cpu, kClassifier);
  EXPECT_EQ(net.num_classes(), 10);
  EXPECT_EQ(net.feature_dim(), 128);
  const io::TensorMap ref = io::load_safetensors(kReference);
  const Tensor grey = grey_to_unit_rgb(ref.at("grey_u8"), 0, 8, 2);
  const Tensor& rgb = ref.at("rgb", {2, 3, 32, 32});
  Tensor images = Tensor::zeros(DType::F32, {10, 3, 32, 32});
  std::copy_n(grey.data<float>(), grey.numel(), images.mutable_data<float>());
  std::copy_n(rgb.data<float>(), rgb.numel(), images.mutable_data<float>() + grey.numel());

  for (int64_t pass : {int64_t{128}, int64_t{3}}) {  // one pass, and passes with a short last one
    net.set_images_per_pass(pass);
    const ClassifierOutput out = net.classify(images);
    ASSERT_EQ(out.logits.shape(), (Shape{10, 10}));
    ASSERT_EQ(out.features.shape(), (Shape{10, 128}));
    const auto check = [&](const Tensor& got, const Tensor& want, const char* what) {
      double scale = 0, err = 0;
      for (int64_t i = 0; i < want.numel(); ++i) {
        scale = std::max(scale, double(std::abs(want.data<float>()[i])));
        err = std::max(err, double(std::abs(got.data<float>()[i] - want.data<float>()[i])));
      }
      EXPECT_LT(err, 1e-5 * scale) << what << " (pass " << pass << ")";
    };
    check(out.logits, ref.at("logits"), "logits");
    check(out.features, ref.at("features"), "features");
    const std::vector<int64_t> pred = argmax_rows(out.logits), want = argmax_rows(ref.at("logits"));
    EXPECT_EQ(pred, want);
    const Tensor& labels = ref.at("grey_labels");
    for (int i = 0; i < 8; ++i) EXPECT_EQ(pred[i], labels.data<int64_t>()[i]) << "image " << i;
  }
}

TEST(ImageClassifier, RefusesMalformedWeights) {
  backend::CpuBackend cpu;
  const io::TensorMap good = io::load_tensor_file(kClassifier);
  auto with = [&](const std::string& key, const Tensor* t) {
    io::TensorMap m("edited.safetensors");
    for (const auto& [k, v] : good.all())
      if (k != key) m.insert(k, v);
    if (t) m.insert(key, *t);
    return m;
  };
  expect_error([&] { ImageClassifier(cpu, with("conv3.weight", nullptr)); },
               {"edited.safetensors", "missing key conv3.weight"});
  const Tensor wrong = Tensor::zeros(DType::F32, {64, 16, 3, 3});
  expect_error([&] { ImageClassifier(cpu, with("conv3.weight", &wrong)); },
               {"edited.safetensors", "conv3.weight", "[64, 16, 3, 3]", "conv2's output channels"});
  const Tensor fc = Tensor::zeros(DType::F32, {10, 64});
  expect_error([&] { ImageClassifier(cpu, with("fc.weight", &fc)); }, {"edited.safetensors", "fc.weight", "[10, 64]"});
  const Tensor extra = Tensor::zeros(DType::F32, {1});
  expect_error([&] { ImageClassifier(cpu, with("bn.weight", &extra)); }, {"edited.safetensors", "unexpected key bn.weight"});
  const ImageClassifier net(cpu, good);
  expect_error([&] { net.classify(Tensor::zeros(DType::F32, {1, 3, 28, 28})); }, {"side 28", "multiple of 8"});
  expect_error([&] { net.classify(Tensor::zeros(DType::F32, {1, 1, 32, 32})); }, {"[1, 1, 32, 32]", "[N, 3, S, S]"});
}

// The first 1,000 real test images: the C++ classifier gets as many right as PyTorch, and the Fréchet
// distance of their features to the shipped test statistics is PyTorch's (needs the Debian dataset and the
// shipped statistics; skipped without them). The whole test set (92.45%) is `amskv_quality_stats`' job.
TEST(ImageClassifier, RealTestImagesMatchPyTorch) {
  if (!std::filesystem::exists(kFmnistDir + "/t10k-images-idx3-ubyte.gz")) GTEST_SKIP() << "no " << kFmnistDir;
  backend::CpuBackend cpu;
  const ImageClassifier net = ImageClassifier::load(cpu, kClassifier);
  const LabelledImages test = load_idx_split(kFmnistDir, "test");
  const int64_t n = 1000;
  const ClassifierOutput out = net.classify(grey_to_unit_rgb(test.images, 0, n, 2));
  const std::vector<int64_t> labels(test.labels.data<int64_t>(), test.labels.data<int64_t>() + n);
  const ClassConsistency c = class_consistency(argmax_rows(out.logits), labels, 10);
  const io::TensorMap ref = io::load_safetensors(kReference);
  EXPECT_EQ(c.correct, std::stoll(ref.metadata.at("test_first_1000_correct")));
  const FeatureStatsFile shipped = load_feature_stats(kTestStats);
  EXPECT_EQ(shipped.stats.count, 10000);
  EXPECT_NEAR(frechet_distance(feature_stats(out.features), shipped.stats),
              std::stod(ref.metadata.at("fd_first_1000_test")), 1e-5);
}
