// Reads a JSON file (KV tables, AMS profiles); errors name the file and what it was meant to be.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace amskv::io {

nlohmann::json read_json_file(const std::string& path, const std::string& what);

}  // namespace amskv::io
