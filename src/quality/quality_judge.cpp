#include "quality/quality_judge.h"

#include "core/error.h"
#include "core/parse.h"

namespace amskv::quality {

nlohmann::json QualityScores::to_json() const {
  nlohmann::json j = {{"images", images}, {"class_consistency", consistency.to_json()}};
  if (fd) j["fd"] = {{"distance", fd->distance()}, {"mean_term", fd->mean_term}, {"covariance_term", fd->trace_term}};
  return j;
}

QualityJudge::QualityJudge(backend::Backend& backend, const std::string& classifier_path, const std::string& stats_path)
    : classifier_path_(classifier_path),
      stats_path_(stats_path),
      classifier_(ImageClassifier::load(backend, classifier_path)) {
  if (stats_path.empty()) return;
  reference_ = load_feature_stats(stats_path);
  AMSKV_CHECK(reference_->stats.dim == classifier_.feature_dim(), stats_path, ": statistics of ",
              reference_->stats.dim, "-d features, but ", classifier_path, " makes ", classifier_.feature_dim(),
              "-d features");
}

QualityScores QualityJudge::judge(const Tensor& images, const std::vector<int64_t>& labels) const {
  AMSKV_CHECK(images.ndim() == 4 && images.dim(0) == static_cast<int64_t>(labels.size()), "quality: ",
              labels.size(), " labels for images of shape ", shape_str(images.shape()));
  if (reference_) {
    const auto it = reference_->metadata.find("image_side");
    if (it != reference_->metadata.end()) {
      const auto side = parse_int_list(it->second, stats_path_ + ": metadata image_side");
      AMSKV_CHECK(side.size() == 1 && side[0] == images.dim(2) && side[0] == images.dim(3), stats_path_,
                  ": statistics of ", it->second, "x", it->second, " images, but the images judged are ",
                  images.dim(2), "x", images.dim(3));
    }
  }
  const ClassifierOutput out = classifier_.classify(images);
  QualityScores s;
  s.images = images.dim(0);
  s.consistency = class_consistency(argmax_rows(out.logits), labels, classifier_.num_classes());
  if (reference_ && s.images >= 2) s.fd = frechet_terms(feature_stats(out.features, "generated images' features"),
                                                       reference_->stats);
  return s;
}

nlohmann::json QualityJudge::describe() const {
  nlohmann::json j = {{"classifier", classifier_path_}, {"classes", classifier_.num_classes()},
                      {"feature_dim", classifier_.feature_dim()}};
  if (reference_) {
    j["reference_stats"] = stats_path_;
    j["reference_count"] = reference_->stats.count;
    j["reference_metadata"] = reference_->metadata;
  }
  return j;
}

}  // namespace amskv::quality
