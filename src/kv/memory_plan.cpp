#include "kv/memory_plan.h"

#include <algorithm>
#include <vector>

#include "backend/cpu/cpu_backend.h"

namespace amskv::kv {

KvStats plan_footprint(CachePolicy& policy, const ScheduleInfo& schedule, const std::vector<int64_t>& scale_sides) {
  // One-element K/V in host memory: only the token bookkeeping matters here.
  backend::CpuBackend host;
  KvCache cache(host, policy, schedule, scale_sides, /*rows=*/1, /*heads=*/1, /*head_dim=*/1);
  for (int k = 0; k < schedule.num_scales(); ++k) {
    cache.begin_scale(k);
    // Keys of +1 then -1 on alternate scales: every measured similarity is -1, the lowest possible, so a
    // threshold raises every layer (the worst case) and a fraction raises the first layers.
    const std::vector<float> keys(static_cast<size_t>(schedule.tokens[k]), k % 2 ? -1.0f : 1.0f);
    for (int l = 0; l < schedule.depth; ++l) {
      host.upload(cache.transient_k().slice(0, schedule.tokens[k]), keys.data(), DType::F32);
      cache.attention_segments(l);
      cache.finish_layer(l);
    }
  }
  return cache.stats();
}

}  // namespace amskv::kv
