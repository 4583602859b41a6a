// H2O ("Heavy-Hitter Oracle", Zhang et al., NeurIPS 2023) as a baseline of the paper: per layer, and per row
// and head, keep the `recent` most recent tokens plus the tokens that have received the most attention so
// far (heavy hitters), `budget` tokens in all. Unlike the scale-level policies it evicts individual tokens,
// so a layer's cache is one segment of hand-picked tokens.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kv/cache_policy.h"

namespace amskv::kv {

class H2oPolicy : public CachePolicy {
 public:
  // budget: tokens per layer, per row and head (>= 1; -1: AMS-KV's default C_min for the schedule, the same
  // memory as its cache-efficient layers); recent_fraction: the share of it kept for the most recent tokens
  // (the H2O paper splits evenly: 0.5).
  H2oPolicy(int64_t budget, double recent_fraction);
  std::string name() const override { return "h2o"; }
  void begin(const ScheduleInfo& schedule) override;
  std::vector<int> retain(int layer, int scale, const std::vector<int>& stored) const override;
  bool token_level() const override { return true; }
  int64_t token_budget(int) const override { return budget_; }
  std::vector<int64_t> select_tokens(int layer, const float* scores, int64_t count) const override;
  nlohmann::json describe() const override;

 private:
  int64_t requested_, budget_ = 0, recent_ = 0;
  double recent_fraction_;
};

}  // namespace amskv::kv
