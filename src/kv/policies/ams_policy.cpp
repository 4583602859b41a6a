#include "kv/policies/ams_policy.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>

#include "core/error.h"
#include "io/json_file.h"

namespace amskv::kv {

AmsBudgets default_ams_budgets(const std::vector<int64_t>& tokens, int condensed) {
  // C_min holds the condensed scales plus the largest scale before the last (the one scale every local
  // window must reach at the final step); C_max adds room for the two largest stored scales together.
  // See docs/ams_defaults.md for the measurements behind this choice.
  const size_t K = tokens.size();
  int64_t condensed_tokens = 0;
  for (size_t s = 0; s < std::min<size_t>(static_cast<size_t>(std::max(condensed, 0)), K >= 1 ? K - 1 : 0); ++s)
    condensed_tokens += tokens[s];
  const int64_t last_stored = K >= 2 ? tokens[K - 2] : 0;
  const int64_t second = K >= 3 ? tokens[K - 3] : 0;
  return {condensed_tokens + last_stored, condensed_tokens + last_stored + second};
}

namespace {

// A profile knob: absent -> nullopt; present -> a number in [lo, hi] (integral when `integer`).
std::optional<double> profile_knob(const nlohmann::json& obj, const char* key, double lo, double hi, bool integer,
                                   const std::string& path) {
  if (!obj.contains(key) || obj[key].is_null()) return std::nullopt;
  const auto& v = obj[key];
  AMSKV_CHECK(v.is_number(), path, ": ", key, " must be a number");
  const double x = v.get<double>();
  AMSKV_CHECK(std::isfinite(x) && x >= lo && x <= hi && (!integer || x == std::floor(x)), path, ": ", key, " = ",
              v.dump(), " is out of range (", integer ? "an integer " : "", "in [", lo, ", ", hi, "])");
  return x;
}

}  // namespace

void AmsOptions::merge_profile_file(const std::string& path) {
  const nlohmann::json j = io::read_json_file(path, "AMS profile");
  AMSKV_CHECK(j.is_object(), path, ": an AMS profile must be a JSON object");
  const nlohmann::json& ams = j.contains("ams") && j["ams"].is_object() ? j["ams"] : j;
  if (auto v = profile_knob(ams, "condensed", 0, 64, true, path); v && !condensed) condensed = static_cast<int>(*v);
  if (auto v = profile_knob(ams, "cmin", 0, 1e9, true, path); v && !cmin) cmin = static_cast<int64_t>(*v);
  if (auto v = profile_knob(ams, "cmax", 0, 1e9, true, path); v && !cmax) cmax = static_cast<int64_t>(*v);
  // Threshold and fraction are two ways to choose; one given on the command line rules out the profile's.
  const bool mode_set = theta || demanding_fraction;
  if (auto v = profile_knob(ams, "theta", -1e9, 1e9, false, path); v && !mode_set) theta = *v;
  if (auto v = profile_knob(ams, "demanding_fraction", 0, 1, false, path); v && !mode_set) demanding_fraction = *v;
  AMSKV_CHECK(j.contains("similarity") && j["similarity"].is_array(), path,
              ": an AMS profile needs \"similarity\": [[sim for s = 1..K-1] for each layer]");
  profile_similarity.clear();
  for (const auto& layer : j["similarity"]) {
    AMSKV_CHECK(layer.is_array(), path, ": similarity must be a list of lists of numbers");
    std::vector<double> row;
    for (const auto& v : layer) {
      AMSKV_CHECK(v.is_number() || v.is_null(), path, ": similarity entries must be numbers");
      row.push_back(v.is_number() ? v.get<double>() : std::nan(""));
    }
    profile_similarity.push_back(std::move(row));
  }
  profile_source = path;
}

AmsPolicy::AmsPolicy(AmsOptions options, bool uniform) : opt_(std::move(options)), uniform_(uniform) {
  condensed_ = opt_.condensed.value_or(2);
  fraction_ = opt_.demanding_fraction.value_or(0.1);
  AMSKV_CHECK(condensed_ >= 0, "--ams-condensed must be >= 0");
  AMSKV_CHECK(!opt_.theta || std::isfinite(*opt_.theta), "--ams-theta must be a finite number");
  AMSKV_CHECK(fraction_ >= 0.0 && fraction_ <= 1.0, "--ams-demanding-fraction must be in [0, 1], got ", fraction_);
  AMSKV_CHECK(opt_.cmin.value_or(0) >= 0 && opt_.cmax.value_or(0) >= 0, "AMS budgets must be >= 0 tokens");
}

void AmsPolicy::begin(const ScheduleInfo& schedule) {
  CachePolicy::begin(schedule);
  const int K = schedule.num_scales();
  AMSKV_CHECK(condensed_ <= K, "--ams-condensed ", condensed_, " exceeds the ", K, " scales");
  const AmsBudgets def = default_ams_budgets(schedule.tokens, condensed_);
  cmin_ = opt_.cmin.value_or(def.cmin);
  cmax_ = uniform_ ? cmin_ : opt_.cmax.value_or(std::max(def.cmax, cmin_));
  int64_t condensed_tokens = 0;
  for (int s = 0; s < std::min(condensed_, K - 1); ++s) condensed_tokens += schedule.tokens[s];
  AMSKV_CHECK(cmin_ >= condensed_tokens, name(), ": budget C_min = ", cmin_, " tokens cannot hold the ", condensed_,
              " condensed scales (", condensed_tokens, " tokens)");
  AMSKV_CHECK(cmax_ >= cmin_, name(), ": C_max = ", cmax_, " is below C_min = ", cmin_);
  budgets_.assign(static_cast<size_t>(schedule.depth), cmin_);
  demanding_.clear();
  layer_similarity_.clear();
  decided_ = uniform_ || cmax_ == cmin_;
  decision_basis_ = decided_ ? "one budget for every layer" : "";

  // Under C_min every layer stores every scale until the cumulative tokens exceed C_min: that scale is
  // where a decision is first needed, the same for every layer.
  decision_scale_ = -1;
  int64_t cumulative = 0;
  for (int s = 0; s + 1 < K; ++s) {
    cumulative += schedule.tokens[s];
    if (cumulative > cmin_) {
      decision_scale_ = s;
      break;
    }
  }
  if (!decided_ && !opt_.profile_similarity.empty()) {
    AMSKV_CHECK(static_cast<int>(opt_.profile_similarity.size()) == schedule.depth, opt_.profile_source,
                ": profile has ", opt_.profile_similarity.size(), " layers, the model has ", schedule.depth);
    std::vector<double> mean;
    for (const auto& row : opt_.profile_similarity) {
      AMSKV_CHECK(static_cast<int>(row.size()) == K - 1, opt_.profile_source, ": profile has ", row.size(),
                  " similarities per layer, this model's schedule has ", K - 1, " finer scales");
      double sum = 0.0;
      int n = 0;
      for (double v : row)
        if (std::isfinite(v)) sum += v, ++n;
      mean.push_back(n ? sum / n : std::nan(""));
    }
    decide(mean, "profile " + opt_.profile_source);
  }
  if (!decided_ && decision_scale_ < 0) {
    decided_ = true;
    decision_basis_ = "no layer ever exceeds C_min";
  }
  // Online, the decision uses the similarity of scales 1..s*-1, which needs s* >= 2.
  AMSKV_CHECK(decided_ || decision_scale_ >= 2, name(), ": C_min = ", cmin_, " tokens is exceeded at scale ",
              decision_scale_, ", before any inter-scale similarity is measured; raise --ams-cmin or give --ams-profile");
}

void AmsPolicy::before_scale(int scale, const SimilarityLog& log) {
  if (decided_ || scale != decision_scale_) return;
  std::vector<double> mean;
  for (const auto& row : log.sim) {
    double sum = 0.0;
    int n = 0;
    for (int s = 1; s < scale && s < static_cast<int>(row.size()); ++s)
      if (std::isfinite(row[s])) sum += row[s], ++n;
    mean.push_back(n ? sum / n : std::nan(""));
  }
  decide(mean, cat("online, similarity of scales 1..", scale - 1));
}

void AmsPolicy::decide(const std::vector<double>& sim, const std::string& basis) {
  const int D = schedule_.depth;
  layer_similarity_ = sim;
  demanding_.clear();
  if (opt_.theta) {
    for (int l = 0; l < D; ++l)
      if (std::isfinite(sim[l]) && sim[l] < *opt_.theta) demanding_.push_back(l);
  } else {
    const int count = static_cast<int>(std::ceil(fraction_ * D - 1e-9));
    std::vector<int> order(static_cast<size_t>(D));
    std::iota(order.begin(), order.end(), 0);
    // Least similar first; layers never measured rank last; ties by layer index for determinism.
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      const double va = std::isfinite(sim[a]) ? sim[a] : INFINITY;
      const double vb = std::isfinite(sim[b]) ? sim[b] : INFINITY;
      return va < vb;
    });
    for (int i = 0; i < count && i < D; ++i)
      if (std::isfinite(sim[order[i]])) demanding_.push_back(order[i]);
    std::sort(demanding_.begin(), demanding_.end());
  }
  for (int l : demanding_) budgets_[l] = cmax_;
  decided_ = true;
  decision_basis_ = basis;
}

std::vector<int> AmsPolicy::retain(int layer, int scale, const std::vector<int>& stored) const {
  std::vector<int> kept = stored;
  if (scale < condensed_) {  // condensed scales are always stored and never evicted
    kept.push_back(scale);
    return kept;
  }
  const int64_t budget = budgets_.at(static_cast<size_t>(layer));
  int64_t condensed_tokens = 0;
  for (int s : stored)
    if (s < condensed_) condensed_tokens += schedule_.tokens[s];
  if (condensed_tokens + schedule_.tokens[scale] > budget) return kept;  // cannot fit: skipped
  kept.push_back(scale);
  while (tokens_of(kept) > budget) {
    auto oldest = std::find_if(kept.begin(), kept.end(), [&](int s) { return s >= condensed_; });
    kept.erase(oldest);  // never `scale` itself: it fits beside the condensed scales alone
  }
  return kept;
}

nlohmann::json AmsPolicy::describe() const {
  nlohmann::json j = {{"policy", name()},    {"condensed", condensed_}, {"cmin", cmin_},
                      {"cmax", cmax_},       {"decided", decided_},     {"decision_basis", decision_basis_},
                      {"budgets", budgets_}, {"demanding", demanding_}};
  if (!uniform_) {
    if (opt_.theta) j["theta"] = *opt_.theta;
    else j["demanding_fraction"] = fraction_;
    j["decision_scale"] = decision_scale_;
    nlohmann::json sims = nlohmann::json::array();
    for (double v : layer_similarity_) sims.push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json());
    j["layer_similarity"] = sims;
  }
  return j;
}

}  // namespace amskv::kv
