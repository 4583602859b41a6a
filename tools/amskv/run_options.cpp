#include "run_options.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "core/parse.h"
#include "model/patch_nums.h"

namespace amskv::cli {

namespace {

std::vector<std::string>& device_list() {
  static std::vector<std::string> devices = {"cpu"};
  return devices;
}

// "2^40" reads better in --help than 1099511627776.
std::string bound(int64_t v) {
  if (v == std::numeric_limits<int64_t>::max()) return "2^63-1";
  for (int p = 10; p < 63; ++p)
    if (v == int64_t{1} << p) return cat("2^", p);
  return std::to_string(v);
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// The policies each knob applies to.
const std::map<std::string, std::vector<std::string>>& knob_policies() {
  static const std::map<std::string, std::vector<std::string>> knobs = {
      {"--kv-window", {"window", "sink"}},
      {"--kv-budget", {"uniform", "h2o"}},
      {"--h2o-recent", {"h2o"}},
      {"--kv-table", {"table"}},
      {"--ams-profile", {"ams"}},
      {"--ams-condensed", {"ams", "uniform"}},
      {"--ams-cmin", {"ams"}},
      {"--ams-cmax", {"ams"}},
      {"--ams-theta", {"ams"}},
      {"--ams-demanding-fraction", {"ams"}},
  };
  return knobs;
}

std::string joined(const std::vector<std::string>& items, const std::string& last_sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i)
    out += (i == 0 ? "" : i + 1 == items.size() ? last_sep : ", ") + items[i];
  return out;
}

}  // namespace

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

CLI::Validator finite_in(double lo, double hi) {
  const std::string range = cat("[", number(lo), ", ", number(hi), "]");
  return CLI::Validator(
      [lo, hi, range](std::string& text) {
        try {
          size_t used = 0;
          const double v = std::stod(text, &used);
          if (used == text.size() && std::isfinite(v) && v >= lo && v <= hi) return std::string();
        } catch (const std::exception&) {
        }
        return "'" + text + "' is not a finite number in " + range;
      },
      "in " + range);
}

CLI::Validator integer_in(int64_t lo, int64_t hi) {
  const std::string range = cat("[", bound(lo), ", ", bound(hi), "]");
  return CLI::Validator(
      [lo, hi, range](std::string& text) {
        int64_t v = 0;
        const char* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(text.data(), end, v);
        if (text.empty() || ec != std::errc() || ptr != end || v < lo || v > hi)
          return "'" + text + "' is not an integer in " + range;
        text = std::to_string(v);
        return std::string();
      },
      "in " + range);
}

CLI::Validator unsigned_integer() {
  return CLI::Validator(
      [](std::string& text) {
        uint64_t v = 0;
        const char* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(text.data(), end, v);
        if (text.empty() || ec != std::errc() || ptr != end)
          return "'" + text + "' is not an integer in [0, 2^64-1]";
        text = std::to_string(v);
        return std::string();
      },
      "in [0, 2^64-1]");
}

void set_device_choices(std::vector<std::string> devices) { device_list() = std::move(devices); }
const std::vector<std::string>& device_choices() { return device_list(); }

bool given(const CLI::App& cmd, const std::string& flag) {
  const CLI::Option* o = cmd.get_option_no_throw(flag);
  return o && o->count() > 0;
}

void add_ams_options(CLI::App& cmd, kv::AmsOptions& ams) {
  cmd.add_option("--ams-condensed", ams.condensed, "Condensed scales locked in every layer (ams, uniform)")
      ->transform(integer_in(0, 64))
      ->default_str("2");
  cmd.add_option("--ams-cmin", ams.cmin, "Token budget of cache-efficient layers")
      ->transform(integer_in(0, kMaxTokens))
      ->default_str("per schedule");
  cmd.add_option("--ams-cmax", ams.cmax, "Token budget of cache-demanding layers")
      ->transform(integer_in(0, kMaxTokens))
      ->default_str("per schedule");
  cmd.add_option("--ams-theta", ams.theta,
                 "Layers whose mean key similarity (a cosine) is below this are demanding; excludes "
                 "--ams-demanding-fraction")
      ->check(finite_in(-1.0, 1.0))
      ->default_str("unset: by fraction");
  cmd.add_option("--ams-demanding-fraction", ams.demanding_fraction,
                 "Else: this fraction of the least similar layers is demanding")
      ->check(finite_in(0.0, 1.0))
      ->default_str("0.1");
}

void add_policy_options(CLI::App& cmd, kv::PolicyOptions& p) {
  cmd.add_option("--kv", p.name, "KV cache policy; a knob for another policy than this one is refused")
      ->check(CLI::IsMember(kv::policy_names()))
      ->capture_default_str();
  cmd.add_option("--kv-window", p.window, "Recent scales kept by window and sink")
      ->transform(integer_in(0, 1000))
      ->capture_default_str();
  cmd.add_option("--kv-budget", p.budget, "Tokens per layer for uniform and h2o")
      ->transform(integer_in(0, kMaxTokens))
      ->default_str("the AMS C_min of the schedule");
  cmd.add_option("--h2o-recent", p.h2o_recent, "Share of the h2o budget kept for the most recent tokens")
      ->check(finite_in(0.0, 1.0))
      ->capture_default_str();
  cmd.add_option("--kv-table", p.table_path, "JSON table of per-layer rules (only with --kv table)");
  add_ams_options(cmd, p.ams);
  cmd.add_option("--ams-profile", p.ams_profile,
                 "Profile JSON from `amskv profile` (offline decision; only with --kv ams)");
}

void check_policy_knobs(const CLI::App& cmd, const std::vector<std::string>& policies) {
  for (const auto& [flag, users] : knob_policies()) {
    if (!given(cmd, flag)) continue;
    bool used = false;
    for (const std::string& p : policies)
      for (const std::string& u : users) used = used || p == u;
    if (used) continue;
    std::vector<std::string> kv_users;
    for (const std::string& u : users) kv_users.push_back("--kv " + u);
    fail(flag, " applies to ", joined(kv_users, " or "), ", not to ", policies.size() == 1 ? "" : "any of ",
         joined(policies, ", "), ": it would be ignored");
  }
  AMSKV_CHECK(!(given(cmd, "--ams-theta") && given(cmd, "--ams-demanding-fraction")),
              "--ams-theta and --ams-demanding-fraction are two ways to choose the demanding layers: give one");
}

void add_device_options(CLI::App& cmd, backend::BackendOptions& b) {
  cmd.add_option("--device", b.device, "Backend: cpu (f32, reference-exact) or cuda")
      ->check(CLI::IsMember(device_list()))
      ->capture_default_str();
  cmd.add_option("--dtype", b.dtype, "Matrix and KV precision: auto (f32 on the CPU, bf16 on CUDA), f32, bf16, f16")
      ->check(CLI::IsMember({"auto", "f32", "bf16", "f16"}))
      ->capture_default_str();
  cmd.add_option("--kv-dtype", b.kv_dtype,
                 "How past scales' K/V are stored: auto (the compute dtype) or int8 (8-bit values with a float32 scale per "
                 "token and head: about half a bf16 cache, for larger batches; whole-scale policies only)")
      ->check(CLI::IsMember({"auto", "int8"}))
      ->capture_default_str();
  cmd.add_option("--gpu", b.gpu, "CUDA device index")->transform(integer_in(0, 64))->capture_default_str();
  cmd.add_option("--threads", b.threads, "CPU threads (0 = all cores)")
      ->transform(integer_in(0, 1024))
      ->capture_default_str();
}

void add_run_options(CLI::App& cmd, RunOptions& o, bool with_policy) {
  engine::JobOptions& j = o.job;
  cmd.add_option("--var", j.var_path, "VAR transformer checkpoint (.pth or .safetensors); with --vae")
      ->default_str("the shipped Fashion-MNIST model");
  cmd.add_option("--vae", j.vae_path, "VQVAE checkpoint (.pth or .safetensors); with --var")
      ->default_str("the shipped Fashion-MNIST model");
  cmd.add_option("--labels", o.labels_text, "Comma-separated class ids, one image each; -1 = unconditional")
      ->capture_default_str();
  cmd.add_option("--cfg", j.sampling.cfg, "Classifier-free guidance scale (ramped linearly over scales)")
      ->check(finite_in(0.0, kMaxCfg))
      ->capture_default_str();
  cmd.add_option("--top-k", j.sampling.top_k, "Keep the k most likely tokens (0 = off)")
      ->transform(integer_in(0, std::numeric_limits<int64_t>::max()))
      ->capture_default_str();
  cmd.add_option("--top-p", j.sampling.top_p, "Nucleus sampling mass (0 = off)")
      ->check(finite_in(0.0, 1.0))
      ->capture_default_str();
  cmd.add_flag("--more-smooth", j.sampling.more_smooth, "Gumbel-softmax soft tokens (visualisation only)");
  cmd.add_option("--seed", j.sampling.seed, "Seed; image i depends only on (seed, i)")
      ->transform(unsigned_integer())
      ->capture_default_str();
  cmd.add_option("--batch", j.batch, "Images per batch (0 = as many as fit in memory)")
      ->transform(integer_in(0, kMaxBatch))
      ->capture_default_str();
  cmd.add_option("--patch-nums", o.patch_nums_text,
                 "Scale schedule (only for checkpoints without lvl_1L), e.g. 1,2,3,4")
      ->default_str("the checkpoint's");
  cmd.add_option("--force-tokens", j.force_tokens, "safetensors with forced_idx.{k} [B, n_k] used instead of sampling");
  add_device_options(cmd, j.backend);
  cmd.add_flag("-q,--quiet", o.quiet, "No progress lines");
  if (with_policy) add_policy_options(cmd, o.policy);
  const CLI::App* self = &cmd;
  cmd.parse_complete_callback([self, &o, with_policy] { check_run_options(*self, o, with_policy); });
}

void check_run_options(const CLI::App& cmd, const RunOptions& o, bool with_policy) {
  parse_int_list(o.labels_text, "--labels");
  if (!o.patch_nums_text.empty()) model::parse_patch_nums(o.patch_nums_text);
  AMSKV_CHECK(o.job.var_path.empty() == o.job.vae_path.empty(),
              "--var and --vae go together (give both, or neither for the shipped model)");
  if (with_policy) check_policy_knobs(cmd, {o.policy.name});
}

engine::ProgressFn progress_printer(bool quiet) {
  if (quiet) return {};
  return [](int64_t first, int64_t count, int64_t total, int k, int num_scales, double seconds) {
    std::fprintf(stderr, "images %lld-%lld of %lld: scale %d/%d done in %.2f s\n", static_cast<long long>(first + 1),
                 static_cast<long long>(first + count), static_cast<long long>(total), k + 1, num_scales, seconds);
  };
}

}  // namespace amskv::cli
