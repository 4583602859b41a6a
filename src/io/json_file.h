// Reads a JSON file a user named (KV tables, AMS profiles); errors name the file and what it was meant to be.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace amskv::io {

// Tables and profiles are kilobytes; a file beyond this is a mistake, and parsing it would cost many times
// its size in memory.
constexpr uint64_t kMaxJsonFileBytes = uint64_t{64} << 20;

// Refuses anything but a regular file without blocking (a FIFO, a directory), files above
// kMaxJsonFileBytes, and what parse_json() refuses (duplicate keys, deep nesting). Throws amskv::Error.
nlohmann::json read_json_file(const std::string& path, const std::string& what);

}  // namespace amskv::io
