#include "run_options.h"

#include <omp.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "core/parse.h"
#include "io/tensor_file.h"

namespace amskv::cli {

const CLI::Validator finite_number(
    [](std::string& text) {
      try {
        size_t used = 0;
        const double v = std::stod(text, &used);
        if (used == text.size() && std::isfinite(v)) return std::string();
      } catch (const std::exception&) {
      }
      return "'" + text + "' is not a finite number";
    },
    "FINITE");

std::vector<int64_t> RunOptions::labels() const { return parse_int_list(labels_text, "--labels"); }

void add_policy_options(CLI::App& cmd, kv::PolicyOptions& p) {
  cmd.add_option("--kv", p.name, "KV cache policy")->check(CLI::IsMember(kv::policy_names()));
  cmd.add_option("--kv-window", p.window, "Recent scales kept by window and sink")->check(CLI::NonNegativeNumber);
  cmd.add_option("--kv-budget", p.budget, "Tokens per layer for uniform")->check(CLI::NonNegativeNumber);
  cmd.add_option("--kv-table", p.table_path, "JSON table of per-layer rules for --kv table");
  cmd.add_option("--ams-condensed", p.ams.condensed, "Condensed scales locked in every layer (default 2)")
      ->check(CLI::Range(0, 64));
  cmd.add_option("--ams-cmin", p.ams.cmin, "Token budget of cache-efficient layers (default: per schedule)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd.add_option("--ams-cmax", p.ams.cmax, "Token budget of cache-demanding layers (default: per schedule)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd.add_option("--ams-theta", p.ams.theta, "Layers with mean key similarity below this are demanding")
      ->check(finite_number);
  cmd.add_option("--ams-demanding-fraction", p.ams.demanding_fraction,
                 "Else: this fraction of least-similar layers is demanding (default 0.1)")
      ->check(finite_number & CLI::Range(0.0, 1.0));
  cmd.add_option("--ams-profile", p.ams_profile, "Profile JSON from `amskv profile` (offline decision)");
}

void add_run_options(CLI::App& cmd, RunOptions& o, bool with_policy) {
  cmd.add_option("--var", o.var_path, "VAR transformer checkpoint (.pth or .safetensors)")->required();
  cmd.add_option("--vae", o.vae_path, "VQVAE checkpoint (.pth or .safetensors)")->required();
  cmd.add_option("--labels", o.labels_text, "Comma-separated class ids, one image each; -1 = unconditional");
  cmd.add_option("--cfg", o.sampling.cfg, "Classifier-free guidance scale (ramped linearly over scales)")
      ->check(finite_number);
  cmd.add_option("--top-k", o.sampling.top_k, "Keep the k most likely tokens (0 = off)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--top-p", o.sampling.top_p, "Nucleus sampling mass (0 = off)")->check(finite_number & CLI::Range(0.0, 1.0));
  cmd.add_flag("--more-smooth", o.sampling.more_smooth, "Gumbel-softmax soft tokens (visualisation only)");
  cmd.add_option("--seed", o.sampling.seed, "Seed; image i depends only on (seed, i)");
  cmd.add_option("--batch", o.batch, "Images per batch (0 = all at once)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--patch-nums", o.patch_nums, "Scale schedule (only for checkpoints without lvl_1L), e.g. 1,2,3,4");
  cmd.add_option("--force-tokens", o.force_tokens, "safetensors with forced_idx.{k} [B, n_k] used instead of sampling");
  cmd.add_option("--device", o.device, "Backend")->check(CLI::IsMember({"cpu"}));
  cmd.add_option("--threads", o.threads, "CPU threads (0 = all cores)")->check(CLI::Range(0, 1024));
  cmd.add_flag("-q,--quiet", o.quiet, "No progress lines");
  if (with_policy) add_policy_options(cmd, o.policy);
}

GenerationJob::GenerationJob(const RunOptions& o) : opt_(o) {
  if (o.threads > 0) omp_set_num_threads(o.threads);
  const auto patch = o.patch_nums.empty() ? std::vector<int64_t>{} : model::parse_patch_nums(o.patch_nums);
  var_ = std::make_unique<model::VarModel>(io::load_tensor_file(o.var_path), patch);
  vae_ = std::make_unique<model::Vqvae>(io::load_tensor_file(o.vae_path));
  engine::check_compatible(var_->config(), o.var_path, vae_->config(), o.vae_path);
  const auto labels = o.labels();
  for (int64_t l : labels) engine::class_rows_for({l}, var_->config().num_classes);  // validate early
  if (!o.force_tokens.empty()) {
    forced_storage_ = io::load_tensor_file(o.force_tokens);
    forced_ = &forced_storage_;
  }
}

namespace {

class ProgressPrinter : public engine::GenerationObserver {
 public:
  ProgressPrinter(int64_t first, int64_t count, int64_t total) : first_(first), count_(count), total_(total) {}
  void on_scale_done(int k, int num_scales, double seconds) override {
    std::fprintf(stderr, "images %lld-%lld of %lld: scale %d/%d done in %.2f s\n",
                 static_cast<long long>(first_ + 1), static_cast<long long>(first_ + count_),
                 static_cast<long long>(total_), k + 1, num_scales, seconds);
  }

 private:
  int64_t first_, count_, total_;
};

}  // namespace

void GenerationJob::run_batches(const kv::PolicyOptions& policy_options, bool keep_logits,
                                kv::KvAnalysisOptions analysis, bool decode, const BatchCallback& on_batch) const {
  const auto labels = opt_.labels();
  const int64_t total = static_cast<int64_t>(labels.size());
  const int64_t batch = opt_.batch > 0 ? opt_.batch : total;
  for (int64_t first = 0; first < total; first += batch) {
    const int64_t count = std::min(batch, total - first);
    engine::GenerateOptions go;
    go.labels.assign(labels.begin() + first, labels.begin() + first + count);
    go.sampling = opt_.sampling;
    go.first_image_index = static_cast<uint64_t>(first);
    go.forced_tokens = forced_;
    go.forced_offset = first;
    go.keep_logits = keep_logits;
    go.decode_images = decode;
    go.analysis = analysis;
    auto policy = kv::make_policy(policy_options);
    ProgressPrinter progress(first, count, total);
    on_batch(engine::generate(*var_, *vae_, *policy, go, opt_.quiet ? nullptr : &progress), first);
  }
}

engine::GenerateResult GenerationJob::run(const kv::PolicyOptions& policy_options, bool keep_logits,
                                          kv::KvAnalysisOptions analysis, bool decode) const {
  BatchMerger merger(/*keep_tensors=*/true);
  run_batches(policy_options, keep_logits, analysis, decode,
              [&](engine::GenerateResult&& r, int64_t) { merger.add(std::move(r)); });
  return merger.finish();
}

}  // namespace amskv::cli
