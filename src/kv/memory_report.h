// The three memory numbers of spec/amskv.md (stored, resident, allocated) for a policy's run, beside this
// engine's `full` policy and the reference VAR's vanilla cache (every scale of every layer stored, D*L
// tokens), which is the baseline of every reduction. Bytes are exact: stored tokens at the store's width, the
// transient buffer's at the compute dtype's, and the reference at the compute dtype's (what the reference
// implementation keeps). With a 16-bit store every reduction is a ratio of tokens; with an 8-bit one the
// byte reductions also hold the store's saving.
#pragma once
#include <cstdint>

#include <nlohmann/json.hpp>

#include "kv/cache_policy.h"
#include "kv/kv_cache.h"

namespace amskv::kv {

struct MemoryNumbers {
  int64_t stored_tokens = 0, resident_tokens = 0, allocated_tokens = 0;  // summed over layers
  int64_t stored_bytes = 0, resident_bytes = 0, allocated_bytes = 0;     // for the whole batch
};

struct MemoryReport {
  MemoryNumbers policy, engine_full, reference;
  int64_t rows = 0;             // CFG rows (2 per image)
  int64_t bytes_per_token = 0;            // K+V of one stored token, one layer, all rows
  int64_t transient_bytes_per_token = 0;  // the same at the compute dtype (transient buffer, reference)
  double reduction(int64_t MemoryNumbers::*field) const {
    return 1.0 - static_cast<double>(policy.*field) / static_cast<double>(reference.*field);
  }
  nlohmann::json to_json(const KvStats& stats, const nlohmann::json& policy_description) const;
};

MemoryReport make_memory_report(const KvStats& stats, const ScheduleInfo& schedule, int64_t rows);

// Bytes of `tokens` K/V tokens of which `transient` are the transient buffer's: the rest at the store's width,
// those at the compute dtype's (the report's and the memory planner's one rule).
inline int64_t kv_bytes(int64_t tokens, int64_t transient, int64_t bytes_per_token, int64_t transient_bytes_per_token) {
  return (tokens - transient) * bytes_per_token + transient * transient_bytes_per_token;
}

}  // namespace amskv::kv
