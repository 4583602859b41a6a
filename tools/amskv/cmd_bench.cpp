// amskv bench: speed and memory over a parameter grid (model shape × batch × policy × dtype on one device),
// with random weights of the official shapes built in memory (or given checkpoints). Each point: warm-up
// runs, then repetitions; median and spread of images/s (VQVAE decode included), ms per image and per scale,
// attention time, peak device memory and the three KV numbers. A point that the memory planner says cannot
// fit is reported as out of memory without running. --max-batch finds the largest batch that fits.
// Prints a markdown table; --json writes one object per grid point.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>

#include "commands.h"
#include "core/parse.h"
#include "engine/generation_job.h"
#include "io/tensor_file.h"
#include "kv/memory_report.h"
#include "model/random_model.h"
#include "output_paths.h"
#include "report/markdown_table.h"
#include "report_json.h"
#include "run_options.h"

namespace amskv::cli {

namespace {

std::string fmt(double v, const char* f = "%.2f") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// Images per second: one decimal from 10 up, three significant digits below (a CPU run's 0.136 would
// otherwise print as 0.1).
std::string rate(double images_per_s) { return fmt(images_per_s, images_per_s >= 10.0 ? "%.1f" : "%.3g"); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The models of one shape on one backend: the given checkpoints (checked like every command's: NaN/Inf weights,
// compatibility), or random weights of an official shape.
engine::LoadedModels load(const BenchArgs& a, const std::string& shape, const std::string& dtype) {
  backend::BackendOptions bo = a.backend;
  bo.dtype = dtype;
  if (!a.var_path.empty()) return engine::load_models(a.var_path, a.vae_path, {}, bo);
  engine::LoadedModels l;
  l.backend = backend::make_backend(bo);
  const auto spec = model::official_var_spec(shape);
  l.var = std::make_unique<model::VarModel>(*l.backend,
                                            model::to_tensor_map(model::random_var_weights(spec), "random " + shape));
  model::RandomVqvaeSpec vs;
  vs.vocab = spec.vocab, vs.cvae = spec.cvae, vs.ch = shape == "tiny" ? 32 : a.vae_ch;
  l.vae = std::make_unique<model::Vqvae>(*l.backend, model::to_tensor_map(model::random_vqvae_weights(vs), "random VQVAE"));
  return l;
}

}  // namespace

void run_bench(const BenchArgs& a) {
  // Every policy's table or profile read once, before any model is built.
  std::map<std::string, kv::PolicyFactory> factories;
  for (const std::string& policy : split_list(a.policies, "--policies")) {
    kv::PolicyOptions po = a.knobs;
    po.name = policy;
    factories.emplace(policy, kv::PolicyFactory(po));
  }
  OutputCheck outputs({{"--var", a.var_path}, {"--vae", a.vae_path}, {"--kv-table", a.knobs.table_path},
                       {"--ams-profile", a.knobs.ams_profile}});
  outputs.file("--json", a.json_path);
  nlohmann::json rows = nlohmann::json::array();
  std::vector<std::vector<std::string>> table;
  const std::vector<std::string> shapes =
      a.var_path.empty() ? split_list(a.shapes, "--shapes") : std::vector<std::string>{"file"};
  for (const std::string& shape : shapes) {
    for (const std::string& dtype : split_list(a.dtypes, "--dtypes")) {
      engine::LoadedModels l = load(a, shape, dtype);
      backend::Backend& be = *l.backend;
      const auto& cfg = l.var->config();
      const engine::PlanShapes ps = l.plan_shapes();
      const int64_t per_pass = be.decoder_images_per_pass(ps.decoder_bytes_per_image);
      const std::string dname = be.compute_dtype() == DType::BF16 ? "bf16" : be.compute_dtype() == DType::F16 ? "f16" : "f32";
      const std::string kvname = be.kv_dtype() == DType::I8 ? "int8" : dname;  // how past scales' K/V are stored
      const std::string dcol = kvname == dname ? dname : dname + ", " + kvname + " K/V";
      for (const std::string& policy : split_list(a.policies, "--policies")) {
        const kv::PolicyFactory& po = factories.at(policy);
        po.check_depth(static_cast<int>(cfg.depth));
        const int64_t available = engine::usable_memory(be.memory().free_bytes);
        if (a.max_batch) {
          const int64_t fits = engine::largest_batch(ps, po, be.compute_dtype(), be.kv_dtype(), available, per_pass, a.max_batch_limit);
          const auto plan = engine::fit_batch(ps, po, be.compute_dtype(), be.kv_dtype(), std::max<int64_t>(fits, 1), available, per_pass);
          rows.push_back({{"model", shape}, {"policy", policy}, {"dtype", dname}, {"kv_dtype", kvname},
                          {"device", be.name()}, {"max_batch", fits}, {"available_bytes", available}, {"plan", plan.to_json()}});
          table.push_back({shape, policy, dcol, "max", std::to_string(fits), "", "", "", "", "",
                           fmt(static_cast<double>(plan.total_bytes()) / (1 << 30)), fmt(plan.kv_bytes / double(1 << 30)),
                           ""});
          continue;
        }
        for (const std::string& bs : split_list(a.batches, "--batches")) {
          const int64_t B = parse_int_list(bs, "--batches").at(0);
          AMSKV_CHECK(B > 0, "--batches: ", B, " is not a positive batch");
          nlohmann::json row = {{"model", shape}, {"batch", B},        {"policy", policy},
                                {"dtype", dname}, {"kv_dtype", kvname}, {"device", be.name()}};
          const auto plan = engine::fit_batch(ps, po, be.compute_dtype(), be.kv_dtype(), B, available, per_pass);
          if (plan.batch == 0) {
            row["oom"] = true;
            row["reason"] = cat("the memory plan needs more than the ", engine::gib(available), " free");
            rows.push_back(row);
            table.push_back({shape, policy, dcol, std::to_string(B), "OOM", "", "", "", "", "", "", "", ""});
            continue;
          }
          engine::GenerateOptions go;
          for (int64_t i = 0; i < B; ++i) go.labels.push_back((i * 137) % cfg.num_classes);
          go.sampling.cfg = 4.0, go.sampling.top_k = 900, go.sampling.top_p = 0.95;
          go.decode_images = !a.no_decode;
          go.record_steps = a.graphs;
          go.plan = plan.exec;
          std::vector<double> total, enqueue, attention, matmul;
          std::vector<std::vector<double>> per_scale;
          engine::GenerateResult last;
          bool oom = false, recorded = false, replayed = false;
          std::string oom_message;
          be.reset_peak_memory();
          // One generator for the repetitions: with --graphs it replays the first run's recording where the
          // policy allows (engine::Generator), and releases it before the timed-operations run.
          engine::Generator generator(*l.var, *l.vae);
          // Timed runs without per-operation timers (their events cost host time on every layer), then one
          // more run with them for the attention and matrix-product columns.
          for (int r = 0; r < a.warmup + a.reps + 1; ++r) {
            auto pol = po.make();
            go.time_ops = r == a.warmup + a.reps;
            try {
              last = generator.generate(*pol, go);
            } catch (const Error& e) {
              if (std::string(e.what()).find("out of GPU memory") == std::string::npos &&
                  std::string(e.what()).find("out of host memory") == std::string::npos)
                throw;
              oom = true;
              oom_message = e.what();
              break;
            }
            if (r < a.warmup) continue;
            if (go.time_ops) {
              attention.push_back(last.time.attention_s);
              matmul.push_back(last.time.matmul_s);
              continue;
            }
            recorded = last.steps_recorded;  // what the timed runs did (h2o and analyses never record)
            replayed = last.replayed;
            total.push_back(last.time.total_s);
            enqueue.push_back(last.time.enqueue_s);
            per_scale.push_back(last.time.per_scale_s);
          }
          if (oom) {
            row["oom"] = true;
            row["reason"] = oom_message;
            rows.push_back(row);
            table.push_back({shape, policy, dcol, std::to_string(B), "OOM", "", "", "", "", "", "", "", ""});
            continue;
          }
          const double med = median(total), enqueue_med = median(enqueue);
          const auto [lo, hi] = std::minmax_element(total.begin(), total.end());
          const auto mem = kv::make_memory_report(last.kv, model::kv_schedule(cfg), 2 * B);
          std::vector<double> ms_per_scale;
          for (size_t k = 0; k < per_scale.front().size(); ++k) {
            std::vector<double> v;
            for (const auto& p : per_scale) v.push_back(1000.0 * p[k]);
            ms_per_scale.push_back(median(v));
          }
          const double peak = static_cast<double>(be.peak_memory_bytes()) / (1 << 30);
          const double images_per_s = B / med;
          const std::string rate_text = rate(images_per_s);  // the table's and the progress line's
          row["oom"] = false;
          row["graphs"] = recorded;
          row["replayed"] = replayed;
          row["images_per_s"] = images_per_s;
          row["ms_per_image"] = 1000.0 * med / B;
          row["seconds_median"] = med;
          row["seconds_min"] = *lo;
          row["seconds_max"] = *hi;
          row["reps"] = a.reps;
          row["enqueue_ms"] = 1000.0 * enqueue_med;
          row["attention_ms"] = 1000.0 * median(attention);
          row["matmul_ms"] = 1000.0 * median(matmul);
          row["ms_per_scale"] = ms_per_scale;
          row["decode_ms"] = 1000.0 * last.time.decode_s;
          row["peak_gib"] = peak;
          row["kv_stored_bytes"] = mem.policy.stored_bytes;
          row["kv_resident_bytes"] = mem.policy.resident_bytes;
          row["kv_allocated_bytes"] = mem.policy.allocated_bytes;
          row["kv_reference_bytes"] = mem.reference.allocated_bytes;  // at the compute dtype's width
          row["plan"] = plan.to_json();
          rows.push_back(row);
          table.push_back({shape, policy, dcol, std::to_string(B), rate_text,
                           fmt(1000.0 * med / B, "%.1f"),
                           fmt(100.0 * (*hi - *lo) / med, "%.1f%%"), fmt(1000.0 * median(matmul), "%.1f"),
                           fmt(1000.0 * median(attention), "%.1f"),
                           fmt(1000.0 * last.time.decode_s, "%.1f"), fmt(peak),
                           fmt(mem.policy.allocated_bytes / double(1 << 30), "%.3f"),
                           fmt(100.0 * mem.reduction(&kv::MemoryNumbers::allocated_bytes), "%.1f%%")});
          std::cerr << "bench: " << shape << " " << policy << " " << dcol << " B=" << B << ": " << rate_text
                    << " images/s (scales enqueued in " << fmt(1000.0 * enqueue_med, "%.1f") << " ms of "
                    << fmt(1000.0 * med, "%.1f") << (replayed ? "; replayed graph" : recorded ? "; graphs" : "")
                    << ")\n";
        }
      }
    }
  }
  std::cout << report::markdown_table({"model", "policy", "dtype", "batch", "images/s", "ms/image", "spread",
                                       "matmul ms", "attention ms", "decode ms", "peak GiB", "KV alloc GiB",
                                       "KV alloc -"},
                                      table);
  if (!a.json_path.empty()) {
    outputs.create_folders();
    write_json_file(a.json_path, {{"benchmark", "amskv bench"}, {"rows", rows}});
  }
}

}  // namespace amskv::cli
