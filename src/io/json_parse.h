// Parses JSON that comes from a file we did not write (safetensors headers, KV tables, AMS profiles).
// Beyond syntax it refuses two things nlohmann accepts: a key repeated within one object (nlohmann keeps the
// last one silently, so the file would not mean what it seems to), and nesting deeper than kMaxJsonDepth
// (dump() and copies of a json value recurse once per level, so a file of nested brackets would overflow
// the stack later, far from here). Both are refused while parsing, before the deep value exists.
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace amskv::io {

// Arrays and objects nested inside each other; our formats need at most 4.
constexpr int kMaxJsonDepth = 32;

// Throws amskv::Error "<source>: <what> is not valid JSON: ...", "... nests arrays or objects deeper than 32
// levels (at <path>)" or "... has the key '<key>' twice (in <path>)".
nlohmann::json parse_json(std::string_view text, const std::string& source, const std::string& what);

}  // namespace amskv::io
