// Where the golden reference data live: $AMSKV_GOLDEN_DIR if set, else the path CMake configured.
#pragma once
#include <cstdlib>
#include <string>

inline std::string golden_dir() {
  const char* env = std::getenv("AMSKV_GOLDEN_DIR");
  return env && *env ? std::string(env) : std::string(AMSKV_DEFAULT_GOLDEN_DIR);
}
