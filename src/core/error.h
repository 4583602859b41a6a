// Errors carry context (file, key, expected vs found) and are thrown as amskv::Error; library code never
// aborts the process. The CLI catches them and prints one line.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace amskv {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Concatenates anything streamable; keeps error sites short: throw Error(cat(path, ": key ", k, " missing")).
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw Error(cat(parts...));
}

#define AMSKV_CHECK(cond, ...)              \
  do {                                      \
    if (!(cond)) ::amskv::fail(__VA_ARGS__); \
  } while (0)

}  // namespace amskv
