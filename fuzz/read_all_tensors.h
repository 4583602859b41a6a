// Reads every byte of every tensor a parser returned, so the fuzzers catch views that point outside the input.
#pragma once
#include <cstdint>

#include "io/tensor_map.h"

inline void read_all_tensors(const amskv::io::TensorMap& m) {
  volatile uint8_t sink = 0;
  for (const auto& [key, t] : m.all()) {
    const auto* p = static_cast<const uint8_t*>(t.raw());
    for (size_t i = 0; i < t.nbytes(); ++i) sink = sink ^ p[i];
  }
}
