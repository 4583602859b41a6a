#include "quality/symmetric_eigen.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "core/error.h"
#include "engine/omp_single_thread.h"

// LAPACK from OpenBLAS (32-bit integers, the LP64 build every Debian libopenblas0 variant ships). The two
// trailing lengths are gfortran's hidden CHARACTER lengths; passing them is correct for Fortran-compiled
// LAPACK and harmless for a C one.
extern "C" void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
                        double* work, const int* lwork, int* iwork, const int* liwork, int* info, size_t jobz_len,
                        size_t uplo_len);

namespace amskv::quality {

namespace {

// Runs dsyevd on a copy of `a`; on return `a` holds the eigenvectors (when jobz is 'V') and w the values.
void run_dsyevd(char jobz, std::vector<double>& a, int64_t n, std::vector<double>& w, const char* what) {
  AMSKV_CHECK(n >= 0 && n <= std::numeric_limits<int>::max() / 4, what, ": matrix side ", n, " out of range");
  AMSKV_CHECK(static_cast<int64_t>(a.size()) == n * n, what, ": ", a.size(), " values for a ", n, "x", n, " matrix");
  for (double v : a) AMSKV_CHECK(std::isfinite(v), what, ": holds a non-finite value");
  w.assign(static_cast<size_t>(n), 0.0);
  if (n == 0) return;
  // A symmetric matrix reads the same row- or column-major (LAPACK's lower triangle is our upper one); the
  // eigenvectors come back as columns of a column-major matrix, which symmetric_eigen transposes.
  const int N = static_cast<int>(n);
  const char uplo = 'L';
  const engine::OmpSingleThread single;  // 128 x 128 at most in practice: a thread team only waits
  int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0;
  dsyevd_(&jobz, &uplo, &N, a.data(), &N, w.data(), &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1);
  AMSKV_CHECK(info == 0, what, ": LAPACK dsyevd workspace query failed (info ", info, ")");
  lwork = std::max(1, static_cast<int>(work_query));
  liwork = std::max(1, iwork_query);
  std::vector<double> work(static_cast<size_t>(lwork));
  std::vector<int> iwork(static_cast<size_t>(liwork));
  dsyevd_(&jobz, &uplo, &N, a.data(), &N, w.data(), work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1);
  AMSKV_CHECK(info == 0, what, ": LAPACK dsyevd did not converge (info ", info, ") on a ", n, "x", n, " matrix");
}

}  // namespace

SymmetricEigen symmetric_eigen(const std::vector<double>& a, int64_t n, const char* what) {
  SymmetricEigen e;
  std::vector<double> m = a;
  run_dsyevd('V', m, n, e.values, what);
  // m is column-major: eigenvector j is m[j·n .. j·n + n). Store it as column j of a row-major matrix.
  e.vectors.assign(m.size(), 0.0);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < n; ++i) e.vectors[static_cast<size_t>(i * n + j)] = m[static_cast<size_t>(j * n + i)];
  return e;
}

std::vector<double> symmetric_eigenvalues(const std::vector<double>& a, int64_t n, const char* what) {
  std::vector<double> m = a, w;
  run_dsyevd('N', m, n, w, what);
  return w;
}

std::vector<double> sqrtm_psd(const std::vector<double>& a, int64_t n, const char* what) {
  const SymmetricEigen e = symmetric_eigen(a, n, what);
  std::vector<double> r(static_cast<size_t>(n * n), 0.0);
  const size_t N = static_cast<size_t>(n);
  for (size_t k = 0; k < N; ++k) {
    const double s = std::sqrt(std::max(e.values[k], 0.0));
    if (s == 0.0) continue;
    for (size_t i = 0; i < N; ++i) {
      const double vi = e.vectors[i * N + k] * s;
      for (size_t j = 0; j < N; ++j) r[i * N + j] += vi * e.vectors[j * N + k];
    }
  }
  return r;
}

}  // namespace amskv::quality
