// The bundled mini model (tests/fixtures/golden: depth 1, schedule 1,2,3,4, 5 classes, 64 px images) as
// command-line arguments, and small helpers for the CLI tests.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "golden_dir.h"

namespace amskv::cli_test {

inline std::string mini_var() { return golden_case_dir("mini") + "/var.pth"; }
inline std::string mini_vae() { return bundled_golden_dir() + "/vae-V64-Cvae8-ch32-s121-dec-f16.pth"; }
// "--var ... --vae ... -q"
inline std::string mini_args() { return "--var " + mini_var() + " --vae " + mini_vae() + " -q"; }

// Runs the CLI expecting a failure whose output holds every one of `parts`.
inline void expect_cli_error(const std::string& args, const std::vector<std::string>& parts) {
  const CliResult r = run_cli(args);
  EXPECT_NE(r.exit_code, 0) << args << "\n" << r.output;
  for (const std::string& p : parts)
    EXPECT_NE(r.output.find(p), std::string::npos) << "'" << p << "' not in the output of: " << args << "\n"
                                                   << r.output;
}

inline bool exists(const std::string& path) { return std::filesystem::exists(path); }

// The files of a folder (none when it does not exist).
inline std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  return out;
}

}  // namespace amskv::cli_test
