// Choosing a policy's knob for a memory target: every setting of a policy family (the window of `window`
// and `sink`, the budget of `uniform` and `h2o`, C_min of `ams`) is planned with kv::plan_footprint, without running the
// model, and the one whose resident-KV reduction against the reference cache (vanilla VAR: every scale of
// every layer) is closest to the target is picked. `amskv eval --reduction 50,75,85` compares families at
// equal memory this way.
#pragma once
#include <string>
#include <vector>

#include "kv/policy_factory.h"
#include "model/var_config.h"

namespace amskv::engine {

struct PolicyCandidate {
  kv::PolicyOptions options;
  std::string setting;                // "window w=3", "sink c=2 w=2", "uniform 150", "h2o 150", "ams 150/250"
  double planned_resident_reduction;  // 1 − resident / reference resident, from the plan
};

// The families this engine can search (those of kv::policy_names() with one memory knob): ams, sink,
// window, uniform, h2o.
std::vector<std::string> searchable_policy_families();

// Every distinct setting of `family` for this model, in increasing knob order; settings that plan the same
// resident tokens keep the smallest knob. `base` supplies the family's other knobs (sink's condensed
// scales; ams's condensed count, demanding fraction, theta); ams's C_max follows C_min as the defaults do
// (C_max = C_min + n_{K−3}, docs/ams_defaults.md) unless `base` sets C_max, which is then kept as an offset.
// Throws amskv::Error for a family that cannot be searched.
std::vector<PolicyCandidate> policy_candidates(const std::string& family, const model::VarConfig& config,
                                               const kv::PolicyOptions& base = {});

// The candidate whose planned reduction is closest to `target` (a fraction, 0.75 for 75%); on a tie the one
// that keeps more (smaller reduction). Throws amskv::Error when `candidates` is empty.
const PolicyCandidate& closest_to_reduction(const std::vector<PolicyCandidate>& candidates, double target);

}  // namespace amskv::engine
