// What each subcommand does, one file each (cmd_<name>.cpp); app.cpp defines their flags and main.cpp joins
// the two.
#pragma once
#include <CLI/CLI.hpp>

#include "args.h"

namespace amskv::cli {

void run_generate(const GenerateArgs& args);
void run_profile(const ProfileArgs& args);
void run_plan(const PlanArgs& args);
void run_bench(const BenchArgs& args);
void run_inspect(const InspectArgs& args);
void run_convert(const ConvertArgs& args);
void run_random_model(const RandomModelArgs& args);
// eval and demo define their flags beside their code.
void add_eval_command(CLI::App& app);
void add_demo_command(CLI::App& app);

}  // namespace amskv::cli
