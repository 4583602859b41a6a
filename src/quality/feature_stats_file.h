// The reference statistics of a feature space on disk: safetensors with F64 `mu` [D] and `sigma` [D, D]
// and free-form string metadata saying how they were computed (classifier, data, split, count, command).
// weights/fashion-mnist/fmnist_test_features.safetensors is one (the 10,000 Fashion-MNIST test images).
#pragma once
#include <map>
#include <string>

#include "quality/frechet.h"

namespace amskv::quality {

struct FeatureStatsFile {
  GaussianStats stats;
  std::map<std::string, std::string> metadata;
};

// Writes atomically; metadata "count" is set from stats.count.
void save_feature_stats(const std::string& path, const GaussianStats& stats,
                        std::map<std::string, std::string> metadata);

// Reads and checks (errors name the file and the key): `mu` [D] and `sigma` [D, D] floating point, finite,
// sigma symmetric, no other tensors; count from metadata "count" when present.
FeatureStatsFile load_feature_stats(const std::string& path);

}  // namespace amskv::quality
