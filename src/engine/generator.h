// One generation request end to end (DESIGN.md data flow): labels -> per-scale transformer passes through
// the KV cache policy -> guided logits -> tokens (sampled or forced) -> VQVAE latent -> images. Everything
// runs on the models' backend; results come back to the host at the end (tokens per scale as they are chosen).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/tensor_map.h"
#include "kv/kv_cache.h"
#include "model/sampler.h"
#include "model/var_model.h"
#include "model/vqvae.h"

namespace amskv::engine {

// Hooks for tests and tools that want intermediate tensors (host copies, made only when an observer is
// given). Pointers are valid during the call only.
class GenerationObserver {
 public:
  virtual ~GenerationObserver() = default;
  virtual void on_scale_input(int k, const float* x, int64_t rows, int64_t n, int64_t width) {}
  virtual void on_logits_raw(int k, const float* logits, int64_t rows, int64_t n, int64_t vocab) {}
  virtual void on_logits_cfg(int k, const float* logits, int64_t batch, int64_t n, int64_t vocab) {}
  virtual void on_tokens(int k, const int64_t* tokens, int64_t batch, int64_t n) {}
  virtual void on_fhat(int k, const float* fhat, int64_t batch, int64_t channels, int64_t side) {}
  virtual void on_next_map(int k, const float* map, int64_t batch, int64_t channels, int64_t side) {}
  virtual void on_scale_done(int k, int num_scales, double seconds) {}
  // Whether the on_scale_input/logits/fhat/next_map hooks need their tensors (downloads cost time).
  virtual bool wants_tensors() const { return true; }
  // Whether on_tokens needs each scale's tokens (a download that waits for the device every scale).
  virtual bool wants_tokens() const { return true; }
};

// How a batch is split to fit memory: the transformer's scratch covers `chunk_rows` CFG rows at a time, and
// the head, guidance and sampling `head_images` images at a time. 0 means all at once.
struct ExecutionPlan {
  int64_t chunk_rows = 0;
  int64_t head_images = 0;
};

struct GenerateOptions {
  std::vector<int64_t> labels;  // one per image; -1 or num_classes = unconditional
  model::SamplingOptions sampling;
  uint64_t first_image_index = 0;                // images are numbered for the random stream
  const io::TensorMap* forced_tokens = nullptr;  // forced_idx.{k} [B, n_k] replaces sampling
  int64_t forced_offset = 0;                     // first row of forced_idx.{k} used by this batch
  bool keep_logits = false;                      // keep guided logits (before top-k/top-p) per scale
  bool decode_images = true;
  kv::KvAnalysisOptions analysis;
  ExecutionPlan plan;
  bool time_ops = true;  // measure attention_s and matmul_s (device events around every layer's operations)
  // Record each scale's work (and the decoder's) as one unit per (scale, batch size) on backends that can
  // (CUDA graphs), updated in place by later runs; a Generator records a whole request and replays it for
  // the next ones instead (see there). Used only when nothing needs to look inside a scale: no per-operation
  // or per-phase times, tensor or token observers, forced tokens, kept logits, smooth sampling or attention
  // masses read on the host (analyses, H2O). Per-scale recording alone does not shorten batch 1: the host
  // spends as long recording a scale's ~400 operations as launching them
  // (bench/results/h200_2026-11-30_graphs).
  bool record_steps = false;
};

struct GenerateTimings {
  double total_s = 0, transformer_s = 0, attention_s = 0, matmul_s = 0, sampling_s = 0, latent_s = 0, decode_s = 0;
  // Host time until every scale was enqueued. Near total_s minus the decode when the host's issue path, not
  // the device, sets the pace (small batches); it includes any wait for a policy's read-back.
  double enqueue_s = 0;
  // Empty, and decode_s 0, when a Generator ran the request as one recording (the decoder is inside it).
  std::vector<double> per_scale_s;
};

struct GenerateResult {
  Tensor images;                    // [B, 3, H, W] float32 in [0, 1] (undefined without decode)
  Tensor fhat;                      // [B, Cvae, HW, HW]
  std::vector<Tensor> tokens;       // per scale [B, n_k] int64
  std::vector<Tensor> logits_cfg;   // per scale [B, n_k, V] (keep_logits)
  kv::KvStats kv;
  nlohmann::json policy;            // the policy's settings and decisions
  std::vector<std::vector<double>> similarity;              // [layer][scale], NaN where not measured
  std::vector<std::vector<std::vector<double>>> density;    // [layer][j][i] (analysis.density)
  GenerateTimings time;
  bool steps_recorded = false;  // the scales (and the decoder) ran as recorded steps (GenerateOptions)
  bool replayed = false;        // a Generator replayed an earlier request's recording for these images
};

// Maps user labels to class rows: -1 and num_classes are the null class; anything else out of range throws.
std::vector<int64_t> class_rows_for(const std::vector<int64_t>& labels, int64_t num_classes);

// One request; everything it allocated is released when it returns.
GenerateResult generate(const model::VarModel& var, const model::Vqvae& vae, kv::CachePolicy& policy,
                        const GenerateOptions& options, GenerationObserver* observer = nullptr);

class Generation;

// Requests one after another on one pair of models (a batch loop, a benchmark's repetitions). With
// record_steps, a request that nothing needs to look inside while it runs, on a policy whose decisions do
// not depend on values read back from the device (full, sink, uniform, window; AMS-KV with a profile), is
// recorded whole on a backend that records, and its buffers are kept: a later request with the same batch
// size and settings (other labels and image numbers are fine) replays the recording after uploading its
// labels and first image number, so the host issues one launch instead of thousands. Its results are the
// same as a fresh request's. Anything else runs launched, as generate() without record_steps does, after
// releasing what was kept.
class Generator {
 public:
  Generator(const model::VarModel& var, const model::Vqvae& vae);
  ~Generator();
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  GenerateResult generate(kv::CachePolicy& policy, const GenerateOptions& options,
                          GenerationObserver* observer = nullptr);

 private:
  const model::VarModel& var_;
  const model::Vqvae& vae_;
  std::unique_ptr<Generation> kept_;
  std::string kept_signature_;
};

// Checks that a VQVAE fits a transformer (vocabulary, latent channels); throws naming both files.
void check_compatible(const model::VarConfig& var, const std::string& var_file, const model::VqvaeConfig& vae,
                      const std::string& vae_file);

}  // namespace amskv::engine
