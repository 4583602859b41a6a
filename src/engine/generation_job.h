// A whole job: the backend and the two models loaded and checked against each other, the images split into
// batches that fit the device's memory, and a fresh cache policy per batch. What the CLI's generate, profile,
// eval and bench share; the CLI only parses flags and prints.
//
// Order of the checks, cheapest mistakes first: the policy's inputs (KV table, AMS profile, knobs) are read
// before any checkpoint is; then the checkpoints (format, NaN/Inf weights, compatibility); then the labels,
// forced tokens and the memory plan; only then does a batch run.
#pragma once
#include <functional>
#include <memory>
#include <optional>
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
  // Image i of the job is image first_image_index + i of the random stream (and row first_image_index + i of
  // forced tokens): regenerating image 5 of an earlier run alone gives the same image.
  uint64_t first_image_index = 0;
  // The execution plan to use instead of the one the memory planner would choose (generate --from: results
  // depend on how a batch is split, so reproducing an image means repeating its batch's plan). All labels then
  // run as one batch; the job is refused if that does not fit in memory.
  std::optional<ExecutionPlan> exec_plan;
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
// A checkpoint holding NaN or Inf weights is refused, naming the file, the tensor and how many values: it would
// load and then generate garbage far from the cause. (A VAR checkpoint's attn_bias_for_masking is -inf by
// design and never read; it is not checked.)
LoadedModels load_models(const std::string& var_path, const std::string& vae_path,
                         const std::vector<int64_t>& patch_nums, const backend::BackendOptions& backend);

// What a batch loop should produce besides tokens.
struct RunSettings {
  bool keep_logits = false;
  kv::KvAnalysisOptions analysis;
  bool decode = true;
  // GenerateOptions::record_steps for full batches when there are several: the first is recorded, the
  // others replay it (engine::Generator).
  bool record_steps = false;
};

// Progress of a batch loop: images [first, first + count) of total have finished scale k of K.
using ProgressFn = std::function<void(int64_t first, int64_t count, int64_t total, int k, int K, double seconds)>;

class GenerationJob {
 public:
  // Reads the policy's inputs, loads the models, checks the policy against the model's depth, every label and
  // the forced tokens, and plans the batch size against the backend's free memory for `policy` (the largest
  // policy the job will run).
  GenerationJob(JobOptions options, const kv::PolicyOptions& policy);
  const model::VarModel& var() const { return *models_.var; }
  const model::Vqvae& vae() const { return *models_.vae; }
  backend::Backend& backend() const { return *models_.backend; }
  const JobOptions& options() const { return opt_; }
  int64_t images() const { return static_cast<int64_t>(opt_.labels.size()); }
  int64_t batch_size() const { return plan_.batch; }
  const MemoryPlan& memory_plan() const { return plan_; }
  // The policy the job was planned for, its table or profile read once.
  const kv::PolicyFactory& policy() const { return policy_; }

  // Runs every label in batches with a fresh policy from `policy` each (the job's own when not given); each
  // batch's result goes to the callback with the index of its first image within the job (0-based, not
  // counting first_image_index).
  using BatchCallback = std::function<void(GenerateResult&&, int64_t first_image)>;
  void run_batches(const RunSettings& settings, const BatchCallback& on_batch, const ProgressFn& progress = {}) const;
  void run_batches(const kv::PolicyFactory& policy, const RunSettings& settings, const BatchCallback& on_batch,
                   const ProgressFn& progress = {}) const;
  // All batches merged (BatchMerger): tensors concatenated, analysis averaged over images.
  GenerateResult run(const RunSettings& settings, const ProgressFn& progress = {}) const;
  GenerateResult run(const kv::PolicyFactory& policy, const RunSettings& settings,
                     const ProgressFn& progress = {}) const;
  // Another policy over the same images (eval's variants): its inputs are read once for this run and checked
  // against the model before the first batch. It must not need more memory than the job's own policy.
  GenerateResult run(const kv::PolicyOptions& policy, const RunSettings& settings,
                     const ProgressFn& progress = {}) const;

 private:
  JobOptions opt_;
  kv::PolicyFactory policy_;  // before models_: a bad table or profile is reported before a checkpoint is read
  LoadedModels models_;
  io::TensorMap forced_;
  bool has_forced_ = false;
  MemoryPlan plan_;
};

}  // namespace amskv::engine
