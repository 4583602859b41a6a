#include "quality/class_consistency.h"

#include "core/error.h"

namespace amskv::quality {

nlohmann::json ClassConsistency::to_json() const {
  nlohmann::json per = nlohmann::json::array();
  for (size_t c = 0; c < per_class_scored.size(); ++c)
    per.push_back(per_class_scored[c] ? nlohmann::json(static_cast<double>(per_class_correct[c]) /
                                                       static_cast<double>(per_class_scored[c]))
                                      : nlohmann::json(nullptr));
  return {{"accuracy", accuracy()}, {"scored", scored}, {"correct", correct}, {"skipped_unconditional", skipped},
          {"per_class_accuracy", per}};
}

ClassConsistency class_consistency(const std::vector<int64_t>& predictions, const std::vector<int64_t>& labels,
                                   int64_t classes) {
  AMSKV_CHECK(predictions.size() == labels.size(), "class consistency: ", predictions.size(), " predictions for ",
              labels.size(), " labels");
  AMSKV_CHECK(classes > 0, "class consistency: ", classes, " classes");
  ClassConsistency r;
  r.per_class_scored.assign(static_cast<size_t>(classes), 0);
  r.per_class_correct.assign(static_cast<size_t>(classes), 0);
  for (size_t i = 0; i < labels.size(); ++i) {
    const int64_t y = labels[i];
    AMSKV_CHECK(y >= -1 && y <= classes, "class consistency: label ", y, " of image ", i, " is outside [-1, ",
                classes, "]");
    if (y == -1 || y == classes) {
      ++r.skipped;
      continue;
    }
    const bool hit = predictions[i] == y;
    ++r.scored, r.correct += hit;
    ++r.per_class_scored[static_cast<size_t>(y)];
    r.per_class_correct[static_cast<size_t>(y)] += hit;
  }
  return r;
}

}  // namespace amskv::quality
