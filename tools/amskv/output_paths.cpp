#include "output_paths.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace amskv::cli {

namespace fs = std::filesystem;

namespace {

// The nearest ancestor of `path` that exists ("." for a relative path with none).
fs::path existing_ancestor(const fs::path& path) {
  fs::path p = path.parent_path();
  std::error_code ec;
  while (!p.empty() && !fs::exists(fs::symlink_status(p, ec)) && p != p.root_path()) p = p.parent_path();
  return p.empty() ? fs::path(".") : p;
}

std::string canonical(const fs::path& p) {
  std::error_code ec;
  const fs::path c = fs::weakly_canonical(p, ec);
  return (ec ? p.lexically_normal() : c).string();
}

}  // namespace

OutputCheck::OutputCheck(const std::vector<std::pair<std::string, std::string>>& inputs) {
  for (const auto& [flag, path] : inputs) {
    struct stat st {};
    if (path.empty() || ::stat(path.c_str(), &st) != 0) continue;
    inputs_.push_back({st.st_dev, st.st_ino, flag, path});
  }
}

void OutputCheck::check_not_input(const std::string& flag, const std::string& path) const {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;
  AMSKV_CHECK(!S_ISDIR(st.st_mode), flag, " ", path, ": is a folder, expected a file");
  AMSKV_CHECK(S_ISREG(st.st_mode), flag, " ", path, ": exists and is not a regular file (writing would replace it)");
  for (const Identity& in : inputs_)
    AMSKV_CHECK(in.dev != st.st_dev || in.ino != st.st_ino, flag, " ", path, ": is the same file as ", in.flag, " ",
                in.path, "; refusing to overwrite an input");
}

void OutputCheck::check_parent(const std::string& flag, const std::string& path) const {
  const fs::path ancestor = existing_ancestor(path);
  std::error_code ec;
  AMSKV_CHECK(fs::is_directory(ancestor, ec), flag, " ", path, ": ", ancestor.string(),
              " is not a folder, so the output cannot be created");
  AMSKV_CHECK(::access(ancestor.c_str(), W_OK | X_OK) == 0, flag, " ", path, ": cannot write into ", ancestor.string(),
              " (", std::strerror(errno), ")");
}

void OutputCheck::claim(const std::string& flag, const std::string& canonical_path, const std::string& path) {
  const auto [it, fresh] = claimed_.emplace(canonical_path, flag);
  AMSKV_CHECK(fresh, flag, " ", path, ": is also written by ", it->second);
}

void OutputCheck::file(const std::string& flag, const std::string& path) {
  if (path.empty()) return;
  check_not_input(flag, path);
  check_parent(flag, path);
  claim(flag, canonical(path), path);
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) folders_.insert(parent.string());
}

void OutputCheck::folder(const std::string& flag, const std::string& dir, const std::vector<std::string>& names) {
  std::error_code ec;
  const auto st = fs::status(dir, ec);
  const bool exists = fs::exists(st);
  AMSKV_CHECK(!exists || fs::is_directory(st), flag, " ", dir, ": exists and is not a folder");
  if (!exists) check_parent(flag, dir);
  else AMSKV_CHECK(::access(dir.c_str(), W_OK | X_OK) == 0, flag, " ", dir, ": cannot write into it (",
                   std::strerror(errno), ")");
  const fs::path base = canonical(dir);
  for (const std::string& name : names) {
    const std::string path = (fs::path(dir) / name).string();
    if (exists) check_not_input(flag, path);
    claim(flag, (base / name).string(), path);
  }
  folders_.insert(dir);
}

void OutputCheck::create_folders() const {
  for (const std::string& dir : folders_) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    AMSKV_CHECK(!ec, dir, ": cannot create the folder (", ec.message(), ")");
  }
}

}  // namespace amskv::cli
