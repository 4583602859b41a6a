#include "quality/frechet.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "quality/symmetric_eigen.h"

namespace amskv::quality {

namespace {

void check_stats(const GaussianStats& s, const char* which) {
  const size_t D = static_cast<size_t>(s.dim);
  AMSKV_CHECK(s.dim > 0 && s.mu.size() == D && s.sigma.size() == D * D, "Fréchet distance: ", which,
              " statistics have dim ", s.dim, " but ", s.mu.size(), " mean and ", s.sigma.size(), " covariance values");
}

// C = A·B for n x n row-major matrices.
std::vector<double> matmul(const std::vector<double>& a, const std::vector<double>& b, size_t n) {
  std::vector<double> c(n * n, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t k = 0; k < n; ++k) {
      const double aik = a[i * n + k];
      if (aik == 0.0) continue;
      for (size_t j = 0; j < n; ++j) c[i * n + j] += aik * b[k * n + j];
    }
  return c;
}

}  // namespace

GaussianStats feature_stats(const Tensor& features, const std::string& what) {
  AMSKV_CHECK(features.ndim() == 2, what, ": features have shape ", shape_str(features.shape()), ", expected [N, D]");
  AMSKV_CHECK(is_floating(features.dtype()), what, ": features have dtype ", dtype_name(features.dtype()),
              ", expected floating point");
  const int64_t N = features.dim(0), D = features.dim(1);
  AMSKV_CHECK(N >= 2 && D >= 1, what, ": a covariance needs at least 2 samples of at least 1 value, got ",
              shape_str(features.shape()));
  const std::vector<double> x = features.to_f64_vector();
  for (double v : x) AMSKV_CHECK(std::isfinite(v), what, ": features hold a non-finite value");
  GaussianStats s;
  s.dim = D;
  s.count = N;
  const size_t n = static_cast<size_t>(N), d = static_cast<size_t>(D);
  s.mu.assign(d, 0.0);
  for (size_t r = 0; r < n; ++r)
    for (size_t j = 0; j < d; ++j) s.mu[j] += x[r * d + j];
  for (double& m : s.mu) m /= static_cast<double>(N);
  // Second pass on centred values: no cancellation between E[x²] and E[x]².
  s.sigma.assign(d * d, 0.0);
  std::vector<double> c(d);
  for (size_t r = 0; r < n; ++r) {
    for (size_t j = 0; j < d; ++j) c[j] = x[r * d + j] - s.mu[j];
    for (size_t i = 0; i < d; ++i)
      for (size_t j = i; j < d; ++j) s.sigma[i * d + j] += c[i] * c[j];
  }
  for (size_t i = 0; i < d; ++i)
    for (size_t j = i; j < d; ++j) {
      s.sigma[i * d + j] /= static_cast<double>(N - 1);
      s.sigma[j * d + i] = s.sigma[i * d + j];
    }
  return s;
}

FrechetTerms frechet_terms(const GaussianStats& a, const GaussianStats& b) {
  check_stats(a, "first");
  check_stats(b, "second");
  AMSKV_CHECK(a.dim == b.dim, "Fréchet distance: feature sizes differ (", a.dim, " and ", b.dim, ")");
  const size_t d = static_cast<size_t>(a.dim);
  FrechetTerms t;
  for (size_t j = 0; j < d; ++j) t.mean_term += (a.mu[j] - b.mu[j]) * (a.mu[j] - b.mu[j]);
  const std::vector<double> root_a = sqrtm_psd(a.sigma, a.dim, "Fréchet distance: first covariance");
  std::vector<double> m = matmul(matmul(root_a, b.sigma, d), root_a, d);
  for (size_t i = 0; i < d; ++i)  // exact symmetry for the symmetric solver
    for (size_t j = i + 1; j < d; ++j) m[i * d + j] = m[j * d + i] = 0.5 * (m[i * d + j] + m[j * d + i]);
  const std::vector<double> lambda = symmetric_eigenvalues(m, a.dim, "Fréchet distance: sqrt(S1)·S2·sqrt(S1)");
  double trace_sqrt = 0, trace_a = 0, trace_b = 0;
  for (double l : lambda) trace_sqrt += std::sqrt(std::max(l, 0.0));
  for (size_t j = 0; j < d; ++j) trace_a += a.sigma[j * d + j], trace_b += b.sigma[j * d + j];
  t.trace_term = trace_a + trace_b - 2.0 * trace_sqrt;
  return t;
}

double frechet_distance(const GaussianStats& a, const GaussianStats& b) { return frechet_terms(a, b).distance(); }

}  // namespace amskv::quality
