// Builds a cache policy from the user's choice (--kv NAME and its flags).
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kv/cache_policy.h"
#include "kv/policies/ams_policy.h"
#include "kv/policies/recency_policy.h"

namespace amskv::kv {

struct PolicyOptions {
  std::string name = "full";  // full, ams, window, sink, uniform, h2o, table
  int window = 1;             // scales, for window and sink
  int sink_condensed = 2;     // condensed scales kept by sink
  int64_t budget = -1;        // tokens per layer, for uniform and h2o (-1: the AMS default C_min)
  double h2o_recent = 0.5;    // share of the h2o budget kept for the most recent tokens
  std::string table_path;     // for table
  nlohmann::json table;       // for table, instead of reading table_path: the table itself (generate --from
                              // takes it from the PNG); table_path then only names it in errors
  std::string ams_profile;    // for ams (offline mode)
  AmsOptions ams;
};

const std::vector<std::string>& policy_names();

// Reads and checks everything a policy needs once (the KV table, the AMS profile, the knobs), so that a
// mistake surfaces before the model is loaded; make() then builds a fresh policy for every batch without
// touching the disk again (a policy keeps per-generation state, so batches must not share one).
class PolicyFactory {
 public:
  explicit PolicyFactory(PolicyOptions options);
  std::unique_ptr<CachePolicy> make() const;
  // The earliest check against the model, once its depth is known: a table's rule for a layer beyond it.
  // (Every policy also checks in begin().)
  void check_depth(int depth) const;

  const PolicyOptions& options() const { return options_; }

 private:
  PolicyOptions options_;  // ams already merged with the profile
  std::optional<RecencyTable> table_;
};

// One policy: PolicyFactory(options).make(). Reads the table or profile each call; code that makes a policy
// per batch should keep a PolicyFactory instead.
std::unique_ptr<CachePolicy> make_policy(const PolicyOptions& options);

}  // namespace amskv::kv
