// A whole job: the backend and the two models loaded and checked against each other, the images split into
// batches that fit the device's memory, and a fresh cache policy per batch. What the CLI's generate, profile,
// eval and bench share; the CLI only parses flags and prints.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend_factory.h"
#include "engine/batch_merger.h"
#include "engine/generator.h"
#include "engine/memory_planner.h"
#include "kv/policy_factory.h"

namespace amskv::engine {

struct JobOptions {
  std::string var_path, vae_path;
  std::vector<int64_t> patch_nums;  // only for checkpoints without lvl_1L
  std::string force_tokens;         // safetensors with forced_idx.{k}
  std::vector<int64_t> labels;      // one image each
  int64_t batch = 0;                // images per batch; 0: as many as fit (all when possible)
  model::SamplingOptions sampling;
  backend::BackendOptions backend;
};

// The backend with the two models on it. The backend outlives the models that hold its memory.
struct LoadedModels {
  std::unique_ptr<backend::Backend> backend;
  std::unique_ptr<model::VarModel> var;
  std::unique_ptr<model::Vqvae> vae;
  std::string var_path, vae_path;

  PlanShapes plan_shapes() const;
};

// Loads both checkpoints onto a new backend; errors name the file (and say so when loading runs out of memory).
LoadedModels load_models(const std::string& var_path, const std::string& vae_path,
                         const std::vector<int64_t>& patch_nums, const backend::BackendOptions& backend);

// What a batch loop should produce besides tokens.
struct RunSettings {
  bool keep_logits = false;
  kv::KvAnalysisOptions analysis;
  bool decode = true;
};

// Progress of a batch loop: images [first, first + count) of total have finished scale k of K.
using ProgressFn = std::function<void(int64_t first, int64_t count, int64_t total, int k, int K, double seconds)>;

class GenerationJob {
 public:
  // Loads the models, checks every label and the forced tokens, and plans the batch size against the
  // backend's free memory for `policy` (the largest policy the job will run).
  GenerationJob(JobOptions options, const kv::PolicyOptions& policy);
  const model::VarModel& var() const { return *models_.var; }
  const model::Vqvae& vae() const { return *models_.vae; }
  backend::Backend& backend() const { return *models_.backend; }
  const JobOptions& options() const { return opt_; }
  int64_t images() const { return static_cast<int64_t>(opt_.labels.size()); }
  int64_t batch_size() const { return plan_.batch; }
  const MemoryPlan& memory_plan() const { return plan_; }

  // Runs every label in batches with a fresh policy each; each batch's result goes to the callback with the
  // index of its first image.
  using BatchCallback = std::function<void(GenerateResult&&, int64_t first_image)>;
  void run_batches(const kv::PolicyOptions& policy, const RunSettings& settings, const BatchCallback& on_batch,
                   const ProgressFn& progress = {}) const;
  // All batches merged (BatchMerger): tensors concatenated, analysis averaged over images.
  GenerateResult run(const kv::PolicyOptions& policy, const RunSettings& settings, const ProgressFn& progress = {}) const;

 private:
  JobOptions opt_;
  LoadedModels models_;
  io::TensorMap forced_;
  bool has_forced_ = false;
  MemoryPlan plan_;
};

}  // namespace amskv::engine
