// Options shared by generate, profile, eval and bench: the model files, the labels, sampling, the device,
// the batch and the KV policy; they fill the engine's JobOptions.
#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "engine/generation_job.h"
#include "kv/policy_factory.h"

namespace amskv::cli {

struct RunOptions {
  engine::JobOptions job;  // everything but the labels and the schedule, which are parsed from text
  std::string labels_text = "0", patch_nums_text;
  bool quiet = false;
  kv::PolicyOptions policy;
  // The job with labels and schedule parsed (throws naming the flag).
  engine::JobOptions resolved() const;
};

// Rejects NaN and infinities (CLI11's Range lets NaN through).
extern const CLI::Validator finite_number;

// --kv and its knobs.
void add_policy_options(CLI::App& cmd, kv::PolicyOptions& policy);
// --device, --dtype, --threads.
void add_device_options(CLI::App& cmd, backend::BackendOptions& backend);
// Adds the options; `with_policy` adds --kv and its knobs.
void add_run_options(CLI::App& cmd, RunOptions& o, bool with_policy);
// A progress line per scale on stderr ("images 1-4 of 8: scale 3/10 done in 0.12 s"), or nothing when quiet.
engine::ProgressFn progress_printer(bool quiet);

}  // namespace amskv::cli
