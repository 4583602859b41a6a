// Eigendecomposition and square root of real symmetric matrices in double precision, through LAPACK's
// dsyevd (bundled in the OpenBLAS the CPU backend already links). The Fréchet distance needs both: a
// covariance's square root and the eigenvalues of sqrt(S1)·S2·sqrt(S1).
#pragma once
#include <cstdint>
#include <vector>

namespace amskv::quality {

// Row-major n x n; symmetric matrices read the same either way.
struct SymmetricEigen {
  std::vector<double> values;   // ascending
  std::vector<double> vectors;  // [n][n], column j (vectors[i·n + j] over i) is the unit eigenvector of values[j]
};

// Eigenvalues and eigenvectors of a symmetric n x n matrix (only one triangle is read: callers that
// assembled it numerically should symmetrise it first). Throws amskv::Error naming `what` when n < 0, the
// size does not match, a value is not finite, or LAPACK does not converge.
SymmetricEigen symmetric_eigen(const std::vector<double>& a, int64_t n, const char* what = "matrix");

// Eigenvalues only (ascending); cheaper than symmetric_eigen.
std::vector<double> symmetric_eigenvalues(const std::vector<double>& a, int64_t n, const char* what = "matrix");

// The symmetric positive semidefinite square root V·diag(sqrt(max(λ, 0)))·Vᵀ of a symmetric matrix. Slightly
// negative eigenvalues (rounding in a covariance of low rank) are clamped to zero.
std::vector<double> sqrtm_psd(const std::vector<double>& a, int64_t n, const char* what = "matrix");

}  // namespace amskv::quality
