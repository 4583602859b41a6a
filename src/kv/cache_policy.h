// The cache-policy interface: after layer l has computed scale s, the policy says which scales the layer
// keeps for later scales. Policies see scale ids and token counts only, never K/V data or kernels.
#pragma once
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace amskv::kv {

struct ScheduleInfo {
  std::vector<int64_t> tokens;  // n_s for every scale
  int depth = 0;
  int num_scales() const { return static_cast<int>(tokens.size()); }
  // From the side of every scale (n_s = side²) and the number of layers.
  static ScheduleInfo from_sides(const std::vector<int64_t>& sides, int64_t depth) {
    ScheduleInfo info;
    for (int64_t s : sides) info.tokens.push_back(s * s);
    info.depth = static_cast<int>(depth);
    return info;
  }
};

// sim[l][s]: the inter-scale key similarity of layer l at scale s (NaN where not measured).
struct SimilarityLog {
  std::vector<std::vector<double>> sim;
  void reset(int depth, int scales) {
    sim.assign(static_cast<size_t>(depth), std::vector<double>(static_cast<size_t>(scales), kUnknown));
  }
  static constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();
};

class CachePolicy {
 public:
  virtual ~CachePolicy() = default;
  virtual std::string name() const = 0;

  // Start of a generation (also resets online decisions).
  virtual void begin(const ScheduleInfo& schedule) { schedule_ = schedule; }
  // Before any layer computes `scale`; online policies decide here from the similarities measured so far.
  virtual void before_scale(int scale, const SimilarityLog& log) {}
  // The scales layer `layer` keeps once it has computed `scale` (never the last scale), ascending: a subset
  // of `stored` (ascending) plus possibly `scale`. Pure given the policy's state, so plans can simulate it.
  virtual std::vector<int> retain(int layer, int scale, const std::vector<int>& stored) const = 0;
  // Whether layer similarities should be measured for this policy's decisions.
  virtual bool wants_similarity() const { return false; }

  // Token-level policies (H2O) keep individual tokens of a layer rather than whole scales: after every
  // scale each (row, head) of the layer holds at most token_budget(layer) tokens, the ones select_tokens()
  // picks; retain() is not asked. The cache then measures how much attention every stored token receives.
  virtual bool token_level() const { return false; }
  virtual int64_t token_budget(int layer) const { return 0; }
  // Which of `count` candidate tokens (in time order, oldest first) to keep, ascending, at most
  // token_budget(layer) of them; scores[i] is the attention mass candidate i has received so far. Pure.
  virtual std::vector<int64_t> select_tokens(int layer, const float* scores, int64_t count) const { return {}; }
  // Settings and per-layer decisions, for reports.
  virtual nlohmann::json describe() const { return {{"policy", name()}}; }

  const ScheduleInfo& schedule() const { return schedule_; }

 protected:
  int64_t tokens_of(const std::vector<int>& scales) const {
    int64_t n = 0;
    for (int s : scales) n += schedule_.tokens.at(static_cast<size_t>(s));
    return n;
  }
  ScheduleInfo schedule_;
};

// The most tokens `layer` stores at any point when the policy's current decisions hold for the whole run:
// its retain() simulated over scales 0..K-2 (for a token-level policy: its budget, or everything stored
// when that is less). The engine reserves exactly this.
int64_t planned_layer_tokens(const CachePolicy& policy, int layer);

// Checks a retain() answer against the contract; throws an Error naming the policy on violation.
void check_retained(const CachePolicy& policy, int layer, int scale, const std::vector<int>& stored,
                    const std::vector<int>& kept);

}  // namespace amskv::kv
