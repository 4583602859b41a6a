// Seeded random checkpoints in the official key layout (spec B.1/B.2), for tests, benchmarks and the
// default run before the project ships trained weights. Their images are noise.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "io/tensor_map.h"
#include "model/var_config.h"
#include "model/vqvae_config.h"

namespace amskv::model {

struct RandomVarSpec {
  int64_t depth = 16;
  int64_t width = -1;   // -1: 64 * depth (the official rule)
  int64_t heads = -1;   // -1: depth
  int64_t vocab = 4096;
  int64_t cvae = 32;
  int64_t num_classes = 1000;
  bool shared_aln = false;
  std::vector<int64_t> patch_nums = {1, 2, 3, 4, 5, 6, 8, 10, 13, 16};
  uint64_t seed = 0;
};

struct RandomVqvaeSpec {
  int64_t vocab = 4096;
  int64_t cvae = 32;
  int64_t ch = 160;
  std::vector<int64_t> ch_mult = {1, 1, 2, 2, 4};
  int64_t num_res_blocks = 2;
  int64_t num_phi = 4;
  uint64_t seed = 0;
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

NamedTensors random_var_weights(const RandomVarSpec& spec);
NamedTensors random_vqvae_weights(const RandomVqvaeSpec& spec);
// The same tensors as an in-memory TensorMap (for benchmarks and tests that skip the file).
io::TensorMap to_tensor_map(NamedTensors tensors, const std::string& source);

// "d16", "d20", "d24", "d30" (256px), "d36" (512px, shared AdaLN), or "tiny" (depth 2, width 128, for tests).
RandomVarSpec official_var_spec(const std::string& name);

// The configuration that infer_var_config would find in random_var_weights(spec), without making the weights
// (amskv plan --device plans d36 without 9 GB of random numbers). Tested against the inferred one.
VarConfig var_config_of(const RandomVarSpec& spec);
// The same for the VQVAE (its decoder's weights are small enough to make: this infers them).
VqvaeConfig vqvae_config_of(const RandomVqvaeSpec& spec);

}  // namespace amskv::model
