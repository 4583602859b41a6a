#include "kv/cache_policy.h"

#include <algorithm>

#include "core/error.h"

namespace amskv::kv {

int64_t planned_layer_tokens(const CachePolicy& policy, int layer) {
  std::vector<int> stored;
  int64_t peak = 0;
  const int K = policy.schedule().num_scales();
  if (policy.token_level()) {
    int64_t all = 0;
    for (int s = 0; s + 1 < K; ++s) all += policy.schedule().tokens.at(static_cast<size_t>(s));
    return std::min(all, policy.token_budget(layer));
  }
  for (int s = 0; s + 1 < K; ++s) {
    stored = policy.retain(layer, s, stored);
    int64_t n = 0;
    for (int x : stored) n += policy.schedule().tokens.at(static_cast<size_t>(x));
    peak = std::max(peak, n);
  }
  return peak;
}

void check_retained(const CachePolicy& policy, int layer, int scale, const std::vector<int>& stored,
                    const std::vector<int>& kept) {
  for (size_t i = 0; i < kept.size(); ++i) {
    const bool known = kept[i] == scale || std::find(stored.begin(), stored.end(), kept[i]) != stored.end();
    AMSKV_CHECK(known, "cache policy '", policy.name(), "' kept scale ", kept[i], " in layer ", layer,
                " after scale ", scale, ", which the layer no longer holds");
    AMSKV_CHECK(i == 0 || kept[i - 1] < kept[i], "cache policy '", policy.name(),
                "' returned scales out of order in layer ", layer);
  }
}

}  // namespace amskv::kv
