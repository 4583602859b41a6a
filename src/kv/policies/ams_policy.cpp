#include "kv/policies/ams_policy.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

#include "core/error.h"
#include "io/json_file.h"
#include "io/json_parse.h"

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

// A profile knob at `obj[key]`: absent -> nullopt; present -> a number in [lo, hi] (integral when `integer`).
// `where` names it in errors ("p.json: ams.cmin").
std::optional<double> profile_knob(const nlohmann::json& obj, const char* key, double lo, double hi, bool integer,
                                   const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  const auto& v = *it;
  AMSKV_CHECK(v.is_number(), where, " must be a number");
  const double x = v.get<double>();
  AMSKV_CHECK(std::isfinite(x) && x >= lo && x <= hi && (!integer || x == std::floor(x)), where, " = ", v.dump(),
              " is out of range (", integer ? "an integer " : "", "in [", lo, ", ", hi, "])");
  return x;
}

// A knob and its value for a message: "--ams-cmin 3" from a flag, "p.json: ams.cmin = 3" from a profile.
template <class T>
std::string knob(const std::string& origin, const char* flag, const T& value) {
  if (origin.empty()) return cat(flag, " ", value);
  if (origin.compare(0, 2, "--") == 0) return cat(origin, " ", value);
  return cat(origin, " = ", value);
}

// Where a budget came from, in brackets after its value; nothing for the schedule's default.
std::string budget_origin(const std::optional<int64_t>& set, const std::string& origin, const char* flag) {
  if (!set) return " (the default for this schedule)";
  return cat(" (", knob(origin, flag, *set), ")");
}

}  // namespace

void AmsOptions::merge_profile_file(const std::string& path) {
  merge_profile_json(io::read_json_file(path, "AMS profile"), path);
}

void AmsOptions::merge_profile_text(std::string_view text, const std::string& source) {
  merge_profile_json(io::parse_json(text, source, "AMS profile"), source);
}

void AmsOptions::merge_profile_json(const nlohmann::json& j, const std::string& path) {
  AMSKV_CHECK(j.is_object(), path, ": an AMS profile must be a JSON object");
  const auto nested = j.find("ams");
  const bool in_ams = nested != j.end() && nested->is_object();
  const nlohmann::json& ams = in_ams ? *nested : j;
  const std::string prefix = path + (in_ams ? ": ams." : ": ");
  // A knob given on the command line wins; one taken from the profile remembers where it came from.
  auto take = [&](const char* key, double lo, double hi, bool integer, auto& field, std::string& origin,
                  bool allowed) {
    const std::string where = prefix + key;
    auto v = profile_knob(ams, key, lo, hi, integer, where);
    if (!v || field || !allowed) return;
    field = static_cast<typename std::remove_reference_t<decltype(field)>::value_type>(*v);
    origin = where;
  };
  take("condensed", 0, 64, true, condensed, origin.condensed, true);
  take("cmin", 0, 1e9, true, cmin, origin.cmin, true);
  take("cmax", 0, 1e9, true, cmax, origin.cmax, true);
  // Threshold and fraction are two ways to choose; one given on the command line rules out the profile's.
  const bool mode_set = theta || demanding_fraction;
  take("theta", -1e9, 1e9, false, theta, origin.theta, !mode_set);
  take("demanding_fraction", 0, 1, false, demanding_fraction, origin.demanding_fraction, !mode_set);
  const auto sim = j.find("similarity");
  AMSKV_CHECK(sim != j.end() && sim->is_array(), path,
              ": an AMS profile needs \"similarity\": [[sim for s = 1..K-1] for each layer]");
  profile_similarity.clear();
  for (const auto& layer : *sim) {
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
  const auto& from = opt_.origin;
  AMSKV_CHECK(condensed_ >= 0, knob(from.condensed, "--ams-condensed", condensed_), " must be >= 0");
  AMSKV_CHECK(!opt_.theta || std::isfinite(*opt_.theta), knob(from.theta, "--ams-theta", opt_.theta.value_or(0)),
              " must be a finite number");
  AMSKV_CHECK(fraction_ >= 0.0 && fraction_ <= 1.0,
              knob(from.demanding_fraction, "--ams-demanding-fraction", fraction_), " must be in [0, 1]");
  AMSKV_CHECK(opt_.cmin.value_or(0) >= 0, knob(from.cmin, "--ams-cmin", opt_.cmin.value_or(0)), " must be >= 0 tokens");
  AMSKV_CHECK(opt_.cmax.value_or(0) >= 0, knob(from.cmax, "--ams-cmax", opt_.cmax.value_or(0)), " must be >= 0 tokens");
  // Checked again in begin() against the schedule's defaults; two given budgets can be checked now.
  AMSKV_CHECK(uniform_ || !opt_.cmin || !opt_.cmax || *opt_.cmax >= *opt_.cmin, name(), ": C_max = ", *opt_.cmax,
              budget_origin(opt_.cmax, from.cmax, "--ams-cmax"), " is below C_min = ", *opt_.cmin,
              budget_origin(opt_.cmin, from.cmin, "--ams-cmin"));
}

void AmsPolicy::begin(const ScheduleInfo& schedule) {
  CachePolicy::begin(schedule);
  const int K = schedule.num_scales();
  const auto& from = opt_.origin;
  AMSKV_CHECK(condensed_ <= K, knob(from.condensed, "--ams-condensed", condensed_), " exceeds the ", K, " scales");
  const AmsBudgets def = default_ams_budgets(schedule.tokens, condensed_);
  cmin_ = opt_.cmin.value_or(def.cmin);
  cmax_ = uniform_ ? cmin_ : opt_.cmax.value_or(std::max(def.cmax, cmin_));
  int64_t condensed_tokens = 0;
  for (int s = 0; s < std::min(condensed_, K - 1); ++s) condensed_tokens += schedule.tokens[s];
  const std::string cmin_from = budget_origin(opt_.cmin, from.cmin, "--ams-cmin");
  AMSKV_CHECK(cmin_ >= condensed_tokens, name(), ": budget C_min = ", cmin_, " tokens", cmin_from, " cannot hold the ",
              condensed_, " condensed scales (", condensed_tokens, " tokens",
              opt_.condensed ? cat("; ", knob(from.condensed, "--ams-condensed", condensed_)) : "", ")");
  AMSKV_CHECK(cmax_ >= cmin_, name(), ": C_max = ", cmax_, budget_origin(opt_.cmax, from.cmax, "--ams-cmax"),
              " is below C_min = ", cmin_, cmin_from);
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
  AMSKV_CHECK(decided_ || decision_scale_ >= 2, name(), ": C_min = ", cmin_, " tokens", cmin_from,
              " is exceeded at scale ", decision_scale_,
              ", before any inter-scale similarity is measured; raise --ams-cmin or give --ams-profile");
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
