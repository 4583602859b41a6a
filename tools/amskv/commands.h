// One function per subcommand: each adds its options to the app and sets its callback.
#pragma once
#include <CLI/CLI.hpp>

namespace amskv::cli {

void add_generate_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_random_model_command(CLI::App& app);
void add_profile_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_plan_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_demo_command(CLI::App& app);

}  // namespace amskv::cli
