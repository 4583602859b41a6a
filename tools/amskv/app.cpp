#include "app.h"

#include <filesystem>
#include <set>

#include "core/parse.h"

namespace amskv::cli {

namespace {

// The subcommand runs its action, if it has one (the CLI fuzzer's app has none), on its parsed arguments.
template <class Args>
void on_run(CLI::App* cmd, const std::shared_ptr<Args>& a, const std::function<void(const Args&)>& run) {
  cmd->callback([a, run] {
    if (run) run(*a);
  });
}

const std::vector<std::string> kShapes = {"d16", "d20", "d24", "d30", "d36", "tiny"};
const std::vector<std::string> kDtypes = {"auto", "f32", "bf16", "f16"};

bool member(const std::vector<std::string>& set, const std::string& s) {
  for (const std::string& x : set)
    if (x == s) return true;
  return false;
}

// Two output flags naming one file would leave only the last write; compared as written (no file access).
void check_distinct(const std::string& a_flag, const std::string& a, const std::string& b_flag, const std::string& b) {
  if (a.empty() || b.empty()) return;
  const auto na = std::filesystem::path(a).lexically_normal(), nb = std::filesystem::path(b).lexically_normal();
  AMSKV_CHECK(na != nb, a_flag, " and ", b_flag, " name the same file (", a, ")");
}

// A file output must name a file, not a folder ("out/").
void check_file_name(const std::string& flag, const std::string& path) {
  if (path.empty()) return;
  AMSKV_CHECK(std::filesystem::path(path).has_filename(), flag, " ", path, ": names a folder, expected a file");
}

// --from takes everything that shapes the image from the PNG; only where and how to compute may change.
void check_from(const CLI::App& cmd) {
  static const std::set<std::string> allowed = {"--from", "--out",    "--var",    "--vae",  "--device",
                                                "--dtype", "--kv-dtype", "--gpu", "--threads", "--report",
                                                "--dump",  "--quiet",  "--dump-logits"};
  for (const CLI::Option* o : cmd.get_options()) {
    if (o->count() == 0 || allowed.count(o->get_name()) != 0) continue;
    fail("--from regenerates the image with the settings it records, so ", o->get_name(),
         " cannot be given with it (only --out, --var/--vae, --device, --dtype, --kv-dtype, --gpu, --threads, "
         "--report, --dump, -q)");
  }
}

void check_generate(const CLI::App& cmd, const GenerateArgs& a) {
  if (!a.from_png.empty()) check_from(cmd);
  check_run_options(cmd, a.run, true);
  AMSKV_CHECK(!a.dump_logits || !a.dump_path.empty(), "--dump-logits needs --dump FILE");
  AMSKV_CHECK(!a.no_images || !given(cmd, "--out"), "--out is ignored with --no-images: give one of them");
  check_file_name("--dump", a.dump_path);
  check_file_name("--report", a.report_path);
  check_distinct("--dump", a.dump_path, "--report", a.report_path);
}

void check_bench(const CLI::App& cmd, const BenchArgs& a) {
  for (const std::string& s : split_list(a.shapes, "--shapes"))
    AMSKV_CHECK(member(kShapes, s), "--shapes: unknown shape '", s, "' (expected d16, d20, d24, d30, d36 or tiny)");
  for (const std::string& b : split_list(a.batches, "--batches")) {
    const int64_t n = parse_int_list(b, "--batches").at(0);
    AMSKV_CHECK(n > 0 && n <= kMaxBatch, "--batches: ", n, " is not a batch in [1, 2^40]");
  }
  const std::vector<std::string> policies = split_list(a.policies, "--policies");
  for (const std::string& p : policies)
    AMSKV_CHECK(member(kv::policy_names(), p), "--policies: unknown policy '", p,
                "' (expected full, ams, window, sink, uniform or table)");
  for (const std::string& d : split_list(a.dtypes, "--dtypes"))
    AMSKV_CHECK(member(kDtypes, d), "--dtypes: unknown dtype '", d, "' (expected auto, f32, bf16 or f16)");
  AMSKV_CHECK(a.var_path.empty() == a.vae_path.empty(), "--var and --vae go together");
  AMSKV_CHECK(a.var_path.empty() || !given(cmd, "--shapes"), "--shapes is ignored with --var: give one of them");
  AMSKV_CHECK(a.var_path.empty() || !given(cmd, "--vae-ch"), "--vae-ch is ignored with --var: give one of them");
  check_policy_knobs(cmd, policies);
  check_file_name("--json", a.json_path);
}

void add_generate(CLI::App& app, const Actions& actions) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate class-conditional images");
  add_run_options(*cmd, a->run, true);
  cmd->add_option("--out", a->out_dir, "Folder for the PNG images (000000.png, ..., grid.png)")->capture_default_str();
  cmd->add_flag("--no-grid", a->no_grid, "Do not write grid.png");
  cmd->add_flag("--no-images", a->no_images, "Do not write PNG images");
  cmd->add_option("--dump", a->dump_path, "Write idx.{k}, image (and fhat) to this safetensors file");
  cmd->add_flag("--dump-logits", a->dump_logits, "Also dump logits_cfg.{k} (guided, before top-k/top-p)");
  cmd->add_option("--report", a->report_path, "Write KV memory and timing report (JSON)");
  cmd->add_flag("--graphs", a->graphs,
                "Record the first batch as one CUDA graph and replay it for the later batches of the same size "
                "(policies that read nothing back mid-run; small batches gain most)");
  cmd->add_option("--from", a->from_png,
                  "Regenerate the image of this PNG (written by amskv generate) from the settings it records; "
                  "checkpoints from the recorded paths unless --var/--vae are given, checked by size and hash");
  const CLI::App* self = cmd;
  cmd->parse_complete_callback([self, a] {  // replaces add_run_options' check
    check_generate(*self, *a);
    for (const CLI::Option* o : self->get_options())
      if (o->count() > 0) a->given.insert(o->get_name());
  });
  on_run(cmd, a, actions.generate);
}

void add_profile(CLI::App& app, const Actions& actions) {
  auto a = std::make_shared<ProfileArgs>();
  CLI::App* cmd = app.add_subcommand("profile", "Per-layer key similarity and attention density (full cache)");
  // The analysis always runs the full cache; the AMS knobs only shape the layer classes it reports.
  add_run_options(*cmd, a->run, false);
  add_ams_options(*cmd, a->run.policy.ams);
  cmd->add_option("--out", a->out_dir, "Folder for profile.json and the plots")->capture_default_str();
  const CLI::App* self = cmd;
  cmd->parse_complete_callback([self, a] {
    check_run_options(*self, a->run, false);
    check_policy_knobs(*self, {"ams"});
  });
  on_run(cmd, a, actions.profile);
}

void add_plan(CLI::App& app, const Actions& actions) {
  auto a = std::make_shared<PlanArgs>();
  CLI::App* cmd = app.add_subcommand("plan", "KV memory of a policy for a model shape, without running it");
  cmd->add_option("--shape", a->shape, "d16, d20, d24, d30, d36 or tiny")
      ->check(CLI::IsMember(kShapes))
      ->capture_default_str();
  cmd->add_option("--var", a->var_path, "Take the shape from this checkpoint instead");
  cmd->add_option("--batch", a->batch, "Images")->transform(integer_in(1, int64_t{1} << 24))->capture_default_str();
  cmd->add_option("--dtype", a->dtype,
                  "K/V storage type (int8: 8-bit K/V with a scale per token and head; with --device, computing in "
                  "bf16 on CUDA and f32 on the CPU)")
      ->check(CLI::IsMember({"bf16", "fp16", "fp32", "int8"}))
      ->capture_default_str();
  cmd->add_option("--kv-memory-gib", a->budget_gib, "Also print the largest batch whose KV fits this many GiB (0 = no)")
      ->check(finite_in(0.0, 1e6))
      ->capture_default_str();
  cmd->add_option("--device", a->device,
                  "Also plan the whole job on this device with the engine's planner (weights, activations, decoder, "
                  "KV against its free memory): the batch's plan and the largest batch that fits")
      ->check(CLI::IsMember(device_choices()))
      ->default_str("none: the KV cache only");
  cmd->add_option("--gpu", a->gpu, "CUDA device index for --device cuda")
      ->transform(integer_in(0, 64))
      ->capture_default_str();
  cmd->add_option("--vae", a->vae_path, "VQVAE checkpoint for --device with --var")
      ->default_str("the official VQVAE shape (ch 160)");
  add_policy_options(*cmd, a->policy);
  const CLI::App* self = cmd;
  cmd->parse_complete_callback([self, a] {
    check_policy_knobs(*self, {a->policy.name});
    AMSKV_CHECK(a->var_path.empty() || !given(*self, "--shape"), "--shape is ignored with --var: give one of them");
    AMSKV_CHECK(a->vae_path.empty() || (!a->var_path.empty() && !a->device.empty()),
                "--vae applies to --device with --var: it would be ignored");
    AMSKV_CHECK(!given(*self, "--gpu") || a->device == "cuda", "--gpu applies to --device cuda: it would be ignored");
  });
  on_run(cmd, a, actions.plan);
}

void add_bench(CLI::App& app, const Actions& actions) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Images/s, memory and KV numbers over a grid of shapes, batches, "
                                              "policies and dtypes (random weights of the official shapes)");
  cmd->add_option("--shapes", a->shapes, "Model shapes: d16,d20,d24,d30,d36,tiny")->capture_default_str();
  cmd->add_option("--batches", a->batches, "Batch sizes, e.g. 1,64,128")->capture_default_str();
  cmd->add_option("--policies", a->policies, "KV policies, e.g. full,ams,window")->capture_default_str();
  cmd->add_option("--dtypes", a->dtypes, "Compute dtypes, e.g. bf16,f32 (auto: the device's default)")
      ->capture_default_str();
  cmd->add_option("--var", a->var_path, "Benchmark this checkpoint instead of random shapes (with --vae)");
  cmd->add_option("--vae", a->vae_path, "VQVAE checkpoint for --var");
  cmd->add_option("--reps", a->reps,
                  "Timed repetitions per point (then one untimed run that measures attention and matmul)")
      ->transform(integer_in(1, 1000))
      ->capture_default_str();
  cmd->add_option("--warmup", a->warmup, "Untimed runs before them")
      ->transform(integer_in(0, 100))
      ->capture_default_str();
  cmd->add_flag("--no-decode", a->no_decode, "Leave the VQVAE decoder out");
  cmd->add_flag("--graphs", a->graphs,
                "Record a whole generation as one CUDA graph and replay it for the later repetitions instead of "
                "launching every kernel from the host (policies that read nothing back mid-run; others run "
                "launched)");
  cmd->add_flag("--max-batch", a->max_batch, "Report the largest batch that fits per shape, dtype and policy");
  cmd->add_option("--vae-ch", a->vae_ch, "Channels of the random VQVAE (official 160)")
      ->transform(integer_in(1, 1024))
      ->capture_default_str();
  cmd->add_option("--json", a->json_path, "Write every grid point as JSON");
  add_device_options(*cmd, a->backend);
  cmd->remove_option(cmd->get_option("--dtype"));  // --dtypes is the grid's axis
  add_policy_options(*cmd, a->knobs);
  cmd->remove_option(cmd->get_option("--kv"));  // --policies is the grid's axis
  const CLI::App* self = cmd;
  cmd->parse_complete_callback([self, a] { check_bench(*self, *a); });
  on_run(cmd, a, actions.bench);
}

void add_inspect(CLI::App& app, const Actions& actions) {
  auto a = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand(
      "inspect", "What a checkpoint is (configuration, parameters, CRC-32 and NaN/Inf checks; exit status 1 when "
                 "it is damaged), or the settings a generated PNG records");
  cmd->add_option("file", a->path, "Checkpoint (.pth or .safetensors) or PNG written by amskv generate")->required();
  cmd->add_flag("--tensors", a->list, "Also list every tensor");
  on_run(cmd, a, actions.inspect);
}

void add_convert(CLI::App& app, const Actions& actions) {
  auto a = std::make_shared<ConvertArgs>();
  CLI::App* cmd = app.add_subcommand("convert", "Convert a checkpoint between .pth and .safetensors");
  cmd->add_option("input", a->input, "Input checkpoint")->required();
  cmd->add_option("output", a->output, "Output file (.safetensors or .pth)")->required();
  cmd->parse_complete_callback([a] {
    const std::string ext = std::filesystem::path(a->output).extension().string();
    AMSKV_CHECK(ext == ".safetensors" || ext == ".pth" || ext == ".pt", a->output,
                ": unknown output format (use .safetensors or .pth)");
  });
  on_run(cmd, a, actions.convert);
}

void add_random_model(CLI::App& app, const Actions& actions) {
  auto a = std::make_shared<RandomModelArgs>();
  CLI::App* cmd = app.add_subcommand("random-model", "Write a VAR (and VQVAE) checkpoint with seeded random weights");
  cmd->add_option("--shape", a->shape, "d16, d20, d24, d30, d36 or tiny")
      ->check(CLI::IsMember(kShapes))
      ->capture_default_str();
  cmd->add_option("--out", a->out_dir, "Output folder")->capture_default_str();
  cmd->add_option("--var-name", a->var_name, "File name of the transformer")->default_str("var_<shape>.pth");
  cmd->add_option("--vae-name", a->vae_name, "File name of the VQVAE")->capture_default_str();
  cmd->add_option("--vae-ch", a->vae_ch, "VQVAE base channels (official 160; tiny: 32)")
      ->transform(integer_in(1, 1024))
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "Seed")->transform(unsigned_integer())->capture_default_str();
  cmd->add_flag("--no-vae", a->no_vae, "Only the transformer");
  const CLI::App* self = cmd;
  cmd->parse_complete_callback([self, a] {
    AMSKV_CHECK(!(a->no_vae && (given(*self, "--vae-name") || given(*self, "--vae-ch"))),
                "--vae-name and --vae-ch are ignored with --no-vae: give one of them");
    AMSKV_CHECK(!(a->shape == "tiny" && given(*self, "--vae-ch")), "--vae-ch is ignored with --shape tiny (ch 32)");
    for (const std::string* name : {&a->var_name, &a->vae_name})
      AMSKV_CHECK(name->empty() || std::filesystem::path(*name).filename() == *name, "--var-name/--vae-name: '", *name,
                  "' is not a plain file name (the folder is --out)");
  });
  on_run(cmd, a, actions.random_model);
}

}  // namespace

std::string version_string() { return "amskv " AMSKV_VERSION; }

std::unique_ptr<CLI::App> make_app(const std::vector<std::string>& devices, const Actions& actions) {
  set_device_choices(devices);
  auto app = std::make_unique<CLI::App>("amskv: VAR (next-scale prediction) inference with AMS-KV cache policies");
  app->require_subcommand(1);
  app->set_version_flag("--version", version_string());
  add_generate(*app, actions);
  add_profile(*app, actions);
  if (actions.add_eval) actions.add_eval(*app);
  add_plan(*app, actions);
  add_bench(*app, actions);
  if (actions.add_demo) actions.add_demo(*app);
  add_inspect(*app, actions);
  add_convert(*app, actions);
  add_random_model(*app, actions);
  return app;
}

}  // namespace amskv::cli
