// Parsing of user-supplied values with errors that name the flag.
#pragma once
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"

namespace amskv {

// "980,437,-1" -> {980, 437, -1}; `what` names the flag in errors ("--labels: 'x' is not an integer").
inline std::vector<int64_t> parse_int_list(const std::string& text, const std::string& what) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    AMSKV_CHECK(!item.empty() && used == item.size(), what, ": '", item, "' is not an integer");
    out.push_back(v);
  }
  AMSKV_CHECK(!out.empty(), what, ": empty list");
  return out;
}

}  // namespace amskv
