// Policies that keep scales by recency: `full` (everything), `window` (the w most recent scales),
// `sink` (the first c "condensed" scales plus the w most recent), and `table` (any of these chosen per
// layer from a JSON file). The w most recent include the scale just computed.
#pragma once
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kv/cache_policy.h"

namespace amskv::kv {

struct RecencyRule {
  bool keep_all = false;
  int condensed = 0;
  int window = 0;
  nlohmann::json to_json() const;
};

std::vector<int> apply_recency(const RecencyRule& rule, int scale, const std::vector<int>& stored);

class RecencyPolicy : public CachePolicy {
 public:
  // `overrides`: per-layer rules (the first rule of a layer counts). `source` names the file they came from,
  // for the error begin() gives when a rule names a layer the model does not have.
  RecencyPolicy(std::string name, RecencyRule default_rule, std::vector<std::pair<int, RecencyRule>> overrides = {},
                std::string source = "");
  std::string name() const override { return name_; }
  void begin(const ScheduleInfo& schedule) override;
  std::vector<int> retain(int layer, int scale, const std::vector<int>& stored) const override;
  nlohmann::json describe() const override;
  const RecencyRule& rule_for(int layer) const;

 private:
  std::string name_;
  RecencyRule default_rule_;
  std::map<int, RecencyRule> overrides_;  // retain() looks a layer up for every scale: logarithmic, not linear
  std::string source_;
};

std::unique_ptr<CachePolicy> make_full_policy();
std::unique_ptr<CachePolicy> make_window_policy(int window);
std::unique_ptr<CachePolicy> make_sink_policy(int condensed, int window);
// A KV table, {"default": {"condensed": 2, "window": 1}, "layers": {"0": {"full": true}}}, read and checked
// once: make() builds a fresh policy from it for every batch without touching the file again. Reading is
// linear in the table's size, and a layer index above kMaxLayers is refused as soon as it is read, before
// the rest of a huge table is looked at. Errors name `source` (the file) and the offending key.
class RecencyTable {
 public:
  static constexpr int kMaxLayers = 1024;  // VAR has at most 36; an index this large is a mistake

  static RecencyTable from_json(const nlohmann::json& table, const std::string& source);
  // JSON text in memory (fuzzing, tests), parsed like a file: duplicate keys and deep nesting are refused.
  static RecencyTable from_text(std::string_view text, const std::string& source);
  static RecencyTable load(const std::string& path);

  // The earliest check against a model: "<source>: a rule for layer 40 (layers.40), but the model has 30
  // layers (0..29)". begin() of every policy made here does it too.
  void check_depth(int depth) const;
  std::unique_ptr<CachePolicy> make() const;

  const std::string& source() const { return source_; }
  const RecencyRule& default_rule() const { return default_; }
  const std::map<int, RecencyRule>& layers() const { return layers_; }

 private:
  std::string source_;
  RecencyRule default_{true, 0, 0};
  std::map<int, RecencyRule> layers_;
};

// One-shot forms of RecencyTable::from_json(...).make() and RecencyTable::load(path).make().
std::unique_ptr<CachePolicy> make_table_policy_from_json(const nlohmann::json& table, const std::string& source);
std::unique_ptr<CachePolicy> load_table_policy(const std::string& path);

}  // namespace amskv::kv
