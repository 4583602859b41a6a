#include "kv/memory_report.h"

#include <algorithm>

#include "kv/policies/recency_policy.h"

namespace amskv::kv {

namespace {
MemoryNumbers with_bytes(int64_t stored, int64_t resident, int64_t allocated, int64_t bytes_per_token) {
  return {stored, resident, allocated, stored * bytes_per_token, resident * bytes_per_token,
          allocated * bytes_per_token};
}
}  // namespace

MemoryReport make_memory_report(const KvStats& stats, const ScheduleInfo& schedule, int64_t rows) {
  MemoryReport r;
  r.rows = rows;
  r.bytes_per_token = stats.bytes_per_token;
  const auto& f = stats.footprint;
  r.policy = with_bytes(f.stored_tokens, f.resident_tokens, f.allocated_tokens, r.bytes_per_token);

  int64_t L = 0;
  for (int64_t n : schedule.tokens) L += n;
  const int64_t D = schedule.depth;
  r.reference = with_bytes(D * L, D * L, D * L, r.bytes_per_token);

  // This engine's own `full`: every scale but the last stored, plus the one transient buffer.
  auto full = make_full_policy();
  full->begin(schedule);
  int64_t stored = 0;
  for (int l = 0; l < D; ++l) stored += planned_layer_tokens(*full, l);
  const int64_t transient = *std::max_element(schedule.tokens.begin(), schedule.tokens.end());
  r.engine_full = with_bytes(stored, stored + schedule.tokens.back(), stored + transient, r.bytes_per_token);
  return r;
}

nlohmann::json MemoryReport::to_json(const KvStats& stats, const nlohmann::json& policy_description) const {
  auto numbers = [](const MemoryNumbers& m) {
    return nlohmann::json{{"stored_bytes", m.stored_bytes},       {"resident_bytes", m.resident_bytes},
                          {"allocated_bytes", m.allocated_bytes}, {"stored_tokens", m.stored_tokens},
                          {"resident_tokens", m.resident_tokens}, {"allocated_tokens", m.allocated_tokens}};
  };
  nlohmann::json j = numbers(policy);
  j["policy"] = policy_description.value("policy", "?");
  j["settings"] = policy_description;
  j["full"] = numbers(reference);
  j["engine_full"] = numbers(engine_full);
  j["rows"] = rows;
  j["bytes_per_token_layer"] = bytes_per_token;
  j["reduction"] = {{"stored", reduction(&MemoryNumbers::stored_bytes)},
                    {"resident", reduction(&MemoryNumbers::resident_bytes)},
                    {"allocated", reduction(&MemoryNumbers::allocated_bytes)}};
  nlohmann::json layers = nlohmann::json::array();
  for (size_t l = 0; l < stats.layer_peak_tokens.size(); ++l)
    layers.push_back({{"layer", l},
                      {"peak_tokens", stats.layer_peak_tokens[l]},
                      {"reserved_tokens", stats.layer_reserved_tokens[l]},
                      {"final_scales", stats.layer_final_scales[l]}});
  j["per_layer"] = layers;
  return j;
}

}  // namespace amskv::kv
