// Runs the amskv binary built beside the tests and captures its exit code and output.
#pragma once
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "io_test_util.h"

namespace amskv::cli_test {

struct CliResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

inline CliResult run_cli(const std::string& args) {
  const std::string command = std::string(AMSKV_CLI_PATH) + " " + args + " 2>&1";
  CliResult r;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), static_cast<int>(buf.size()), pipe)) r.output += buf.data();
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// A scratch folder per test; `dir / "name"` is a path inside it.
class TempDir : public io_test::ScratchDir {
 public:
  std::string operator/(const std::string& name) const { return path(name); }
};

}  // namespace amskv::cli_test
