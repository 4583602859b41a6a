// Running out of memory on purpose: a death-test child limits its own address space, runs a loader, and
// reports through its exit code whether the loader turned std::bad_alloc into an amskv::Error.
#pragma once
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <new>

#include "core/error.h"

// AddressSanitizer reserves terabytes of address space up front, so these tests cannot run under it.
#if defined(__SANITIZE_ADDRESS__)
#define AMSKV_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AMSKV_TEST_ASAN 1
#endif
#endif

namespace amskv::io_test {

// Leaves the process `headroom` bytes more address space than it uses, runs `fn`, and exits: 0 with the
// message on stderr if `fn` threw an amskv::Error, 2 if it returned, 3 on a bare std::bad_alloc.
[[noreturn]] inline void run_with_little_memory(const std::function<void()>& fn, rlim_t headroom = rlim_t{16} << 20) {
  long pages = 0;
  std::ifstream("/proc/self/statm") >> pages;
  const rlim_t used = static_cast<rlim_t>(pages) * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE));
  const rlimit limit{used + headroom, used + headroom};
  ::setrlimit(RLIMIT_AS, &limit);
  try {
    fn();
    std::fprintf(stderr, "no error\n");
    std::_Exit(2);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::_Exit(0);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "std::bad_alloc\n");
    std::_Exit(3);
  }
}

}  // namespace amskv::io_test
