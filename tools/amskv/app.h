// The whole command line: every subcommand, its flags with their defaults and limits, and the checks that need
// no file. main.cpp gives it the actions that do the work; the CLI fuzzer gives it none, so that parsing only
// parses and checks (no file is opened, no model loaded).
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "args.h"

namespace amskv::cli {

// What each subcommand does once its flags are parsed and checked; an empty action only checks.
struct Actions {
  std::function<void(const GenerateArgs&)> generate;
  std::function<void(const ProfileArgs&)> profile;
  // eval defines its flags beside its engine code (cmd_eval.cpp); without it the app has no eval.
  std::function<void(CLI::App&)> add_eval;
  // demo likewise (cmd_demo.cpp).
  std::function<void(CLI::App&)> add_demo;
  std::function<void(const PlanArgs&)> plan;
  std::function<void(const BenchArgs&)> bench;
  std::function<void(const InspectArgs&)> inspect;
  std::function<void(const ConvertArgs&)> convert;
  std::function<void(const RandomModelArgs&)> random_model;
};

// "amskv 0.2.0": the project's version (CMake's PROJECT_VERSION).
std::string version_string();

// `devices`: the --device choices (the devices this build can run on). Parse errors are CLI::ParseError
// (CLI::App::exit prints them); failed checks and actions throw amskv::Error.
std::unique_ptr<CLI::App> make_app(const std::vector<std::string>& devices, const Actions& actions);

}  // namespace amskv::cli
