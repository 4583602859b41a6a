// Where the golden reference data live. Two sets:
//  - bundled: tests/fixtures/golden, the reference's `mini` case and its decoder-only VQVAE, part of the
//    repository so that a fresh clone tests itself;
//  - shared: the full reference set (tiny, std256, saln288), from $AMSKV_GOLDEN_DIR if set, else
//    ../shared/golden beside the checkout; used in addition whenever it is present.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

inline std::string bundled_golden_dir() { return std::string(AMSKV_SOURCE_DIR) + "/tests/fixtures/golden"; }

// Empty when the shared set is not there.
inline std::string shared_golden_dir() {
  const char* env = std::getenv("AMSKV_GOLDEN_DIR");
  const std::string dir = env && *env ? std::string(env) : std::string(AMSKV_DEFAULT_GOLDEN_DIR);
  return std::filesystem::exists(dir + "/tiny/golden.safetensors") ? dir : std::string();
}

inline bool shared_golden_available() { return !shared_golden_dir().empty(); }

// The folder of one case: `mini` from the bundled set, the others from the shared one.
inline std::string golden_case_dir(const std::string& name) {
  return name == "mini" ? bundled_golden_dir() + "/mini" : shared_golden_dir() + "/" + name;
}

// Every case that is present: always `mini`, then the shared ones.
inline std::vector<std::string> golden_cases() {
  std::vector<std::string> cases = {"mini"};
  if (shared_golden_available())
    for (const char* c : {"tiny", "std256", "saln288"}) cases.push_back(c);
  return cases;
}

// Tests that need one particular case of the shared set skip (and say why) when it is absent.
#define AMSKV_REQUIRE_SHARED_GOLDEN()                                                                \
  do {                                                                                               \
    if (!shared_golden_available())                                                                  \
      GTEST_SKIP() << "needs the full golden set (../shared/golden or $AMSKV_GOLDEN_DIR); the bundled " \
                      "mini case covers the same checks";                                           \
  } while (0)
