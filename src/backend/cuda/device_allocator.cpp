#include "backend/cuda/device_allocator.h"

#include <algorithm>
#include <iterator>

#include "backend/cuda/cuda_check.h"

namespace amskv::backend::cuda {

namespace {
constexpr size_t kSmall = size_t{1} << 20;  // below: 512-byte granularity; above: 2 MiB
size_t round_up(size_t bytes) {
  const size_t g = bytes < kSmall ? 512 : (size_t{2} << 20);
  return (std::max<size_t>(bytes, 1) + g - 1) / g * g;
}
}  // namespace

DeviceAllocator::~DeviceAllocator() {
  for (auto& [size, p] : free_) cudaFree(p);  // errors at teardown are not actionable
  for (auto& [id, list] : pool_free_)
    for (auto& [size, p] : list) cudaFree(p);
}

void* DeviceAllocator::take(std::multimap<size_t, void*>& list, size_t& rounded) {
  // The same size, or a large block at most a quarter bigger.
  auto it = list.lower_bound(rounded);
  if (it == list.end() || !(it->first == rounded || (rounded >= kSmall && it->first <= rounded + rounded / 4)))
    return nullptr;
  rounded = it->first;
  void* p = it->second;
  list.erase(it);
  return p;
}

void* DeviceAllocator::allocate(size_t bytes, size_t& rounded) {
  rounded = round_up(bytes);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (active_pool_ != 0) {  // the recording's own released blocks first (still counted in use)
      size_t r = rounded;
      if (void* p = take(pool_free_[active_pool_], r)) {
        rounded = r;
        return p;
      }
    }
    size_t r = rounded;
    if (void* p = take(free_, r)) {
      rounded = r;
      cached_ -= rounded;
      in_use_ += rounded;
      peak_ = std::max(peak_, in_use_);
      if (active_pool_ != 0) pool_of_[p] = active_pool_;
      return p;
    }
  }
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, rounded);
  bool recording = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    recording = recording_;
  }
  if (e == cudaErrorMemoryAllocation && !recording) {
    (void)cudaGetLastError();  // clear the sticky-free error state and retry with the cache emptied
    trim();
    e = cudaMalloc(&p, rounded);
  }
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    size_t free_bytes = 0, total = 0;
    cudaMemGetInfo(&free_bytes, &total);
    fail("out of GPU memory on ", device_name_, ": cannot allocate ", rounded / (1 << 20), " MiB (", free_bytes / (1 << 20),
         " MiB free of ", total / (1 << 20), " MiB", recording ? ", while recording a step: the cache was not trimmed" : "",
         ")");
  }
  AMSKV_CUDA_CHECK(e);
  std::lock_guard<std::mutex> lock(mutex_);
  in_use_ += rounded;
  peak_ = std::max(peak_, in_use_);
  if (active_pool_ != 0) pool_of_[p] = active_pool_;
  return p;
}

void DeviceAllocator::release(void* p, size_t rounded) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = pool_of_.find(p); it != pool_of_.end()) {  // reserved for its kept step: not the cache's
    pool_free_[it->second].emplace(rounded, p);
    return;
  }
  if (active_pool_ != 0) {  // allocated before the recording, freed inside it: the graph still uses it
    pool_of_[p] = active_pool_;
    pool_free_[active_pool_].emplace(rounded, p);
    return;
  }
  free_.emplace(rounded, p);
  cached_ += rounded;
  in_use_ -= rounded;
}

void DeviceAllocator::trim() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (free_.empty()) return;
  cudaDeviceSynchronize();  // blocks may still be read by queued work
  for (auto& [size, p] : free_) cudaFree(p);
  free_.clear();
  cached_ = 0;
}

void DeviceAllocator::begin_pool(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  active_pool_ = id;
  pools_.insert(id);
}

void DeviceAllocator::end_pool() {
  std::lock_guard<std::mutex> lock(mutex_);
  active_pool_ = 0;
}

void DeviceAllocator::drop_pool(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (pools_.erase(id) == 0) return;
  if (active_pool_ == id) active_pool_ = 0;
  for (auto it = pool_of_.begin(); it != pool_of_.end();)
    it = it->second == id ? pool_of_.erase(it) : std::next(it);
  if (auto it = pool_free_.find(id); it != pool_free_.end()) {
    for (auto& [size, p] : it->second) {
      free_.emplace(size, p);
      cached_ += size;
      in_use_ -= size;
    }
    pool_free_.erase(it);
  }
}

size_t DeviceAllocator::in_use_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return in_use_;
}

size_t DeviceAllocator::peak_in_use_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return peak_;
}

void DeviceAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  peak_ = in_use_;
}

size_t DeviceAllocator::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_;
}

}  // namespace amskv::backend::cuda
