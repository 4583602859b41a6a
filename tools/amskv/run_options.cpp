#include "run_options.h"

#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "core/parse.h"
#include "model/var_config.h"

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

engine::JobOptions RunOptions::resolved() const {
  engine::JobOptions j = job;
  j.labels = parse_int_list(labels_text, "--labels");
  if (!patch_nums_text.empty()) j.patch_nums = model::parse_patch_nums(patch_nums_text);
  return j;
}

void add_policy_options(CLI::App& cmd, kv::PolicyOptions& p) {
  cmd.add_option("--kv", p.name, "KV cache policy")->check(CLI::IsMember(kv::policy_names()));
  cmd.add_option("--kv-window", p.window, "Recent scales kept by window and sink")->check(CLI::NonNegativeNumber);
  cmd.add_option("--kv-budget", p.budget, "Tokens per layer for uniform and h2o (default: AMS-KV's C_min)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--h2o-recent", p.h2o_recent, "Share of the h2o budget kept for the most recent tokens")
      ->check(finite_number & CLI::Range(0.0, 1.0));
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

void add_device_options(CLI::App& cmd, backend::BackendOptions& b) {
  cmd.add_option("--device", b.device, "Backend: cpu (f32, reference-exact) or cuda")
      ->check(CLI::IsMember(backend::available_devices()));
  cmd.add_option("--dtype", b.dtype, "Matrix and KV precision: auto (f32 on the CPU, bf16 on CUDA), f32, bf16, f16")
      ->check(CLI::IsMember({"auto", "f32", "bf16", "f16"}));
  cmd.add_option("--gpu", b.gpu, "CUDA device index")->check(CLI::Range(0, 64));
  cmd.add_option("--threads", b.threads, "CPU threads (0 = all cores)")->check(CLI::Range(0, 1024));
}

void add_run_options(CLI::App& cmd, RunOptions& o, bool with_policy) {
  engine::JobOptions& j = o.job;
  cmd.add_option("--var", j.var_path, "VAR transformer checkpoint (.pth or .safetensors)")->required();
  cmd.add_option("--vae", j.vae_path, "VQVAE checkpoint (.pth or .safetensors)")->required();
  cmd.add_option("--labels", o.labels_text, "Comma-separated class ids, one image each; -1 = unconditional");
  cmd.add_option("--cfg", j.sampling.cfg, "Classifier-free guidance scale (ramped linearly over scales)")
      ->check(finite_number);
  cmd.add_option("--top-k", j.sampling.top_k, "Keep the k most likely tokens (0 = off)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--top-p", j.sampling.top_p, "Nucleus sampling mass (0 = off)")
      ->check(finite_number & CLI::Range(0.0, 1.0));
  cmd.add_flag("--more-smooth", j.sampling.more_smooth, "Gumbel-softmax soft tokens (visualisation only)");
  cmd.add_option("--seed", j.sampling.seed, "Seed; image i depends only on (seed, i)");
  cmd.add_option("--batch", j.batch, "Images per batch (0 = as many as fit in memory)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--patch-nums", o.patch_nums_text,
                 "Scale schedule (only for checkpoints without lvl_1L), e.g. 1,2,3,4");
  cmd.add_option("--force-tokens", j.force_tokens, "safetensors with forced_idx.{k} [B, n_k] used instead of sampling");
  add_device_options(cmd, j.backend);
  cmd.add_flag("-q,--quiet", o.quiet, "No progress lines");
  if (with_policy) add_policy_options(cmd, o.policy);
}

engine::ProgressFn progress_printer(bool quiet) {
  if (quiet) return {};
  return [](int64_t first, int64_t count, int64_t total, int k, int num_scales, double seconds) {
    std::fprintf(stderr, "images %lld-%lld of %lld: scale %d/%d done in %.2f s\n", static_cast<long long>(first + 1),
                 static_cast<long long>(first + count), static_cast<long long>(total), k + 1, num_scales, seconds);
  };
}

}  // namespace amskv::cli
