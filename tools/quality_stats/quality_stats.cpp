// amskv_quality_stats: the reference statistics of the Fréchet distance. Runs the image classifier over a
// split of an MNIST-style IDX dataset, reports its accuracy there, writes the mean and covariance of its
// features (F64 safetensors with metadata saying how), and, for scale, the Fréchet distance of real
// images of another split against them (the floor a perfect generator would reach at that sample size).
//
// The shipped statistics (weights/fashion-mnist/fmnist_test_features.safetensors) were made by, on one line:
//   build/amskv_quality_stats --classifier weights/fashion-mnist/classifier_fmnist.safetensors
//       --data /usr/share/datasets/fashion-mnist --split test
//       --out weights/fashion-mnist/fmnist_test_features.safetensors --compare-split train --compare-count 1000
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

#include "backend/backend_factory.h"
#include "core/error.h"
#include "quality/class_consistency.h"
#include "quality/feature_stats_file.h"
#include "quality/frechet.h"
#include "quality/idx_dataset.h"
#include "quality/image_classifier.h"

namespace {

struct Args {
  std::string classifier, data = "/usr/share/datasets/fashion-mnist", split = "test", out, compare_split;
  int64_t pad = 2, compare_count = 1000;
  amskv::backend::BackendOptions backend;
  std::string command;
};

struct SplitResult {
  amskv::quality::ClassifierOutput out;
  amskv::quality::ClassConsistency accuracy;
};

SplitResult classify_split(const amskv::quality::ImageClassifier& net, const amskv::quality::LabelledImages& d,
                           int64_t count, int64_t pad) {
  SplitResult r;
  r.out = net.classify(amskv::quality::grey_to_unit_rgb(d.images, 0, count, pad));
  const std::vector<int64_t> labels(d.labels.data<int64_t>(), d.labels.data<int64_t>() + count);
  r.accuracy = amskv::quality::class_consistency(amskv::quality::argmax_rows(r.out.logits), labels, net.num_classes());
  return r;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

void run(const Args& a) {
  using namespace amskv;
  const auto backend = backend::make_backend(a.backend);
  const quality::ImageClassifier net = quality::ImageClassifier::load(*backend, a.classifier);
  const quality::LabelledImages data = quality::load_idx_split(a.data, a.split);
  const int64_t n = data.images.dim(0);
  const auto t0 = std::chrono::steady_clock::now();
  const SplitResult r = classify_split(net, data, n, a.pad);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const quality::GaussianStats stats = quality::feature_stats(r.out.features, a.split + " split features");
  std::printf("%s split: %lld images, classifier accuracy %.4f (%lld correct), %.1f s on %s (%.2f ms/image)\n",
              a.split.c_str(), static_cast<long long>(n), r.accuracy.accuracy(),
              static_cast<long long>(r.accuracy.correct), seconds, backend->name().c_str(), 1e3 * seconds / n);
  std::printf("per-class accuracy:");
  for (size_t c = 0; c < r.accuracy.per_class_scored.size(); ++c)
    std::printf(" %zu:%.3f", c, static_cast<double>(r.accuracy.per_class_correct[c]) /
                                    static_cast<double>(std::max<int64_t>(1, r.accuracy.per_class_scored[c])));
  std::printf("\n");

  std::string compare_note;
  if (!a.compare_split.empty()) {
    const quality::LabelledImages other = quality::load_idx_split(a.data, a.compare_split);
    const int64_t m = std::min(a.compare_count, other.images.dim(0));
    const SplitResult o = classify_split(net, other, m, a.pad);
    const quality::FrechetTerms fd =
        quality::frechet_terms(quality::feature_stats(o.out.features, a.compare_split + " features"), stats);
    compare_note = cat("FD of the first ", m, " ", a.compare_split, " images vs these statistics: ", fd.distance(),
                       " (mean term ", fd.mean_term, ", covariance term ", fd.trace_term, "); classifier accuracy on them ",
                       o.accuracy.accuracy());
    std::printf("%s\n", compare_note.c_str());
  }

  if (!a.out.empty()) {
    char acc[32];
    std::snprintf(acc, sizeof acc, "%.4f", r.accuracy.accuracy());
    quality::save_feature_stats(
        a.out, stats,
        {{"what", cat("mean and unbiased covariance of the classifier's ", net.feature_dim(),
                      "-d features (after the last pool's mean, before fc) over every image of the ", a.split,
                      " split")},
         {"classifier", a.classifier},
         {"data", a.data},
         {"split", a.split},
         {"image_side", std::to_string(data.images.dim(1) + 2 * a.pad)},
         {"preprocess", cat("IDX uint8 images zero-padded by ", a.pad,
                            " px, grey replicated to RGB, /255 in [0,1]; the network normalises (x-0.5)/0.5")},
         {"classifier_accuracy", acc},
         {"backend", backend->name()},
         {"command", a.command},
         {"date", utc_now()},
         {"reference_fd", compare_note}});
    std::printf("wrote %s\n", a.out.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 0; i < argc; ++i) a.command += (i ? " " : "") + std::string(i ? argv[i] : "amskv_quality_stats");
  CLI::App app{"Reference feature statistics of a dataset for the Fréchet distance (and the classifier's accuracy)"};
  app.add_option("--classifier", a.classifier, "Classifier weights (tools/train/classifier.py layout)")->required();
  app.add_option("--data", a.data, "Folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]");
  app.add_option("--split", a.split, "Split whose statistics are written")->check(CLI::IsMember({"train", "test"}));
  app.add_option("--pad", a.pad, "Zero border added to each image side (28 -> 32: 2)")->check(CLI::Range(0, 64));
  app.add_option("--out", a.out, "Write the statistics here (safetensors: F64 mu, sigma)");
  app.add_option("--compare-split", a.compare_split, "Also: FD of real images of this split vs the statistics")
      ->check(CLI::IsMember({"train", "test"}));
  app.add_option("--compare-count", a.compare_count, "How many (the first N) images of --compare-split")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 24));
  app.add_option("--device", a.backend.device, "Backend")->check(CLI::IsMember(amskv::backend::available_devices()));
  app.add_option("--threads", a.backend.threads, "CPU threads (0 = all cores)")->check(CLI::Range(0, 1024));
  CLI11_PARSE(app, argc, argv);
  try {
    run(a);
  } catch (const amskv::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "error: out of memory\n";
    return 1;
  }
  return 0;
}
