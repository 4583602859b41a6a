// Small helpers shared by the io tests: a scratch folder and raw file access.
#pragma once
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/tensor.h"

namespace amskv::io_test {

// A fresh folder per test, removed afterwards.
class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("amskv_io_" + std::to_string(::getpid()) + "_" + (info ? info->name() : "x"));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~ScratchDir() { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    return out;
  }

 private:
  std::filesystem::path dir_;
};

// Raw writable access to an owned tensor of a type without a C++ element type (F16, BF16, I16, I8, Bool).
inline uint16_t* raw16(Tensor& t) { return static_cast<uint16_t*>(const_cast<void*>(t.raw())); }
inline uint8_t* raw8(Tensor& t) { return static_cast<uint8_t*>(const_cast<void*>(t.raw())); }

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Runs `fn`, expecting an amskv::Error whose message contains every one of `parts`.
template <class Fn>
void expect_error(Fn&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected an amskv::Error mentioning " << (parts.empty() ? "" : parts[0]);
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

// Runs `fn`, which should refuse the FIFO at `fifo` (with an amskv::Error mentioning `parts`) without
// waiting for a writer. If it blocks in open() instead, a watchdog opens the writing end after two seconds
// to release it, so the test fails instead of hanging.
template <class Fn>
void expect_refused_without_blocking(const std::string& fifo, Fn&& fn, const std::vector<std::string>& parts) {
  std::atomic<bool> done{false}, released{false};
  std::thread watchdog([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (std::chrono::steady_clock::now() < deadline) continue;
      const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);  // succeeds once a reader waits
      if (fd >= 0) {
        released = true;
        ::close(fd);
      }
    }
  });
  try {
    expect_error(fn, parts);
  } catch (...) {  // not an amskv::Error: stop the watchdog, then let gtest report it
    done = true;
    watchdog.join();
    throw;
  }
  done = true;
  watchdog.join();
  EXPECT_FALSE(released) << fifo << ": the reader blocked in open() until the watchdog released it";
}

}  // namespace amskv::io_test
