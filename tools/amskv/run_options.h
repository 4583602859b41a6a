// Options shared by generate, profile and eval: the model files, the labels, sampling, the KV policy,
// and the batch loop that runs them.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "batch_merger.h"
#include "engine/generator.h"
#include "kv/policy_factory.h"

namespace amskv::cli {

struct RunOptions {
  std::string var_path, vae_path, patch_nums, device = "cpu", force_tokens;
  std::string labels_text = "0";
  int64_t batch = 0;  // 0: all labels at once
  int threads = 0;
  bool quiet = false;
  model::SamplingOptions sampling;
  kv::PolicyOptions policy;
  std::vector<int64_t> labels() const;
};

// Rejects NaN and infinities (CLI11's Range lets NaN through).
extern const CLI::Validator finite_number;

// --kv and its knobs.
void add_policy_options(CLI::App& cmd, kv::PolicyOptions& policy);
// Adds the options; `with_policy` adds --kv and its knobs.
void add_run_options(CLI::App& cmd, RunOptions& o, bool with_policy);

// Loaded models plus the batch loop.
class GenerationJob {
 public:
  explicit GenerationJob(const RunOptions& options);
  const model::VarModel& var() const { return *var_; }
  const model::Vqvae& vae() const { return *vae_; }
  // Runs every label in batches with a fresh policy each; each batch's result goes to the callback with
  // the index of its first image.
  using BatchCallback = std::function<void(engine::GenerateResult&&, int64_t first_image)>;
  void run_batches(const kv::PolicyOptions& policy, bool keep_logits, kv::KvAnalysisOptions analysis, bool decode,
                   const BatchCallback& on_batch) const;
  // All batches merged (BatchMerger): tensors concatenated, analysis averaged over images.
  engine::GenerateResult run(const kv::PolicyOptions& policy, bool keep_logits, kv::KvAnalysisOptions analysis,
                             bool decode = true) const;

 private:
  RunOptions opt_;
  std::unique_ptr<model::VarModel> var_;
  std::unique_ptr<model::Vqvae> vae_;
  const io::TensorMap* forced_ = nullptr;
  io::TensorMap forced_storage_;
};

}  // namespace amskv::cli
