#include "kv/policies/h2o_policy.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "kv/policies/ams_policy.h"

namespace amskv::kv {

H2oPolicy::H2oPolicy(int64_t budget, double recent_fraction) : requested_(budget), recent_fraction_(recent_fraction) {
  AMSKV_CHECK(budget >= 1 || budget == -1, "h2o: --kv-budget must be at least 1 token, got ", budget);
  AMSKV_CHECK(recent_fraction >= 0.0 && recent_fraction <= 1.0, "h2o: --h2o-recent must be in [0, 1], got ",
              recent_fraction);
}

void H2oPolicy::begin(const ScheduleInfo& schedule) {
  CachePolicy::begin(schedule);
  budget_ = requested_ > 0 ? requested_ : default_ams_budgets(schedule.tokens, 2).cmin;
  recent_ = std::clamp<int64_t>(std::llround(recent_fraction_ * static_cast<double>(budget_)), 0, budget_);
}

std::vector<int> H2oPolicy::retain(int, int, const std::vector<int>&) const {
  fail("h2o keeps tokens, not scales: retain() is not used for it");
}

std::vector<int64_t> H2oPolicy::select_tokens(int, const float* scores, int64_t count) const {
  std::vector<int64_t> keep;
  if (count <= budget_) {
    keep.resize(static_cast<size_t>(count));
    std::iota(keep.begin(), keep.end(), int64_t{0});
    return keep;
  }
  // The most recent tokens, then the heaviest hitters among the older ones (ties: the older token first,
  // so the choice does not depend on sort stability).
  const int64_t older = count - recent_;
  std::vector<int64_t> order(static_cast<size_t>(older));
  std::iota(order.begin(), order.end(), int64_t{0});
  const int64_t heavy = budget_ - recent_;
  std::partial_sort(order.begin(), order.begin() + heavy, order.end(), [&](int64_t a, int64_t b) {
    return scores[a] != scores[b] ? scores[a] > scores[b] : a < b;
  });
  keep.assign(order.begin(), order.begin() + heavy);
  for (int64_t i = older; i < count; ++i) keep.push_back(i);
  std::sort(keep.begin(), keep.end());
  return keep;
}

nlohmann::json H2oPolicy::describe() const {
  return {{"policy", name()}, {"budget", budget_}, {"recent", recent_}, {"recent_fraction", recent_fraction_}};
}

}  // namespace amskv::kv
