// Little-endian field access and overflow-checked size arithmetic for the binary readers. Every offset and
// size read from a file goes through these before it is used to form a pointer.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace amskv::io {

template <class T>
inline T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // memcpy: the field may be unaligned. The engine only targets little-endian.
  return v;
}

template <class T>
inline void store_le(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

// True and `out` set when a + b does not overflow.
inline bool add_ok(uint64_t a, uint64_t b, uint64_t& out) { return !__builtin_add_overflow(a, b, &out); }
inline bool mul_ok(uint64_t a, uint64_t b, uint64_t& out) { return !__builtin_mul_overflow(a, b, &out); }

// True when [offset, offset + length) lies inside a buffer of `size` bytes.
inline bool range_ok(uint64_t offset, uint64_t length, uint64_t size) {
  return offset <= size && length <= size - offset;
}

}  // namespace amskv::io
