#include "run_options.h"

#include <omp.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>

#include "core/parse.h"
#include "io/tensor_file.h"

namespace amskv::cli {

std::vector<int64_t> RunOptions::labels() const { return parse_int_list(labels_text, "--labels"); }

void add_policy_options(CLI::App& cmd, kv::PolicyOptions& p, std::optional<double>& ams_theta) {
  cmd.add_option("--kv", p.name, "KV cache policy")->check(CLI::IsMember(kv::policy_names()));
  cmd.add_option("--kv-window", p.window, "Recent scales kept by window and sink")->check(CLI::NonNegativeNumber);
  cmd.add_option("--kv-budget", p.budget, "Tokens per layer for uniform")->check(CLI::NonNegativeNumber);
  cmd.add_option("--kv-table", p.table_path, "JSON table of per-layer rules for --kv table");
  cmd.add_option("--ams-condensed", p.ams.condensed, "Condensed scales locked in every layer")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--ams-cmin", p.ams.cmin, "Token budget of cache-efficient layers (default: per schedule)");
  cmd.add_option("--ams-cmax", p.ams.cmax, "Token budget of cache-demanding layers (default: per schedule)");
  cmd.add_option("--ams-theta", ams_theta, "Layers with mean key similarity below this are demanding");
  cmd.add_option("--ams-demanding-fraction", p.ams.demanding_fraction,
                 "Else: this fraction of least-similar layers is demanding")
      ->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--ams-profile", p.ams_profile, "Profile JSON from `amskv profile` (offline decision)");
}

void add_run_options(CLI::App& cmd, RunOptions& o, bool with_policy) {
  cmd.add_option("--var", o.var_path, "VAR transformer checkpoint (.pth or .safetensors)")->required();
  cmd.add_option("--vae", o.vae_path, "VQVAE checkpoint (.pth or .safetensors)")->required();
  cmd.add_option("--labels", o.labels_text, "Comma-separated class ids, one image each; -1 = unconditional");
  cmd.add_option("--cfg", o.sampling.cfg, "Classifier-free guidance scale (ramped linearly over scales)");
  cmd.add_option("--top-k", o.sampling.top_k, "Keep the k most likely tokens (0 = off)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--top-p", o.sampling.top_p, "Nucleus sampling mass (0 = off)")->check(CLI::Range(0.0, 1.0));
  cmd.add_flag("--more-smooth", o.sampling.more_smooth, "Gumbel-softmax soft tokens (visualisation only)");
  cmd.add_option("--seed", o.sampling.seed, "Seed; image i depends only on (seed, i)");
  cmd.add_option("--batch", o.batch, "Images per batch (0 = all at once)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--patch-nums", o.patch_nums, "Scale schedule (only for checkpoints without lvl_1L), e.g. 1,2,3,4");
  cmd.add_option("--force-tokens", o.force_tokens, "safetensors with forced_idx.{k} [B, n_k] used instead of sampling");
  cmd.add_option("--device", o.device, "Backend")->check(CLI::IsMember({"cpu"}));
  cmd.add_option("--threads", o.threads, "CPU threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  cmd.add_flag("-q,--quiet", o.quiet, "No progress lines");
  if (with_policy) add_policy_options(cmd, o.policy, o.ams_theta);
}

GenerationJob::GenerationJob(const RunOptions& o) : opt_(o) {
  if (o.threads > 0) omp_set_num_threads(o.threads);
  opt_.policy.ams.theta = o.ams_theta;
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

Tensor concat_batch(const Tensor& a, const Tensor& b) {
  if (!a.defined() || a.numel() == 0) return b;
  Shape shape = a.shape();
  shape[0] += b.dim(0);
  Tensor out = Tensor::zeros(a.dtype(), shape);
  auto* dst = static_cast<unsigned char*>(const_cast<void*>(out.raw()));
  std::memcpy(dst, a.raw(), a.nbytes());
  std::memcpy(dst + a.nbytes(), b.raw(), b.nbytes());
  return out;
}

}  // namespace

engine::GenerateResult GenerationJob::run(const kv::PolicyOptions& policy_options, bool keep_logits,
                                          kv::KvAnalysisOptions analysis, bool decode) const {
  const auto labels = opt_.labels();
  const int64_t total = static_cast<int64_t>(labels.size());
  const int64_t batch = opt_.batch > 0 ? opt_.batch : total;
  kv::PolicyOptions po = policy_options;
  po.ams.theta = po.ams.theta ? po.ams.theta : opt_.ams_theta;
  engine::GenerateResult all;
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
    auto policy = kv::make_policy(po);
    ProgressPrinter progress(first, count, total);
    engine::GenerateResult r = engine::generate(*var_, *vae_, *policy, go, opt_.quiet ? nullptr : &progress);
    if (first == 0) {
      all = std::move(r);
      continue;
    }
    all.images = decode ? concat_batch(all.images, r.images) : all.images;
    all.fhat = concat_batch(all.fhat, r.fhat);
    for (size_t k = 0; k < r.tokens.size(); ++k) all.tokens[k] = concat_batch(all.tokens[k], r.tokens[k]);
    for (size_t k = 0; k < r.logits_cfg.size(); ++k)
      all.logits_cfg[k] = concat_batch(all.logits_cfg[k], r.logits_cfg[k]);
    all.time.total_s += r.time.total_s;
    all.time.transformer_s += r.time.transformer_s;
    all.time.attention_s += r.time.attention_s;
    all.time.sampling_s += r.time.sampling_s;
    all.time.latent_s += r.time.latent_s;
    all.time.decode_s += r.time.decode_s;
    for (size_t k = 0; k < r.time.per_scale_s.size(); ++k) all.time.per_scale_s[k] += r.time.per_scale_s[k];
  }
  return all;
}

}  // namespace amskv::cli
