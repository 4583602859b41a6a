// A caching allocator for device memory: blocks freed by a DeviceBuffer go back to a free list and are
// reused by later allocations of (nearly) the same size, so per-scale scratch costs no cudaMalloc/cudaFree
// (each of which synchronises the device). All work runs on one stream, so a block reused by later work is
// ordered after the work that used it before.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

namespace amskv::backend::cuda {

class DeviceAllocator {
 public:
  explicit DeviceAllocator(std::string device_name) : device_name_(std::move(device_name)) {}
  ~DeviceAllocator();
  DeviceAllocator(const DeviceAllocator&) = delete;
  DeviceAllocator& operator=(const DeviceAllocator&) = delete;

  // At least `bytes` bytes (rounded up; the rounded size is returned through `rounded`). Throws amskv::Error
  // naming the request and the device's free memory when even an emptied cache cannot satisfy it.
  void* allocate(size_t bytes, size_t& rounded);
  void release(void* p, size_t rounded);
  // Returns every cached block to the device.
  void trim();
  // While a step is recorded, the device cannot be waited for: an allocation that finds no room then fails
  // (naming the recording) instead of trimming the cache, whose blocks queued work may still use.
  void set_recording(bool on) {
    std::lock_guard<std::mutex> lock(mutex_);
    recording_ = on;
  }
  // Kept steps (CUDA graphs launched again without being recorded again) write their scratch blocks
  // whenever they run, so those blocks must not go to anyone else while the step is kept. Between
  // begin_pool(id) and end_pool() every block handed out, and every block released, belongs to pool `id`:
  // released, it returns to the pool (later allocations of the same recording reuse it; the graph orders
  // those uses) rather than to the cache. drop_pool(id) gives the pool's free blocks back to the cache and
  // lets its live ones return there.
  void begin_pool(uint64_t id);
  void end_pool();
  void drop_pool(uint64_t id);
  size_t cached_bytes() const;
  // Bytes handed out and not yet released, and the most of that since reset_peak().
  size_t in_use_bytes() const;
  size_t peak_in_use_bytes() const;
  void reset_peak();

 private:
  std::string device_name_;
  mutable std::mutex mutex_;
  // A cached block of about `rounded` bytes from `list` (its size through `rounded`), or null.
  static void* take(std::multimap<size_t, void*>& list, size_t& rounded);

  std::multimap<size_t, void*> free_;
  size_t cached_ = 0;
  uint64_t active_pool_ = 0;                              // 0: none
  std::set<uint64_t> pools_;                              // live pools
  std::unordered_map<void*, uint64_t> pool_of_;           // blocks handed out while a pool was active
  std::map<uint64_t, std::multimap<size_t, void*>> pool_free_;  // released blocks, still reserved
  size_t in_use_ = 0, peak_ = 0;
  bool recording_ = false;
};

}  // namespace amskv::backend::cuda
