// Plans a policy's KV footprint without running the model: the cache is driven through every scale and
// layer with one-element placeholder K/V, so only the token bookkeeping is exercised. Online AMS decisions
// see similarity -1 everywhere, so with a demanding fraction the first layers are the raised ones and
// with a threshold every layer is raised. Allocated tokens do not depend on which layers are raised; the
// stored and resident peaks are largest when the raised layers come first, so the plan bounds them.
#pragma once
#include <vector>

#include "kv/cache_policy.h"
#include "kv/kv_cache.h"

namespace amskv::kv {

// Token counts summed over layers, for one CFG row (multiply by rows and bytes per token-row).
KvStats plan_footprint(CachePolicy& policy, const ScheduleInfo& schedule, const std::vector<int64_t>& scale_sides);

}  // namespace amskv::kv
