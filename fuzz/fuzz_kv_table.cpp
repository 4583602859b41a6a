// libFuzzer entry point for KV tables (--kv table): the JSON text is parsed like a file, then the policy it
// describes runs over a schedule. An accepted table must give a policy that keeps its contract
// (check_retained), or the fuzzer aborts. Depends only on kv/ and io/ code.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "core/error.h"
#include "kv/cache_policy.h"
#include "kv/policies/recency_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<amskv::kv::CachePolicy> policy;
  amskv::kv::ScheduleInfo schedule;
  try {
    const auto table =
        amskv::kv::RecencyTable::from_text({reinterpret_cast<const char*>(data), size}, "fuzz_table.json");
    schedule.tokens = {1, 4, 9, 16, 25};
    schedule.depth = table.layers().empty() ? 1 : table.layers().rbegin()->first + 1;
    table.check_depth(schedule.depth);
    policy = table.make();
    policy->begin(schedule);
  } catch (const amskv::Error&) {
    return 0;  // rejecting malformed input with an error is the expected outcome
  }
  // A table that was accepted must give a policy that keeps its contract: an error from here on is a bug.
  try {
    for (int layer = 0; layer < schedule.depth; ++layer) {
      std::vector<int> stored;
      for (int scale = 0; scale + 1 < schedule.num_scales(); ++scale) {
        auto kept = policy->retain(layer, scale, stored);
        amskv::kv::check_retained(*policy, layer, scale, stored, kept);
        stored = std::move(kept);
      }
    }
  } catch (const amskv::Error& e) {
    std::fprintf(stderr, "accepted table broke the policy contract: %s\n", e.what());
    std::abort();
  }
  return 0;
}
