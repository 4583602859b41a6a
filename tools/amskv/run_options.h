// Options shared by generate, profile, eval and bench: the model files, the labels, sampling, the device,
// the batch and the KV policy; they fill the engine's JobOptions.
//
// The flags and their checks (run_options.cpp) need no engine and touch no file, so that the parse-only
// command line (the CLI fuzzer) has them too; resolving them into a job (run_resolve.cpp: parsed lists, the
// shipped model when no checkpoint is given) belongs to the program that runs commands.
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>
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
  // The job with labels and schedule parsed (throws naming the flag) and the model files resolved: the shipped
  // model when neither --var nor --vae is given (throws naming where it looked when it is not there).
  engine::JobOptions resolved() const;
};

// Rejects NaN and infinities (CLI11's Range lets NaN through).
extern const CLI::Validator finite_number;
// A finite number in [lo, hi]: "--cfg: '1e99' is not a finite number in [0, 1000]".
CLI::Validator finite_in(double lo, double hi);
// A plain decimal integer in [lo, hi], refused rather than wrapped or saturated when it overflows; the text is
// rewritten to its canonical form (CLI11 would read "010" as octal). Use with Option::transform.
CLI::Validator integer_in(int64_t lo, int64_t hi);
// A plain decimal integer in [0, 2^64-1] (seeds): "-1" and "18446744073709551616" are refused, not wrapped.
CLI::Validator unsigned_integer();

// Limits of the numeric flags, stated in --help.
constexpr double kMaxCfg = 1000.0;       // guidance beyond this is a typo, not a setting
constexpr int64_t kMaxBatch = int64_t{1} << 40;
constexpr int64_t kMaxTokens = int64_t{1} << 40;  // KV budgets

// The --device choices: the devices this build can run on. make_app sets them before adding any option.
void set_device_choices(std::vector<std::string> devices);
const std::vector<std::string>& device_choices();

// --kv and its knobs. Every knob belongs to some policies (knob_policies); check_policy_knobs refuses a knob
// given for a policy that would ignore it.
void add_policy_options(CLI::App& cmd, kv::PolicyOptions& policy);
// Only the AMS knobs (--ams-*, without --ams-profile), for profile, whose layer classes they shape.
void add_ams_options(CLI::App& cmd, kv::AmsOptions& ams);
// Throws naming the flag when a knob that was given on `cmd` applies to none of `policies`
// ("--kv-budget applies to --kv uniform, not ams"); --kv-table and --ams-profile are refused unless their
// policy runs, so a file that would be ignored is never silently accepted.
void check_policy_knobs(const CLI::App& cmd, const std::vector<std::string>& policies);
// --device, --dtype, --gpu, --threads.
void add_device_options(CLI::App& cmd, backend::BackendOptions& backend);
// Adds the options and, as the subcommand's parse-complete check, the checks that need no file: the lists
// parse, --var and --vae come together, and (`with_policy`) every knob given applies to --kv's policy.
void add_run_options(CLI::App& cmd, RunOptions& o, bool with_policy);
// Those checks, for a caller that installs its own parse-complete callback.
void check_run_options(const CLI::App& cmd, const RunOptions& o, bool with_policy);
// A progress line per scale on stderr ("images 1-4 of 8: scale 3/10 done in 0.12 s"), or nothing when quiet.
engine::ProgressFn progress_printer(bool quiet);

// Whether a flag was given on the command line (false for an option that `cmd` does not have).
bool given(const CLI::App& cmd, const std::string& flag);

}  // namespace amskv::cli
