// Parsing of user-supplied values with errors that name the flag.
#pragma once
#include <charconv>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace amskv {

// "980,437,-1" -> {980, 437, -1}; `what` names the flag in errors ("--labels: 'x' is not an integer"). Every
// item must be a plain decimal integer: an empty item ("1,2," or "1,,2"), spaces, a '+' sign or a value beyond
// int64 is refused, not skipped or saturated.
inline std::vector<int64_t> parse_int_list(const std::string& text, const std::string& what) {
  AMSKV_CHECK(!text.empty(), what, ": empty list");
  std::vector<int64_t> out;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    AMSKV_CHECK(!item.empty(), what, ": empty item in '", text, "' (a comma too many?)");
    int64_t v = 0;
    const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    AMSKV_CHECK(ec != std::errc::result_out_of_range, what, ": '", item, "' is out of range");
    AMSKV_CHECK(ec == std::errc() && ptr == item.data() + item.size(), what, ": '", item, "' is not an integer");
    out.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// "d16,d20" -> {"d16", "d20"}; an empty item is refused naming `what` ("--shapes: empty item in 'd16,'").
inline std::vector<std::string> split_list(const std::string& text, const std::string& what) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    AMSKV_CHECK(!item.empty(), what, ": empty item in '", text, "'");
    out.push_back(std::move(item));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace amskv
