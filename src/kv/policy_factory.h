// Builds a cache policy from the user's choice (--kv NAME and its flags).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kv/cache_policy.h"
#include "kv/policies/ams_policy.h"

namespace amskv::kv {

struct PolicyOptions {
  std::string name = "full";  // full, ams, window, sink, uniform, table
  int window = 1;             // scales, for window and sink
  int sink_condensed = 2;     // condensed scales kept by sink
  int64_t budget = -1;        // tokens per layer, for uniform (-1: the AMS default C_min)
  std::string table_path;     // for table
  std::string ams_profile;    // for ams (offline mode)
  AmsOptions ams;
};

const std::vector<std::string>& policy_names();
std::unique_ptr<CachePolicy> make_policy(const PolicyOptions& options);

}  // namespace amskv::kv
