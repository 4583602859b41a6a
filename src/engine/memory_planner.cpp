#include "engine/memory_planner.h"

#include <algorithm>
#include <cstdio>

#include "kv/kv_store.h"
#include "kv/memory_plan.h"
#include "kv/memory_report.h"
#include "model/var_model.h"

namespace amskv::engine {

std::string gib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

nlohmann::json MemoryPlan::to_json() const {
  return {{"batch", batch},
          {"chunk_rows", exec.chunk_rows},
          {"head_images", exec.head_images},
          {"decoder_images_per_pass", decoder_images_per_pass},
          {"kv_bytes", kv_bytes},
          {"conditioning_bytes", conditioning_bytes},
          {"workspace_bytes", workspace_bytes},
          {"logits_bytes", logits_bytes},
          {"latent_bytes", latent_bytes},
          {"decoder_bytes", decoder_bytes},
          {"total_bytes", total_bytes()}};
}

std::string MemoryPlan::summary() const {
  return cat(gib(total_bytes()), " (KV cache ", gib(kv_bytes), ", activations ", gib(workspace_bytes + conditioning_bytes),
             ", logits ", gib(logits_bytes), ", latents ", gib(latent_bytes), ", decoder ", gib(decoder_bytes), ")");
}

MemoryPlan plan_batch(const PlanShapes& shapes, const kv::PolicyFactory& policy_factory, DType compute, DType kv_dtype,
                      int64_t batch, ExecutionPlan exec, int64_t decoder_images_per_pass) {
  const model::VarConfig& c = shapes.var;
  const int64_t B = batch, R = 2 * B, C = c.width, D = c.depth, V = c.vocab, Cv = c.cvae;
  const int64_t HW = c.schedule.last_side(), t = static_cast<int64_t>(dtype_size(compute));
  int64_t n_max = 0;
  for (int k = 0; k < c.schedule.num_scales(); ++k) n_max = std::max(n_max, c.schedule.tokens(k));
  MemoryPlan p;
  p.batch = B;
  p.exec = exec;
  const int64_t head = exec.head_images > 0 ? std::min(exec.head_images, B) : B;
  const int64_t chunk = std::max(exec.chunk_rows > 0 ? std::min(exec.chunk_rows, R) : R, head);

  auto policy = policy_factory.make();
  const kv::ScheduleInfo schedule = model::kv_schedule(c);
  const kv::KvStats kv = kv::plan_footprint(*policy, schedule, c.schedule.patch_nums);
  // The slabs at the store's rate, the transient buffer of the largest scale at the compute dtype's.
  const int64_t stored = kv::KvStore::token_row_bytes(kv_dtype, c.heads, c.head_dim);
  const int64_t transient = kv::KvStore::token_row_bytes(compute, c.heads, c.head_dim);
  p.kv_bytes = kv::kv_bytes(kv.footprint.allocated_tokens, kv.footprint.allocated_transient_tokens, R * stored,
                            R * transient);
  p.conditioning_bytes = R * (D * 6 * C + 2 * C + C) * 4 + R * C * t + R * 8;
  p.workspace_bytes = model::Workspace::bytes(c, compute, R, chunk);
  p.logits_bytes = 3 * head * n_max * V * 4 + B * c.schedule.total_tokens * 8 + B * n_max * Cv * 4;
  p.latent_bytes = 5 * B * Cv * HW * HW * 4;
  p.decoder_images_per_pass = std::clamp<int64_t>(decoder_images_per_pass, 1, std::max<int64_t>(B, 1));
  p.decoder_bytes = p.decoder_images_per_pass * shapes.decoder_bytes_per_image + B * 3 * shapes.image_side *
                                                                                     shapes.image_side * 4;
  return p;
}

MemoryPlan fit_batch(const PlanShapes& shapes, const kv::PolicyFactory& policy, DType compute, DType kv, int64_t batch,
                     int64_t available, int64_t decoder_images_per_pass) {
  const int64_t R = 2 * batch;
  // Whole batch first; then halve the transformer's chunk and the head's images until the scratch fits.
  for (int64_t parts = 1;; parts *= 2) {
    ExecutionPlan exec;
    if (parts > 1) {
      exec.chunk_rows = std::max<int64_t>(1, (R + parts - 1) / parts);
      exec.head_images = std::max<int64_t>(1, (batch + parts - 1) / parts);
    }
    MemoryPlan p = plan_batch(shapes, policy, compute, kv, batch, exec, decoder_images_per_pass);
    if (p.total_bytes() <= available) return p;
    if (parts >= R) {
      p.batch = 0;
      return p;
    }
  }
}

int64_t largest_batch(const PlanShapes& shapes, const kv::PolicyFactory& policy, DType compute, DType kv, int64_t available,
                      int64_t decoder_images_per_pass, int64_t limit) {
  int64_t lo = 0, hi = std::max<int64_t>(limit, 0);
  while (lo < hi) {  // lo fits (or is 0); find the largest that fits
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (fit_batch(shapes, policy, compute, kv, mid, available, decoder_images_per_pass).batch > 0)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

int64_t usable_memory(int64_t free_bytes) {
  const int64_t margin = std::max<int64_t>(int64_t{256} << 20, free_bytes / 20);
  return std::max<int64_t>(0, free_bytes - margin);
}

}  // namespace amskv::engine
