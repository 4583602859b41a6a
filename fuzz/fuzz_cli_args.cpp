// libFuzzer entry point for the command line: the input is split into argv words (at spaces, tabs and
// newlines) and parsed with the real definitions (tools/amskv/app.cpp) and no actions, so every subcommand
// only parses and checks its flags: no file is opened and no model is loaded. A refusal is a CLI::Error (what
// CLI11 reports) or an amskv::Error (our checks); anything else escaping the parser, a crash or a sanitizer
// report is a bug. eval defines its own flags beside the engine (cmd_eval.cpp) and is not part of this app.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "app.h"
#include "core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;  // a command line, not a file
  std::vector<std::string> words = {"amskv"};
  std::string word;
  for (size_t i = 0; i <= size; ++i) {
    const char c = i < size ? static_cast<char>(data[i]) : ' ';
    if (c == ' ' || c == '\t' || c == '\n') {
      if (!word.empty()) words.push_back(word);
      word.clear();
    } else {
      word += c;
    }
  }
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  const auto app = amskv::cli::make_app({"cpu", "cuda"}, {});
  try {
    app->parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::Error&) {
  } catch (const amskv::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "the command line parser let through: %s\n", e.what());
    std::abort();
  }
  return 0;
}
