#include "kv/policies/recency_policy.h"

#include <algorithm>

#include "core/error.h"
#include "io/json_file.h"
#include "io/json_parse.h"

namespace amskv::kv {

nlohmann::json RecencyRule::to_json() const {
  if (keep_all) return {{"full", true}};
  return {{"condensed", condensed}, {"window", window}};
}

std::vector<int> apply_recency(const RecencyRule& rule, int scale, const std::vector<int>& stored) {
  std::vector<int> all = stored;
  all.push_back(scale);
  if (rule.keep_all) return all;
  std::vector<int> kept;
  for (int s : all)
    if (s < rule.condensed || s > scale - rule.window) kept.push_back(s);
  return kept;
}

RecencyPolicy::RecencyPolicy(std::string name, RecencyRule default_rule,
                             std::vector<std::pair<int, RecencyRule>> overrides, std::string source)
    : name_(std::move(name)), default_rule_(default_rule), source_(std::move(source)) {
  for (const auto& [layer, rule] : overrides) overrides_.emplace(layer, rule);
}

namespace {
// Shared by RecencyPolicy::begin() and RecencyTable::check_depth(): the largest layer is the only candidate.
void check_layers(const std::map<int, RecencyRule>& rules, int depth, const std::string& who) {
  if (rules.empty()) return;
  const int layer = rules.rbegin()->first;
  AMSKV_CHECK(layer < depth, who, ": a rule for layer ", layer, " (layers.", layer, "), but the model has ", depth,
              " layers (0..", depth - 1, ")");
}
}  // namespace

void RecencyPolicy::begin(const ScheduleInfo& schedule) {
  CachePolicy::begin(schedule);
  check_layers(overrides_, schedule.depth, source_.empty() ? name_ + " policy" : source_);
}

const RecencyRule& RecencyPolicy::rule_for(int layer) const {
  auto it = overrides_.find(layer);
  return it == overrides_.end() ? default_rule_ : it->second;
}

std::vector<int> RecencyPolicy::retain(int layer, int scale, const std::vector<int>& stored) const {
  return apply_recency(rule_for(layer), scale, stored);
}

nlohmann::json RecencyPolicy::describe() const {
  nlohmann::json j = {{"policy", name_}, {"default", default_rule_.to_json()}};
  if (!overrides_.empty()) {
    nlohmann::json layers = nlohmann::json::object();
    for (const auto& [l, rule] : overrides_) layers[std::to_string(l)] = rule.to_json();
    j["layers"] = layers;
  }
  return j;
}

std::unique_ptr<CachePolicy> make_full_policy() {
  return std::make_unique<RecencyPolicy>("full", RecencyRule{true, 0, 0});
}

std::unique_ptr<CachePolicy> make_window_policy(int window) {
  AMSKV_CHECK(window >= 0, "--kv-window must be >= 0, got ", window);
  return std::make_unique<RecencyPolicy>("window", RecencyRule{false, 0, window});
}

std::unique_ptr<CachePolicy> make_sink_policy(int condensed, int window) {
  AMSKV_CHECK(window >= 0 && condensed >= 0, "sink policy: condensed and window must be >= 0");
  return std::make_unique<RecencyPolicy>("sink", RecencyRule{false, condensed, window});
}

namespace {
RecencyRule parse_rule(const nlohmann::json& j, const std::string& where) {
  AMSKV_CHECK(j.is_object(), where, " must be an object like {\"condensed\": 2, \"window\": 1}");
  RecencyRule rule;
  for (const auto& [key, value] : j.items()) {
    if (key == "full") {
      AMSKV_CHECK(value.is_boolean(), where, ".full must be true or false");
      rule.keep_all = value.get<bool>();
    } else if (key == "condensed" || key == "window") {
      AMSKV_CHECK(value.is_number_integer() && value.get<int64_t>() >= 0 && value.get<int64_t>() <= 1000, where,
                  ".", key, " must be a non-negative integer");
      (key == "condensed" ? rule.condensed : rule.window) = value.get<int>();
    } else {
      fail(where, ": unknown field '", key.substr(0, 40), "' (expected full, condensed, window)");
    }
  }
  return rule;
}
}  // namespace

RecencyTable RecencyTable::from_json(const nlohmann::json& table, const std::string& source) {
  AMSKV_CHECK(table.is_object(), source, ": a KV table must be a JSON object");
  RecencyTable out;
  out.source_ = source;
  for (const auto& [key, value] : table.items()) {
    if (key == "default") {
      out.default_ = parse_rule(value, source + ": default");
    } else if (key == "layers") {
      AMSKV_CHECK(value.is_object(), source, ": layers must be an object keyed by layer index");
      for (const auto& [layer, rule] : value.items()) {
        const bool digits = !layer.empty() && layer.size() <= 6 &&
                            layer.find_first_not_of("0123456789") == std::string::npos;
        AMSKV_CHECK(digits, source, ": layers key '", layer.substr(0, 40), "' is not a layer index (plain digits)");
        const int l = std::stoi(layer);
        AMSKV_CHECK(l < kMaxLayers, source, ": layers.", layer, " names layer ", l, ", but a table describes at most ",
                    kMaxLayers, " layers (0..", kMaxLayers - 1, ")");
        // "7" and "007" are different JSON keys but the same layer.
        const auto [it, fresh] = out.layers_.emplace(l, RecencyRule{});
        AMSKV_CHECK(fresh, source, ": layer ", l, " has two rules (layers.", layer, " and another spelling of it)");
        it->second = parse_rule(rule, cat(source, ": layers.", layer));
      }
    } else {
      fail(source, ": unknown field '", key.substr(0, 40), "' (expected default, layers)");
    }
  }
  return out;
}

RecencyTable RecencyTable::from_text(std::string_view text, const std::string& source) {
  return from_json(io::parse_json(text, source, "KV table"), source);
}

RecencyTable RecencyTable::load(const std::string& path) {
  return from_json(io::read_json_file(path, "KV table"), path);
}

void RecencyTable::check_depth(int depth) const { check_layers(layers_, depth, source_); }

std::unique_ptr<CachePolicy> RecencyTable::make() const {
  return std::make_unique<RecencyPolicy>("table", default_,
                                         std::vector<std::pair<int, RecencyRule>>(layers_.begin(), layers_.end()),
                                         source_);
}

std::unique_ptr<CachePolicy> make_table_policy_from_json(const nlohmann::json& table, const std::string& source) {
  return RecencyTable::from_json(table, source).make();
}

std::unique_ptr<CachePolicy> load_table_policy(const std::string& path) { return RecencyTable::load(path).make(); }

}  // namespace amskv::kv
