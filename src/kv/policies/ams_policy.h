// AMS-KV (spec/amskv.md): condensed scales locked in every layer, then the most recent scales that fit a
// per-layer token budget (C_min, raised to C_max for cache-demanding layers); a scale that cannot fit
// beside the condensed ones is skipped. Demanding layers are those whose inter-scale key similarity is
// low: below theta, or among the ceil(rho * depth) least similar. `uniform` is the same rule with one
// budget for every layer and no similarity.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kv/cache_policy.h"

namespace amskv::kv {

// Unset knobs take their defaults when the policy starts (condensed 2, budgets from the schedule,
// demanding fraction 0.1); a profile file fills only knobs that are still unset.
struct AmsOptions {
  std::optional<int> condensed;
  std::optional<int64_t> cmin, cmax;        // tokens
  std::optional<double> theta;              // threshold mode when set
  std::optional<double> demanding_fraction; // fraction mode otherwise
  // Offline mode: per-layer similarity from a profile (mean over its measured scales decides the classes).
  std::vector<std::vector<double>> profile_similarity;
  std::string profile_source;

  // Where each knob's value came from, for error messages: empty for its --ams-* flag (or its default),
  // another flag ("--kv-budget"), or a profile key ("p.json: ams.cmin"), set by merge_profile_*.
  struct Origins {
    std::string condensed, cmin, cmax, theta, demanding_fraction;
  } origin;

  // Reads knobs and similarities from a profile JSON written by `amskv profile` (or by hand). The file must
  // be a regular file; duplicate keys and deep nesting are refused (io::read_json_file).
  void merge_profile_file(const std::string& path);
  // The same from JSON text in memory (fuzzing, tests); `source` names it in errors.
  void merge_profile_text(std::string_view text, const std::string& source);
  void merge_profile_json(const nlohmann::json& profile, const std::string& source);
};

// Default budgets for a schedule and condensed count, documented in docs/ams_defaults.md.
struct AmsBudgets {
  int64_t cmin, cmax;
};
AmsBudgets default_ams_budgets(const std::vector<int64_t>& tokens_per_scale, int condensed);

class AmsPolicy : public CachePolicy {
 public:
  // uniform = true: every layer gets `cmin` and no layer is ever raised.
  AmsPolicy(AmsOptions options, bool uniform);
  std::string name() const override { return uniform_ ? "uniform" : "ams"; }
  void begin(const ScheduleInfo& schedule) override;
  void before_scale(int scale, const SimilarityLog& log) override;
  std::vector<int> retain(int layer, int scale, const std::vector<int>& stored) const override;
  bool wants_similarity() const override { return !uniform_ && !decided_; }
  nlohmann::json describe() const override;

  int64_t budget(int layer) const { return budgets_.at(static_cast<size_t>(layer)); }
  const std::vector<int>& demanding_layers() const { return demanding_; }
  // The scale before which the online decision is due (-1 when no layer ever exceeds C_min).
  int decision_scale() const { return decision_scale_; }

 private:
  void decide(const std::vector<double>& layer_similarity, const std::string& basis);

  AmsOptions opt_;
  bool uniform_;
  int condensed_ = 2;
  int64_t cmin_ = 0, cmax_ = 0;
  double fraction_ = 0.1;
  std::vector<int64_t> budgets_;
  std::vector<int> demanding_;
  std::vector<double> layer_similarity_;
  bool decided_ = false;
  int decision_scale_ = -1;
  std::string decision_basis_;
};

}  // namespace amskv::kv
