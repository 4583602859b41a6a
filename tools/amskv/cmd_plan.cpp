// amskv plan: the KV memory a policy needs for a model shape and batch, without running the model, and
// the largest batch whose KV cache fits a memory budget.
#include <cstdio>
#include <iostream>
#include <memory>

#include "commands.h"
#include "io/tensor_file.h"
#include "kv/memory_plan.h"
#include "kv/memory_report.h"
#include "model/random_model.h"
#include "model/var_config.h"
#include "report/markdown_table.h"
#include "run_options.h"

namespace amskv::cli {

void run_plan(const PlanArgs& a) {
  const kv::PolicyFactory factory(a.policy);  // a bad table or profile before any checkpoint is read
  int64_t depth = 0, width = 0;
  std::vector<int64_t> sides;
  if (!a.var_path.empty()) {
    const auto cfg = model::infer_var_config(io::load_tensor_file(a.var_path));
    depth = cfg.depth, width = cfg.width, sides = cfg.schedule.patch_nums;
  } else {
    const auto spec = model::official_var_spec(a.shape);
    depth = spec.depth, width = spec.width > 0 ? spec.width : 64 * spec.depth, sides = spec.patch_nums;
  }
  const int64_t elem = a.dtype == "fp32" ? 4 : 2;
  const kv::ScheduleInfo info = kv::ScheduleInfo::from_sides(sides, depth);
  factory.check_depth(static_cast<int>(depth));
  auto policy = factory.make();
  kv::KvStats st = kv::plan_footprint(*policy, info, sides);
  const int64_t rows = 2 * a.batch;
  st.bytes_per_token = rows * 2 * width * elem;
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
  char buf[160];
  std::snprintf(buf, sizeof buf, "reduction vs reference: stored %.2f%%, resident %.2f%%, allocated %.2f%%\n",
                100 * mem.reduction(&kv::MemoryNumbers::stored_bytes),
                100 * mem.reduction(&kv::MemoryNumbers::resident_bytes),
                100 * mem.reduction(&kv::MemoryNumbers::allocated_bytes));
  std::cout << buf;
  if (a.budget_gib > 0) {
    const double per_image = static_cast<double>(mem.policy.allocated_bytes) / static_cast<double>(a.batch);
    const double ref_per_image = static_cast<double>(mem.reference.allocated_bytes) / static_cast<double>(a.batch);
    const double budget = a.budget_gib * 1024.0 * 1024.0 * 1024.0;
    std::cout << "largest batch whose KV cache fits " << a.budget_gib << " GiB: " << static_cast<int64_t>(budget / per_image)
              << " with " << policy->name() << ", " << static_cast<int64_t>(budget / ref_per_image)
              << " with the reference cache\n";
  }
}

}  // namespace amskv::cli
