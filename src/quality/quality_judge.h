// Judges generated images the way tools/train/train_var.py did in PyTorch: the classifier's accuracy
// w.r.t. the requested labels (class consistency) and the Fréchet distance of its features to reference
// statistics of real images (a small FID). One object per evaluation: the classifier is uploaded once.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "quality/class_consistency.h"
#include "quality/feature_stats_file.h"
#include "quality/frechet.h"
#include "quality/image_classifier.h"

namespace amskv::quality {

struct QualityScores {
  int64_t images = 0;
  ClassConsistency consistency;
  std::optional<FrechetTerms> fd;  // without reference statistics: none
  nlohmann::json to_json() const;
};

class QualityJudge {
 public:
  // `stats_path` may be empty (accuracy only). The statistics' feature size must match the classifier's,
  // and their metadata "image_side", when present, the images judged later.
  QualityJudge(backend::Backend& backend, const std::string& classifier_path, const std::string& stats_path);

  // images F32 [N, 3, S, S] in [0, 1]; labels one per image (−1: unconditional, not scored).
  QualityScores judge(const Tensor& images, const std::vector<int64_t>& labels) const;

  const std::string& classifier_path() const { return classifier_path_; }
  const std::string& stats_path() const { return stats_path_; }
  bool has_reference() const { return reference_.has_value(); }
  int64_t num_classes() const { return classifier_.num_classes(); }
  nlohmann::json describe() const;  // files, sizes, and the statistics' metadata

 private:
  std::string classifier_path_, stats_path_;
  ImageClassifier classifier_;
  std::optional<FeatureStatsFile> reference_;
};

}  // namespace amskv::quality
