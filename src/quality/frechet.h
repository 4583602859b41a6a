// The Fréchet distance between Gaussians fitted to two feature sets (FID's formula, here over the small
// Fashion-MNIST classifier's features):
//   FD = |mu1 − mu2|² + tr(S1) + tr(S2) − 2·tr(sqrtm(S1·S2)),
// with tr(sqrtm(S1·S2)) computed as Σ sqrt(λ_i) over the eigenvalues of the symmetric PSD matrix
// sqrt(S1)·S2·sqrt(S1), which is similar to S1·S2: no non-symmetric square root, no complex parts to drop,
// and it stays well defined when a covariance is singular (fewer samples than dimensions). Double precision;
// a singular covariance costs accuracy: each null direction contributes ~sqrt(ε)·‖S‖ of rounding (1e-7 of the
// trace), as in scipy's sqrtm-based FID.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace amskv::quality {

struct GaussianStats {
  int64_t dim = 0;
  int64_t count = 0;          // samples behind the estimate (0: unknown)
  std::vector<double> mu;     // [dim]
  std::vector<double> sigma;  // [dim][dim], symmetric
};

// Mean and unbiased covariance (divided by count − 1, as torch.cov and numpy.cov) of `features` [N, D]
// (any floating dtype), in double with a two-pass sum. Throws amskv::Error naming `what` when N < 2 or a
// value is not finite.
GaussianStats feature_stats(const Tensor& features, const std::string& what = "features");

struct FrechetTerms {
  double mean_term = 0;   // |mu1 − mu2|²
  double trace_term = 0;  // tr(S1) + tr(S2) − 2·tr(sqrtm(S1·S2))
  double distance() const { return mean_term + trace_term; }
};

// Throws amskv::Error when the dimensions differ or a statistic is malformed.
FrechetTerms frechet_terms(const GaussianStats& a, const GaussianStats& b);
double frechet_distance(const GaussianStats& a, const GaussianStats& b);

}  // namespace amskv::quality
