#include "kv/memory_plan.h"

namespace amskv::kv {

KvStats plan_footprint(CachePolicy& policy, const ScheduleInfo& schedule, const std::vector<int64_t>& scale_sides) {
  KvCache cache(policy, schedule, scale_sides, /*rows=*/1, /*heads=*/1, /*head_dim=*/1);
  for (int k = 0; k < schedule.num_scales(); ++k) {
    cache.begin_scale(k);
    for (int l = 0; l < schedule.depth; ++l) {
      cache.attention_segments(l);
      cache.finish_layer(l);
    }
  }
  return cache.stats();
}

}  // namespace amskv::kv
