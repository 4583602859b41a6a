#include "kv/policies/ams_policy.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>

#include "core/error.h"

namespace amskv::kv {

AmsBudgets default_ams_budgets(const std::vector<int64_t>& tokens) {
  // C_min holds the condensed scales plus the largest scale before the last (the one scale every local
  // window must reach at the final step); C_max adds room for the two largest stored scales together.
  // See docs/ams_defaults.md for the measurements behind this choice.
  const size_t K = tokens.size();
  const int64_t condensed = tokens.size() >= 2 ? tokens[0] + tokens[1] : tokens[0];
  const int64_t last_stored = K >= 2 ? tokens[K - 2] : 0;
  const int64_t second = K >= 3 ? tokens[K - 3] : 0;
  return {condensed + last_stored, condensed + last_stored + second};
}

void AmsOptions::merge_profile_file(const std::string& path) {
  std::ifstream in(path);
  AMSKV_CHECK(in, path, ": cannot open AMS profile");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
  AMSKV_CHECK(j.is_object(), path, ": an AMS profile must be a JSON object");
  auto number = [&](const char* key) -> const nlohmann::json* {
    if (!j.contains(key)) return nullptr;
    AMSKV_CHECK(j[key].is_number(), path, ": ", key, " must be a number");
    return &j[key];
  };
  const nlohmann::json* ams = j.contains("ams") && j["ams"].is_object() ? &j["ams"] : &j;
  auto knob = [&](const char* key) -> const nlohmann::json* {
    if (!ams->contains(key)) return nullptr;
    AMSKV_CHECK((*ams)[key].is_number(), path, ": ", key, " must be a number");
    return &(*ams)[key];
  };
  (void)number;
  if (auto* v = knob("condensed"); v && condensed == 2) condensed = v->get<int>();
  if (auto* v = knob("cmin"); v && cmin < 0) cmin = v->get<int64_t>();
  if (auto* v = knob("cmax"); v && cmax < 0) cmax = v->get<int64_t>();
  if (auto* v = knob("theta"); v && !theta) theta = v->get<double>();
  if (auto* v = knob("demanding_fraction")) demanding_fraction = v->get<double>();
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
  AMSKV_CHECK(opt_.condensed >= 0, "--ams-condensed must be >= 0");
  AMSKV_CHECK(!opt_.theta || std::isfinite(*opt_.theta), "--ams-theta must be a finite number");
  AMSKV_CHECK(opt_.demanding_fraction >= 0.0 && opt_.demanding_fraction <= 1.0,
              "--ams-demanding-fraction must be in [0, 1], got ", opt_.demanding_fraction);
}

void AmsPolicy::begin(const ScheduleInfo& schedule) {
  CachePolicy::begin(schedule);
  const int K = schedule.num_scales();
  AMSKV_CHECK(opt_.condensed <= K, "--ams-condensed ", opt_.condensed, " exceeds the ", K, " scales");
  const AmsBudgets def = default_ams_budgets(schedule.tokens);
  int64_t cmin = opt_.cmin >= 0 ? opt_.cmin : def.cmin;
  int64_t cmax = opt_.cmax >= 0 ? opt_.cmax : std::max(def.cmax, cmin);
  if (uniform_) cmax = cmin;
  int64_t condensed_tokens = 0;
  for (int s = 0; s < std::min(opt_.condensed, K - 1); ++s) condensed_tokens += schedule.tokens[s];
  AMSKV_CHECK(cmin >= condensed_tokens, name(), ": budget C_min = ", cmin, " tokens cannot hold the ",
              opt_.condensed, " condensed scales (", condensed_tokens, " tokens)");
  AMSKV_CHECK(cmax >= cmin, name(), ": C_max = ", cmax, " is below C_min = ", cmin);
  opt_.cmin = cmin;
  opt_.cmax = cmax;
  budgets_.assign(static_cast<size_t>(schedule.depth), cmin);
  demanding_.clear();
  layer_similarity_.clear();
  decided_ = uniform_ || cmax == cmin;
  decision_basis_ = decided_ ? "one budget for every layer" : "";

  // Under C_min every layer stores every scale until the cumulative tokens exceed C_min: that scale is
  // where a decision is first needed, the same for every layer.
  decision_scale_ = -1;
  int64_t cumulative = 0;
  for (int s = 0; s + 1 < K; ++s) {
    cumulative += schedule.tokens[s];
    if (cumulative > cmin) {
      decision_scale_ = s;
      break;
    }
  }
  if (!decided_ && !opt_.profile_similarity.empty()) {
    AMSKV_CHECK(static_cast<int>(opt_.profile_similarity.size()) == schedule.depth, opt_.profile_source,
                ": profile has ", opt_.profile_similarity.size(), " layers, the model has ", schedule.depth);
    std::vector<double> mean;
    for (const auto& row : opt_.profile_similarity) {
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
    const int count = static_cast<int>(std::ceil(opt_.demanding_fraction * D - 1e-9));
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
  for (int l : demanding_) budgets_[l] = opt_.cmax;
  decided_ = true;
  decision_basis_ = basis;
}

std::vector<int> AmsPolicy::retain(int layer, int scale, const std::vector<int>& stored) const {
  std::vector<int> kept = stored;
  if (scale < opt_.condensed) {  // condensed scales are always stored and never evicted
    kept.push_back(scale);
    return kept;
  }
  const int64_t budget = budgets_.at(static_cast<size_t>(layer));
  int64_t condensed_tokens = 0;
  for (int s : stored)
    if (s < opt_.condensed) condensed_tokens += schedule_.tokens[s];
  if (condensed_tokens + schedule_.tokens[scale] > budget) return kept;  // cannot fit: skipped
  kept.push_back(scale);
  while (tokens_of(kept) > budget) {
    auto oldest = std::find_if(kept.begin(), kept.end(), [&](int s) { return s >= opt_.condensed; });
    kept.erase(oldest);  // never `scale` itself: it fits beside the condensed scales alone
  }
  return kept;
}

nlohmann::json AmsPolicy::describe() const {
  nlohmann::json j = {{"policy", name()},     {"condensed", opt_.condensed}, {"cmin", opt_.cmin},
                      {"cmax", opt_.cmax},    {"decided", decided_},         {"decision_basis", decision_basis_},
                      {"budgets", budgets_},  {"demanding", demanding_}};
  if (!uniform_) {
    if (opt_.theta) j["theta"] = *opt_.theta;
    else j["demanding_fraction"] = opt_.demanding_fraction;
    j["decision_scale"] = decision_scale_;
    nlohmann::json sims = nlohmann::json::array();
    for (double v : layer_similarity_) sims.push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json());
    j["layer_similarity"] = sims;
  }
  return j;
}

}  // namespace amskv::kv
