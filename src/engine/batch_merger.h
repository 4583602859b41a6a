// Folds per-batch generation results into one: tensors are concatenated once at the end (only when kept),
// timings are summed, the analysis is averaged over batches weighted by their images, and the KV footprint
// is the first (largest) batch's.
#pragma once
#include <vector>

#include "engine/generator.h"

namespace amskv::engine {

class BatchMerger {
 public:
  explicit BatchMerger(bool keep_tensors) : keep_tensors_(keep_tensors) {}
  void add(GenerateResult&& batch);
  GenerateResult finish();

 private:
  bool keep_tensors_;
  GenerateResult merged_;
  std::vector<GenerateResult> parts_;
  int64_t images_ = 0;
  std::vector<std::vector<double>> sim_sum_, sim_weight_;
};

}  // namespace amskv::engine
