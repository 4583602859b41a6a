// Policies that keep scales by recency: `full` (everything), `window` (the w most recent scales),
// `sink` (the first c "condensed" scales plus the w most recent), and `table` (any of these chosen per
// layer from a JSON file). The w most recent include the scale just computed.
#pragma once
#include <string>
#include <vector>

#include "kv/cache_policy.h"

namespace amskv::kv {

struct RecencyRule {
  bool keep_all = false;
  int condensed = 0;
  int window = 0;
  nlohmann::json to_json() const;
};

std::vector<int> apply_recency(const RecencyRule& rule, int scale, const std::vector<int>& stored);

class RecencyPolicy : public CachePolicy {
 public:
  RecencyPolicy(std::string name, RecencyRule default_rule, std::vector<std::pair<int, RecencyRule>> overrides = {});
  std::string name() const override { return name_; }
  void begin(const ScheduleInfo& schedule) override;
  std::vector<int> retain(int layer, int scale, const std::vector<int>& stored) const override;
  nlohmann::json describe() const override;
  const RecencyRule& rule_for(int layer) const;

 private:
  std::string name_;
  RecencyRule default_rule_;
  std::vector<std::pair<int, RecencyRule>> overrides_;
};

std::unique_ptr<CachePolicy> make_full_policy();
std::unique_ptr<CachePolicy> make_window_policy(int window);
std::unique_ptr<CachePolicy> make_sink_policy(int condensed, int window);
// {"default": {"condensed": 2, "window": 1}, "layers": {"0": {"full": true}}}
std::unique_ptr<CachePolicy> make_table_policy_from_json(const nlohmann::json& table, const std::string& source);
std::unique_ptr<CachePolicy> load_table_policy(const std::string& path);

}  // namespace amskv::kv
