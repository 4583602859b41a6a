// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a counter-based
// generator. A draw is a pure function of (key, counter), so every image's randomness is addressed by
// (seed, image index, scale, position) and never depends on batch size, batch position or thread order.
#pragma once
#include <array>
#include <cstdint>

// The same generator runs in CUDA kernels (the GPU's token draw must equal the CPU's contract).
#include "core/host_device.h"

namespace amskv {

class Philox4x32 {
 public:
  using Block = std::array<uint32_t, 4>;

  AMSKV_HOST_DEVICE static Block generate(Block counter, std::array<uint32_t, 2> key) {
    for (int round = 0; round < 10; ++round) {
      counter = single_round(counter, key);
      key[0] += kWeyl0;
      key[1] += kWeyl1;
    }
    return counter;
  }

  // A uniform float in (0, 1) from 32 random bits with 24 bits of precision; never 0 and never 1, so
  // logarithms of it are always finite.
  AMSKV_HOST_DEVICE static double to_open_unit(uint32_t bits) { return ((bits >> 8) + 0.5) * (1.0 / 16777216.0); }

 private:
  static constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  static constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;

  AMSKV_HOST_DEVICE static Block single_round(const Block& c, const std::array<uint32_t, 2>& k) {
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * c[0];
    const uint64_t p1 = static_cast<uint64_t>(kMul1) * c[2];
    return {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
            static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
  }
};

// The streams the engine draws from. Each stream is a separate counter space.
enum class RandomStream : uint32_t { Token = 1, Gumbel = 2, Label = 3 };

// Uniform (0,1) for (seed, image, scale, position, stream, lane); lane selects one of several values at
// the same position (the Gumbel path needs one per vocabulary entry).
AMSKV_HOST_DEVICE inline double uniform_at(uint64_t seed, uint64_t image, uint32_t scale, uint32_t position, RandomStream stream,
                         uint32_t lane = 0) {
  const Philox4x32::Block counter = {position, lane, static_cast<uint32_t>(image),
                                     (static_cast<uint32_t>(image >> 32) & 0xFFFFu) << 16 |
                                         (scale & 0xFFu) << 8 | static_cast<uint32_t>(stream)};
  const auto out = Philox4x32::generate(counter, {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
  return Philox4x32::to_open_unit(out[0]);
}

}  // namespace amskv
