// Runs a scope with one OpenMP thread (and so single-threaded OpenBLAS, whose OpenMP build sizes its team
// from omp_get_max_threads() at each call). For many tiny operations, where a team only adds barrier waits:
// on a loaded machine those spin for milliseconds each (measured on two busy cores: a 64 x 64
// eigendecomposition 4 s instead of 7 ms; 681 KV plans 47 s instead of under 1 s).
#pragma once
#include <omp.h>

namespace amskv::engine {

class OmpSingleThread {
 public:
  OmpSingleThread() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~OmpSingleThread() { omp_set_num_threads(saved_); }
  OmpSingleThread(const OmpSingleThread&) = delete;
  OmpSingleThread& operator=(const OmpSingleThread&) = delete;

 private:
  int saved_;
};

}  // namespace amskv::engine
