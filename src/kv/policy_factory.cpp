#include "kv/policy_factory.h"

#include "core/error.h"
#include "kv/policies/recency_policy.h"

namespace amskv::kv {

const std::vector<std::string>& policy_names() {
  static const std::vector<std::string> names = {"full", "ams", "window", "sink", "uniform", "table"};
  return names;
}

std::unique_ptr<CachePolicy> make_policy(const PolicyOptions& o) {
  if (o.name == "full") return make_full_policy();
  if (o.name == "window") return make_window_policy(o.window);
  if (o.name == "sink") return make_sink_policy(o.sink_condensed, o.window);
  if (o.name == "table") {
    AMSKV_CHECK(!o.table_path.empty(), "--kv table needs --kv-table FILE");
    return load_table_policy(o.table_path);
  }
  if (o.name == "ams") {
    AmsOptions ams = o.ams;
    if (!o.ams_profile.empty()) ams.merge_profile_file(o.ams_profile);
    return std::make_unique<AmsPolicy>(ams, false);
  }
  if (o.name == "uniform") {
    AmsOptions ams = o.ams;
    if (o.budget >= 0) ams.cmin = o.budget;
    return std::make_unique<AmsPolicy>(ams, true);
  }
  fail("unknown KV policy '", o.name, "' (expected full, ams, window, sink, uniform or table)");
}

}  // namespace amskv::kv
