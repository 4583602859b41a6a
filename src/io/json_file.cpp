#include "io/json_file.h"

#include <fstream>

#include "core/error.h"

namespace amskv::io {

nlohmann::json read_json_file(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  AMSKV_CHECK(in, path, ": cannot open ", what);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": ", what, " is not valid JSON: ", e.what());
  }
}

}  // namespace amskv::io
