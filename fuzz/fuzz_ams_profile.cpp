// libFuzzer entry point for AMS profiles (--ams-profile): the JSON text is merged like a file, then an AMS
// policy decides from it over a schedule as deep as the profile. An accepted profile must give a policy that
// keeps its contract (check_retained), or the fuzzer aborts. Depends only on kv/ and io/ code.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "core/error.h"
#include "kv/cache_policy.h"
#include "kv/policies/ams_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<amskv::kv::AmsPolicy> policy;
  amskv::kv::ScheduleInfo schedule;
  try {
    amskv::kv::AmsOptions options;
    options.merge_profile_text({reinterpret_cast<const char*>(data), size}, "fuzz_profile.json");
    for (int64_t side : {1, 2, 3, 4, 5, 6, 8, 10, 13, 16}) schedule.tokens.push_back(side * side);
    // As deep as the profile (capped, to keep runs short), so that its similarities are actually used.
    schedule.depth = static_cast<int>(std::clamp<size_t>(options.profile_similarity.size(), 1, 64));
    policy = std::make_unique<amskv::kv::AmsPolicy>(options, /*uniform=*/false);
    policy->begin(schedule);
  } catch (const amskv::Error&) {
    return 0;  // rejecting malformed input with an error is the expected outcome
  }
  // A profile that was accepted must give a policy that keeps its contract: an error from here on is a bug.
  try {
    amskv::kv::SimilarityLog log;
    log.reset(schedule.depth, schedule.num_scales());
    std::vector<std::vector<int>> stored(static_cast<size_t>(schedule.depth));
    for (int scale = 0; scale + 1 < schedule.num_scales(); ++scale) {
      policy->before_scale(scale, log);  // online mode decides here, from no similarity at all
      for (int layer = 0; layer < schedule.depth; ++layer) {
        auto& s = stored[static_cast<size_t>(layer)];
        auto kept = policy->retain(layer, scale, s);
        amskv::kv::check_retained(*policy, layer, scale, s, kept);
        s = std::move(kept);
      }
    }
  } catch (const amskv::Error& e) {
    std::fprintf(stderr, "accepted profile broke the policy contract: %s\n", e.what());
    std::abort();
  }
  return 0;
}
