#include "quality/feature_stats_file.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/parse.h"
#include "io/safetensors.h"

namespace amskv::quality {

void save_feature_stats(const std::string& path, const GaussianStats& stats,
                        std::map<std::string, std::string> metadata) {
  const size_t D = static_cast<size_t>(stats.dim);
  AMSKV_CHECK(stats.dim > 0 && stats.mu.size() == D && stats.sigma.size() == D * D, path,
              ": refusing to write malformed statistics (dim ", stats.dim, ")");
  metadata["count"] = std::to_string(stats.count);
  metadata["format"] = "amskv feature statistics: mu [D] mean, sigma [D, D] unbiased covariance (N - 1)";
  io::save_safetensors(path,
                       {{"mu", Tensor::from_vector<double>({stats.dim}, stats.mu)},
                        {"sigma", Tensor::from_vector<double>({stats.dim, stats.dim}, stats.sigma)}},
                       metadata);
}

FeatureStatsFile load_feature_stats(const std::string& path) {
  const io::TensorMap m = io::load_safetensors(path);
  for (const auto& [key, t] : m.all())
    AMSKV_CHECK(key == "mu" || key == "sigma", path, ": unexpected key ", key,
                " (feature statistics hold only mu and sigma)");
  const Tensor& mu = m.weight("mu", {-1});
  const int64_t D = mu.dim(0);
  AMSKV_CHECK(D > 0, path, ": key mu is empty");
  const Tensor& sigma = m.weight("sigma", {D, D});
  FeatureStatsFile f;
  f.metadata = m.metadata;
  f.stats.dim = D;
  f.stats.mu = mu.to_f64_vector();
  f.stats.sigma = sigma.to_f64_vector();
  for (double v : f.stats.mu) AMSKV_CHECK(std::isfinite(v), path, ": key mu holds a non-finite value");
  double scale = 0;
  for (double v : f.stats.sigma) {
    AMSKV_CHECK(std::isfinite(v), path, ": key sigma holds a non-finite value");
    scale = std::max(scale, std::abs(v));
  }
  const size_t d = static_cast<size_t>(D);
  for (size_t i = 0; i < d; ++i)
    for (size_t j = i + 1; j < d; ++j)
      AMSKV_CHECK(std::abs(f.stats.sigma[i * d + j] - f.stats.sigma[j * d + i]) <= 1e-9 * scale, path,
                  ": key sigma is not symmetric (element [", i, ", ", j, "] differs from [", j, ", ", i, "])");
  if (auto it = f.metadata.find("count"); it != f.metadata.end()) {
    const auto v = parse_int_list(it->second, path + ": metadata count");
    AMSKV_CHECK(v.size() == 1 && v[0] >= 0, path, ": metadata count '", it->second, "' is not a sample count");
    f.stats.count = v[0];
  }
  return f;
}

}  // namespace amskv::quality
