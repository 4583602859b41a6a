#include "kv/policy_factory.h"

#include "core/error.h"
#include "kv/policies/h2o_policy.h"

namespace amskv::kv {

const std::vector<std::string>& policy_names() {
  static const std::vector<std::string> names = {"full", "ams", "window", "sink", "uniform", "h2o", "table"};
  return names;
}

PolicyFactory::PolicyFactory(PolicyOptions options) : options_(std::move(options)) {
  const PolicyOptions& o = options_;
  if (o.name == "table") {
    if (!o.table.is_null()) {
      table_ = RecencyTable::from_json(o.table, o.table_path.empty() ? "KV table" : o.table_path);
    } else {
      AMSKV_CHECK(!o.table_path.empty(), "--kv table needs --kv-table FILE");
      table_ = RecencyTable::load(o.table_path);
    }
  } else if (o.name == "ams") {
    if (!o.ams_profile.empty()) options_.ams.merge_profile_file(o.ams_profile);
  } else if (o.name == "uniform") {
    if (o.budget >= 0) {
      options_.ams.cmin = o.budget;
      options_.ams.origin.cmin = "--kv-budget";
    }
  } else if (o.name != "full" && o.name != "window" && o.name != "sink" && o.name != "h2o") {
    fail("unknown KV policy '", o.name, "' (expected full, ams, window, sink, uniform, h2o or table)");
  }
  make();  // the knobs' own checks, now rather than at the first batch
}

std::unique_ptr<CachePolicy> PolicyFactory::make() const {
  const PolicyOptions& o = options_;
  if (o.name == "full") return make_full_policy();
  if (o.name == "window") return make_window_policy(o.window);
  if (o.name == "sink") return make_sink_policy(o.sink_condensed, o.window);
  if (o.name == "table") return table_->make();
  if (o.name == "h2o") return std::make_unique<H2oPolicy>(o.budget, o.h2o_recent);
  return std::make_unique<AmsPolicy>(o.ams, o.name == "uniform");
}

void PolicyFactory::check_depth(int depth) const {
  if (table_) table_->check_depth(depth);
}

std::unique_ptr<CachePolicy> make_policy(const PolicyOptions& options) { return PolicyFactory(options).make(); }

}  // namespace amskv::kv
