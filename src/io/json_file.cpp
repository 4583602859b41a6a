#include "io/json_file.h"

#include "io/input_file.h"
#include "io/json_parse.h"

namespace amskv::io {

nlohmann::json read_json_file(const std::string& path, const std::string& what) {
  const InputFile file(path);
  return parse_json(file.read_all(kMaxJsonFileBytes, what), path, what);
}

}  // namespace amskv::io
