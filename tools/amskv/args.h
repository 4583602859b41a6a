// What each subcommand's flags fill in: plain data, defaults as --help shows them. app.cpp defines the flags;
// cmd_<name>.cpp does the work. (eval keeps its own beside its code, cmd_eval.cpp.)
#pragma once
#include <cstdint>
#include <set>
#include <string>

#include "kv/policy_factory.h"
#include "run_options.h"

namespace amskv::cli {

struct GenerateArgs {
  RunOptions run;
  std::string out_dir = "samples";
  std::string dump_path, report_path;
  std::string from_png;  // --from: regenerate this image from the settings it records
  bool dump_logits = false, no_grid = false, no_images = false, graphs = false;
  std::set<std::string> given;  // the flags given (--from keeps the recorded device unless --device is given)
};

struct ProfileArgs {
  RunOptions run;
  std::string out_dir = "profile";
};

struct PlanArgs {
  std::string shape = "d30", var_path, vae_path, dtype = "bf16";
  int64_t batch = 1;
  double budget_gib = 0;
  kv::PolicyOptions policy;
  // A device to plan the whole job on (weights, activations, logits, decoder and KV against its free memory,
  // with the engine's planner); empty: the KV cache only.
  std::string device;
  int gpu = 0;
};

struct BenchArgs {
  std::string shapes = "d16", batches = "1", policies = "full,ams", dtypes = "auto", json_path, var_path, vae_path;
  backend::BackendOptions backend;
  int reps = 3, warmup = 1;
  bool no_decode = false, max_batch = false, graphs = false;
  int64_t vae_ch = 160, max_batch_limit = 1 << 16;
  kv::PolicyOptions knobs;  // AMS and baseline knobs shared by every policy of the grid
};

struct InspectArgs {
  std::string path;
  bool list = false;
};

struct ConvertArgs {
  std::string input, output;
};

struct RandomModelArgs {
  std::string shape = "d16", out_dir = "models", var_name, vae_name = "vae_ch160v4096z32.pth";
  uint64_t seed = 0;
  int64_t vae_ch = 160;
  bool no_vae = false;
};

}  // namespace amskv::cli
