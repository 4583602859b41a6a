// Plans the memory of a generation before anything is allocated: the KV cache from the policy's plan, the
// transformer's activations, logits, latents and the decoder's scratch, for a batch size on a backend. The
// engine uses it to choose the default batch and to refuse a batch that cannot fit with a message that says
// what fits; `amskv plan` and `amskv bench --max-batch` print the same numbers.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/generator.h"
#include "kv/policy_factory.h"
#include "model/var_config.h"
#include "model/vqvae_config.h"

namespace amskv::engine {

// What a model pair needs to know for planning (no weights required).
struct PlanShapes {
  model::VarConfig var;
  int64_t decoder_bytes_per_image = 0;  // Vqvae::decoder_bytes_per_image at the latent side
  int64_t image_side = 0;
};

struct MemoryPlan {
  int64_t batch = 0;
  ExecutionPlan exec;
  int64_t kv_bytes = 0, conditioning_bytes = 0, workspace_bytes = 0, logits_bytes = 0, latent_bytes = 0,
          decoder_bytes = 0;
  int64_t decoder_images_per_pass = 1;
  int64_t total_bytes() const {
    return kv_bytes + conditioning_bytes + workspace_bytes + logits_bytes + latent_bytes + decoder_bytes;
  }
  nlohmann::json to_json() const;
  std::string summary() const;  // "7.2 GiB (KV 3.1, activations 2.9, logits 0.8, ...)"
};

// The plan for `batch` images with the given chunking (0 = whole batch at once). The KV cache is the plan of a
// policy from `policy` (a factory, so that a table or profile is read once, not once per candidate batch),
// its past scales stored as `kv` (Backend::kv_dtype) and the current scale's K/V in the compute dtype.
MemoryPlan plan_batch(const PlanShapes& shapes, const kv::PolicyFactory& policy, DType compute, DType kv, int64_t batch,
                      ExecutionPlan exec, int64_t decoder_images_per_pass);

// The cheapest chunking for `batch` images that fits `available` bytes (whole batch at once if possible,
// then the transformer's scratch and the head in halving chunks); batch 0 in the result when nothing fits.
MemoryPlan fit_batch(const PlanShapes& shapes, const kv::PolicyFactory& policy, DType compute, DType kv, int64_t batch,
                     int64_t available, int64_t decoder_images_per_pass);

// The largest batch (at most `limit`) that fits `available` bytes; 0 when not even one image fits.
int64_t largest_batch(const PlanShapes& shapes, const kv::PolicyFactory& policy, DType compute, DType kv, int64_t available,
                      int64_t decoder_images_per_pass, int64_t limit);

// Memory the planner may use on a backend: what is free now, less a margin for the runtime's own needs.
int64_t usable_memory(int64_t free_bytes);

std::string gib(int64_t bytes);  // "1.25 GiB"

}  // namespace amskv::engine
