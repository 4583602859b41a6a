#include "kv/memory_report.h"

#include <algorithm>

#include "core/error.h"

#include "kv/policies/recency_policy.h"

namespace amskv::kv {

namespace {
// Numbers whose resident peak in bytes is `resident_bytes` and whose first `allocated_transient` allocated
// tokens are the transient buffer's.
MemoryNumbers with_bytes(int64_t stored, int64_t resident, int64_t allocated, int64_t resident_bytes,
                         int64_t allocated_transient, int64_t bytes_per_token, int64_t transient_bytes_per_token) {
  return {stored,
          resident,
          allocated,
          stored * bytes_per_token,
          resident_bytes,
          kv_bytes(allocated, allocated_transient, bytes_per_token, transient_bytes_per_token)};
}
}  // namespace

MemoryReport make_memory_report(const KvStats& stats, const ScheduleInfo& schedule, int64_t rows) {
  AMSKV_CHECK(stats.bytes_per_token > 0 && stats.transient_bytes_per_token > 0,
              "memory report: the stats carry no bytes per token (", stats.bytes_per_token, ", ",
              stats.transient_bytes_per_token, ")");
  const auto& f = stats.footprint;
  AMSKV_CHECK(f.resident_by_scale.size() == schedule.tokens.size(), "memory report: resident peaks of ",
              f.resident_by_scale.size(), " scales for a schedule of ", schedule.tokens.size());
  MemoryReport r;
  r.rows = rows;
  r.bytes_per_token = stats.bytes_per_token;
  r.transient_bytes_per_token = stats.transient_bytes_per_token;
  const int64_t b = r.bytes_per_token, t = r.transient_bytes_per_token;
  // The resident peak in bytes: while scale s runs, its tokens are the transient buffer's.
  int64_t resident_bytes = 0;
  for (size_t s = 0; s < schedule.tokens.size(); ++s) {
    const int64_t at = f.resident_by_scale[s], n = std::min(schedule.tokens[s], at);
    resident_bytes = std::max(resident_bytes, kv_bytes(at, n, b, t));
  }
  r.policy = with_bytes(f.stored_tokens, f.resident_tokens, f.allocated_tokens, resident_bytes,
                        f.allocated_transient_tokens, b, t);

  int64_t L = 0;
  for (int64_t n : schedule.tokens) L += n;
  const int64_t D = schedule.depth;
  r.reference = with_bytes(D * L, D * L, D * L, D * L * t, D * L, t, t);

  // This engine's own `full`: every scale but the last stored, plus the one transient buffer; its peaks come
  // at the last scale, the largest.
  auto full = make_full_policy();
  full->begin(schedule);
  int64_t stored = 0;
  for (int l = 0; l < D; ++l) stored += planned_layer_tokens(*full, l);
  const int64_t transient = *std::max_element(schedule.tokens.begin(), schedule.tokens.end());
  const int64_t last = schedule.tokens.back();
  r.engine_full = with_bytes(stored, stored + last, stored + transient, kv_bytes(stored + last, last, b, t), transient,
                             b, t);
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
  j["transient_bytes_per_token_layer"] = transient_bytes_per_token;
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
