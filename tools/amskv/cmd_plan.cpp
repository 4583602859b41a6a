// amskv plan: the KV memory a policy needs for a model shape and batch, without running the model, and
// the largest batch whose KV cache fits a memory budget. With --device, the whole job on that device with the
// engine's own planner (what generate and bench --max-batch use): weights, activations, logits, latents,
// decoder and KV against the device's free memory.
#include <cstdio>
#include <iostream>
#include <memory>

#include "commands.h"
#include "backend/backend_factory.h"
#include "engine/memory_planner.h"
#include "io/tensor_file.h"
#include "kv/kv_store.h"
#include "kv/memory_plan.h"
#include "kv/memory_report.h"
#include "model/random_model.h"
#include "model/var_config.h"
#include "model/vqvae.h"
#include "report/markdown_table.h"
#include "run_options.h"

namespace amskv::cli {

namespace {

// The job's memory on a device: the weights (estimated as parameters x the compute dtype's size; the engine
// keeps matrices in it) leave the rest of the free memory to the planner, as after loading in a real run.
void plan_on_device(const PlanArgs& a, const kv::PolicyFactory& factory, const model::VarConfig& var) {
  backend::BackendOptions bo;
  bo.device = a.device;
  bo.gpu = a.gpu;
  // The CPU computes in f32 only; on CUDA --dtype is the compute (and K/V) type, and int8 stores K/V in 8 bits
  // beside a bf16 computation.
  bo.dtype = a.device == "cpu" || a.dtype == "fp32" ? "f32" : a.dtype == "fp16" ? "f16" : "bf16";
  bo.kv_dtype = a.dtype == "int8" ? "int8" : "auto";
  const auto be = backend::make_backend(bo);
  const DType compute = be->compute_dtype(), kv = be->kv_dtype();
  model::VqvaeConfig vae;
  if (!a.vae_path.empty()) {
    vae = model::infer_vqvae_config(io::load_tensor_file(a.vae_path));
  } else {
    model::RandomVqvaeSpec vs;
    vs.vocab = var.vocab, vs.cvae = var.cvae, vs.ch = a.shape == "tiny" && a.var_path.empty() ? 32 : 160;
    vae = model::vqvae_config_of(vs);
  }
  AMSKV_CHECK(vae.vocab == var.vocab && vae.cvae == var.cvae, "plan: the VQVAE (vocabulary ", vae.vocab, ", ",
              vae.cvae, " latent channels) does not fit the transformer (", var.vocab, ", ", var.cvae, ")");
  engine::PlanShapes shapes;
  shapes.var = var;
  const int64_t hw = var.schedule.last_side();
  shapes.decoder_bytes_per_image = model::decoder_bytes_per_image(vae, hw, *be);
  shapes.image_side = hw * vae.upsample_factor();
  const int64_t weights = (var.param_count + vae.param_count) * static_cast<int64_t>(dtype_size(compute));
  const int64_t free_bytes = be->memory().free_bytes;
  const int64_t available = engine::usable_memory(std::max<int64_t>(free_bytes - weights, 0));
  const int64_t per_pass = be->decoder_images_per_pass(shapes.decoder_bytes_per_image);
  kv::PolicyOptions full_options;
  full_options.name = "full";
  const kv::PolicyFactory full(full_options);
  std::cout << "\non " << be->name() << ": " << engine::gib(free_bytes) << " free, weights about "
            << engine::gib(weights) << ", " << engine::gib(available) << " left for the job after a safety margin\n";
  const engine::MemoryPlan plan = engine::fit_batch(shapes, factory, compute, kv, a.batch, available, per_pass);
  if (plan.batch > 0) {
    std::cout << "batch " << a.batch << " fits: " << plan.summary() << "\n";
  } else {
    std::cout << "batch " << a.batch << " does not fit: it needs "
              << engine::plan_batch(shapes, factory, compute, kv, a.batch, {}, per_pass).summary() << "\n";
  }
  const int64_t limit = int64_t{1} << 24;
  std::cout << "largest batch that fits: " << engine::largest_batch(shapes, factory, compute, kv, available, per_pass, limit)
            << " with " << factory.make()->name() << ", "
            << engine::largest_batch(shapes, full, compute, kv, available, per_pass, limit) << " with full\n";
}

}  // namespace

void run_plan(const PlanArgs& a) {
  const kv::PolicyFactory factory(a.policy);  // a bad table or profile before any checkpoint is read
  const model::VarConfig cfg = a.var_path.empty() ? model::var_config_of(model::official_var_spec(a.shape))
                                                   : model::infer_var_config(io::load_tensor_file(a.var_path));
  const int64_t depth = cfg.depth, width = cfg.width;
  const std::vector<int64_t>& sides = cfg.schedule.patch_nums;
  const DType stored = a.dtype == "fp32" ? DType::F32 : a.dtype == "int8" ? DType::I8 : DType::BF16;
  const DType compute = stored == DType::I8 ? DType::BF16 : stored;  // an 8-bit store beside a bf16 computation
  const kv::ScheduleInfo info = kv::ScheduleInfo::from_sides(sides, depth);
  factory.check_depth(static_cast<int>(depth));
  auto policy = factory.make();
  kv::KvStats st = kv::plan_footprint(*policy, info, sides);
  const int64_t rows = 2 * a.batch;
  st.bytes_per_token = rows * kv::KvStore::token_row_bytes(stored, cfg.heads, cfg.head_dim);
  st.transient_bytes_per_token = rows * kv::KvStore::token_row_bytes(compute, cfg.heads, cfg.head_dim);
  const auto mem = kv::make_memory_report(st, info, rows);
  auto gib = [](int64_t b) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(b) / (1024.0 * 1024.0 * 1024.0));
    return std::string(buf);
  };
  auto row = [&](const std::string& name, const kv::MemoryNumbers& m) {
    return std::vector<std::string>{name, std::to_string(m.stored_tokens), std::to_string(m.resident_tokens),
                                    std::to_string(m.allocated_tokens), gib(m.allocated_bytes)};
  };
  std::cout << "depth " << depth << ", width " << width << ", " << a.batch << " image(s) (" << rows << " CFG rows), "
            << a.dtype << " K/V\n"
            << report::markdown_table({"KV cache", "stored tokens", "resident tokens", "allocated tokens",
                                       "allocated GiB"},
                                      std::vector<std::vector<std::string>>{row(policy->name(), mem.policy), row("engine full", mem.engine_full),
                                       row("reference (vanilla VAR)", mem.reference)});
  char buf[256];
  std::snprintf(buf, sizeof buf, "reduction vs reference: stored %.2f%%, resident %.2f%%, allocated %.2f%%\n",
                100 * mem.reduction(&kv::MemoryNumbers::stored_bytes),
                100 * mem.reduction(&kv::MemoryNumbers::resident_bytes),
                100 * mem.reduction(&kv::MemoryNumbers::allocated_bytes));
  std::cout << buf;
  if (stored == DType::I8) {
    const double ratio = static_cast<double>(kv::KvStore::token_row_bytes(DType::I8, cfg.heads, cfg.head_dim)) /
                         static_cast<double>(kv::KvStore::token_row_bytes(DType::BF16, cfg.heads, cfg.head_dim));
    std::snprintf(buf, sizeof buf,
                  "int8 K/V: stored tokens at 8 bits a value plus a float32 scale per token and head (%.3f of "
                  "bf16), the current scale and the reference at bf16; reductions in bytes\n",
                  ratio);
    std::cout << buf;
  }
  if (a.budget_gib > 0) {
    const double per_image = static_cast<double>(mem.policy.allocated_bytes) / static_cast<double>(a.batch);
    // The reference cache at its own 16-bit width, whatever this plan stores.
    const double ref_per_image = static_cast<double>(mem.reference.allocated_bytes) / static_cast<double>(a.batch);
    const double budget = a.budget_gib * 1024.0 * 1024.0 * 1024.0;
    std::cout << "largest batch whose KV cache fits " << a.budget_gib << " GiB: " << static_cast<int64_t>(budget / per_image)
              << " with " << policy->name() << ", " << static_cast<int64_t>(budget / ref_per_image)
              << " with the reference cache\n";
  }
  if (!a.device.empty()) plan_on_device(a, factory, cfg);
}

}  // namespace amskv::cli
