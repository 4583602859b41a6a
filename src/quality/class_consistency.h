// Class consistency of generated images: how often the classifier recognises the class that was asked
// for (the classifier's accuracy on the samples w.r.t. the requested labels), overall and per class.
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

namespace amskv::quality {

struct ClassConsistency {
  int64_t scored = 0;   // images with a label in [0, classes)
  int64_t correct = 0;  // of those, predicted as their label
  int64_t skipped = 0;  // unconditional images (label −1 or = classes): nothing to agree with
  std::vector<int64_t> per_class_scored, per_class_correct;  // [classes]
  double accuracy() const { return scored ? static_cast<double>(correct) / static_cast<double>(scored) : 0.0; }
  nlohmann::json to_json() const;
};

// predictions and labels of the same length; a label outside [−1, classes] is an error naming it.
ClassConsistency class_consistency(const std::vector<int64_t>& predictions, const std::vector<int64_t>& labels,
                                   int64_t classes);

}  // namespace amskv::quality
