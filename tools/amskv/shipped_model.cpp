#include "shipped_model.h"

#include <filesystem>

#include "core/error.h"

namespace amskv::cli {

namespace fs = std::filesystem;

namespace {
constexpr const char* kVar = "var_fmnist.safetensors";
constexpr const char* kVae = "vae_fmnist.safetensors";

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}
}  // namespace

std::vector<std::string> shipped_model_dirs() {
  std::vector<std::string> dirs;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path up = exe.parent_path().parent_path();
    dirs.push_back((up / "weights" / "fashion-mnist").lexically_normal().string());
    dirs.push_back((up / "share" / "amskv" / "weights" / "fashion-mnist").lexically_normal().string());
  }
#ifdef AMSKV_SOURCE_DIR
  const std::string source = (fs::path(AMSKV_SOURCE_DIR) / "weights" / "fashion-mnist").lexically_normal().string();
  bool seen = false;
  for (const std::string& d : dirs) seen = seen || d == source;
  if (!seen) dirs.push_back(source);
#endif
  return dirs;
}

ShippedModel find_shipped_model() {
  const std::vector<std::string> dirs = shipped_model_dirs();
  for (const std::string& dir : dirs)
    if (is_file(fs::path(dir) / kVar) && is_file(fs::path(dir) / kVae))
      return {(fs::path(dir) / kVar).string(), (fs::path(dir) / kVae).string()};
  std::string looked;
  for (const std::string& d : dirs) looked += (looked.empty() ? "" : ", ") + d;
  fail("no --var/--vae given, and the shipped model (", kVar, " and ", kVae, ") is in none of: ", looked,
       "; give --var and --vae");
}

}  // namespace amskv::cli
