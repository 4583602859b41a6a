// End-to-end generation benchmark on the CPU: a VAR model of an official shape with seeded random weights
// (built in memory), images per second at several batch sizes and KV policies, KV memory, peak RSS.
// Prints JSON, then a markdown table. Timings are one run each after a warm-up; compare rows of one run.
//
//   bench_generate [--shape d16] [--batches 1,4] [--policies full,ams] [--no-decode] [--vae-ch 160]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_backend.h"
#include "engine/generator.h"
#include "kv/memory_report.h"
#include "kv/policy_factory.h"
#include "model/random_model.h"
#include "report/markdown_table.h"

using namespace amskv;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(item);
  return out;
}

double peak_rss_gib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / (1024.0 * 1024.0);
}

std::string f(double v, const char* fmt = "%.2f") {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape = "d16", batches = "1,4", policies = "full,ams";
  bool decode = true;
  int64_t vae_ch = 160;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--shape") shape = next();
    else if (a == "--batches") batches = next();
    else if (a == "--policies") policies = next();
    else if (a == "--no-decode") decode = false;
    else if (a == "--vae-ch") vae_ch = std::stoll(next());
    else {
      std::cerr << "usage: bench_generate [--shape d16] [--batches 1,4] [--policies full,ams] [--no-decode] [--vae-ch 160]\n";
      return 2;
    }
  }
  try {
    const auto spec = model::official_var_spec(shape);
    backend::CpuBackend cpu;
    const model::VarModel var(cpu, model::to_tensor_map(model::random_var_weights(spec), "random " + shape));
    model::RandomVqvaeSpec vs;
    vs.vocab = spec.vocab, vs.cvae = spec.cvae, vs.ch = vae_ch;
    const model::Vqvae vae(cpu, model::to_tensor_map(model::random_vqvae_weights(vs), "random VQVAE"));
    const auto& cfg = var.config();
    const kv::ScheduleInfo info = model::kv_schedule(cfg);

    nlohmann::json rows = nlohmann::json::array();
    std::vector<std::vector<std::string>> table;
    bool warmed = false;
    for (const auto& b : split(batches)) {
      const int64_t B = std::stoll(b);
      for (const auto& p : split(policies)) {
        kv::PolicyOptions po;
        po.name = p;
        engine::GenerateOptions go;
        for (int64_t i = 0; i < B; ++i) go.labels.push_back((i * 137) % cfg.num_classes);
        go.sampling.cfg = 4.0, go.sampling.top_k = 900, go.sampling.top_p = 0.95;
        go.decode_images = decode;
        if (!warmed) {  // page in the weights and warm the thread pool once
          auto warm = go;
          warm.labels = {0};
          warm.decode_images = false;
          auto pol = kv::make_policy(po);
          engine::generate(var, vae, *pol, warm);
          warmed = true;
        }
        auto pol = kv::make_policy(po);
        const auto r = engine::generate(var, vae, *pol, go);
        const auto mem = kv::make_memory_report(r.kv, info, 2 * B);
        nlohmann::json row = {{"model", shape},
                              {"policy", p},
                              {"B", B},
                              {"total_s", r.time.total_s},
                              {"s_per_image", r.time.total_s / B},
                              {"transformer_s", r.time.transformer_s},
                              {"attention_s", r.time.attention_s},
                              {"decode_s", r.time.decode_s},
                              {"kv_resident_MiB", mem.policy.resident_bytes / 1048576.0},
                              {"kv_reference_MiB", mem.reference.resident_bytes / 1048576.0},
                              {"peak_rss_GiB", peak_rss_gib()}};
        rows.push_back(row);
        table.push_back({shape, p, b, f(r.time.total_s / B), f(r.time.transformer_s), f(r.time.attention_s, "%.3f"),
                         f(r.time.decode_s), f(mem.policy.resident_bytes / 1048576.0),
                         f(mem.reference.resident_bytes / 1048576.0), f(peak_rss_gib())});
      }
    }
    nlohmann::json out = {{"benchmark", "bench_generate"}, {"decode", decode}, {"vae_ch", vae_ch}, {"rows", rows}};
    std::cout << out.dump(1) << "\n\n"
              << report::markdown_table({"model", "policy", "B", "s/image", "transformer s", "attention s", "decode s",
                                         "KV resident MiB", "reference KV MiB", "peak RSS GiB"},
                                        table);
  } catch (const std::exception& e) {
    std::cerr << "bench_generate: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
