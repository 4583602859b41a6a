#include "engine/reduction_targets.h"

#include <cmath>
#include <map>

#include "core/error.h"
#include "engine/omp_single_thread.h"
#include "kv/memory_plan.h"
#include "kv/memory_report.h"
#include "model/var_model.h"

namespace amskv::engine {

namespace {

double planned_resident_reduction(const kv::PolicyOptions& options, const model::VarConfig& config) {
  const kv::ScheduleInfo schedule = model::kv_schedule(config);
  auto policy = kv::make_policy(options);
  kv::KvStats stats = kv::plan_footprint(*policy, schedule, config.schedule.patch_nums);
  stats.bytes_per_token = stats.transient_bytes_per_token = 1;  // a ratio of token counts: rows and widths cancel
  return kv::make_memory_report(stats, schedule, 1).reduction(&kv::MemoryNumbers::resident_bytes);
}

}  // namespace

std::vector<std::string> searchable_policy_families() {
  std::vector<std::string> out;
  for (const std::string& name : kv::policy_names())
    if (name == "ams" || name == "sink" || name == "window" || name == "uniform" || name == "h2o") out.push_back(name);
  return out;
}

std::vector<PolicyCandidate> policy_candidates(const std::string& family, const model::VarConfig& config,
                                               const kv::PolicyOptions& base) {
  const int K = config.schedule.num_scales();
  int64_t total_tokens = 0;
  for (int k = 0; k < K; ++k) total_tokens += config.schedule.tokens(k);
  std::vector<PolicyCandidate> out;
  std::map<double, size_t> seen;  // planned reduction -> index in out (the first, smallest knob)
  auto add = [&](kv::PolicyOptions o, std::string setting) {
    double r = 0;
    try {
      r = planned_resident_reduction(o, config);
    } catch (const Error&) {
      return;  // a knob value the policy refuses for this model (e.g. below its condensed tokens)
    }
    if (seen.count(r)) return;
    seen[r] = out.size();
    out.push_back({std::move(o), std::move(setting), r});
  };
  const OmpSingleThread single;  // hundreds of plans of one-element K/V: a thread team only waits
  kv::PolicyOptions o = base;
  o.name = family;
  if (family == "window") {
    for (int w = 1; w <= K; ++w) {
      o.window = w;
      add(o, cat("window w=", w));
    }
  } else if (family == "sink") {
    for (int w = 1; w + o.sink_condensed <= K; ++w) {
      o.window = w;
      add(o, cat("sink c=", o.sink_condensed, " w=", w));
    }
  } else if (family == "uniform" || family == "h2o") {
    for (int64_t b = 0; b <= total_tokens; ++b) {
      o.budget = b;
      add(o, cat(family, " ", b));
    }
  } else if (family == "ams") {
    const int64_t step_up = K >= 3 ? config.schedule.tokens(K - 3) : 0;
    const int64_t offset = base.ams.cmax && base.ams.cmin ? *base.ams.cmax - *base.ams.cmin : step_up;
    for (int64_t c = 0; c <= total_tokens; ++c) {
      o.ams.cmin = c;
      o.ams.cmax = c + offset;
      add(o, cat("ams ", c, "/", c + offset));
    }
  } else {
    fail("--reduction: policy family '", family, "' has no memory knob to search (searchable: ams, sink, window, ",
         "uniform, h2o)");
  }
  AMSKV_CHECK(!out.empty(), "--reduction: no valid setting of ", family, " for this model");
  return out;
}

const PolicyCandidate& closest_to_reduction(const std::vector<PolicyCandidate>& candidates, double target) {
  AMSKV_CHECK(!candidates.empty(), "--reduction: no candidate settings");
  const PolicyCandidate* best = &candidates.front();
  for (const PolicyCandidate& c : candidates) {
    const double d = std::abs(c.planned_resident_reduction - target), db = std::abs(best->planned_resident_reduction - target);
    if (d < db - 1e-12 || (std::abs(d - db) <= 1e-12 && c.planned_resident_reduction < best->planned_resident_reduction))
      best = &c;
  }
  return *best;
}

}  // namespace amskv::engine
