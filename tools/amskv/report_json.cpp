#include "report_json.h"

#include <cstdio>
#include <sstream>

#include "io/atomic_file.h"
#include "kv/memory_report.h"
#include "model/var_model.h"
#include "report/markdown_table.h"

namespace amskv::cli {

nlohmann::json generation_report(const engine::GenerateResult& r, const model::VarConfig& config,
                                 int64_t rows_per_batch, int64_t images) {
  const kv::MemoryReport mem = kv::make_memory_report(r.kv, model::kv_schedule(config), rows_per_batch);
  nlohmann::json j;
  j["kv"] = mem.to_json(r.kv, r.policy);
  j["kv"]["batch_images"] = rows_per_batch / 2;
  j["time"] = {{"total_s", r.time.total_s},           {"attention_s", r.time.attention_s},
               {"transformer_s", r.time.transformer_s}, {"sampling_s", r.time.sampling_s},
               {"latent_s", r.time.latent_s},         {"decode_s", r.time.decode_s},
               {"per_scale_s", r.time.per_scale_s},   {"s_per_image", r.time.total_s / static_cast<double>(images)}};
  j["images"] = images;
  j["model"] = config.summary();
  return j;
}

std::string generation_report_table(const nlohmann::json& j) {
  const auto& kv = j["kv"];
  auto mib = [](int64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(bytes) / (1024.0 * 1024.0));
    return std::string(buf);
  };
  auto pct = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f%%", 100.0 * v);
    return std::string(buf);
  };
  std::vector<std::vector<std::string>> rows;
  auto add = [&](const std::string& name, const nlohmann::json& m, const std::string& red_s,
                 const std::string& red_r) {
    rows.push_back({name, mib(m["stored_bytes"]), mib(m["resident_bytes"]), mib(m["allocated_bytes"]), red_s, red_r});
  };
  add(kv["policy"].get<std::string>(), kv, pct(kv["reduction"]["stored"]), pct(kv["reduction"]["resident"]));
  add("engine full", kv["engine_full"], "", "");
  add("reference (vanilla VAR)", kv["full"], "0%", "0%");
  std::ostringstream out;
  out << report::markdown_table({"KV cache", "stored MiB", "resident MiB", "allocated MiB", "stored -",
                                 "resident -"},
                                rows);
  char buf[256];
  std::snprintf(buf, sizeof buf, "time: total %.2f s (%.2f s/image), attention %.2f s, VQVAE decode %.2f s\n",
                j["time"]["total_s"].get<double>(), j["time"]["s_per_image"].get<double>(),
                j["time"]["attention_s"].get<double>(), j["time"]["decode_s"].get<double>());
  out << buf;
  return out.str();
}

void write_json_file(const std::string& path, const nlohmann::json& j) {
  io::AtomicFile file(path);
  const std::string text = j.dump(1) + "\n";
  file.write(text.data(), text.size());
  file.commit();
}

}  // namespace amskv::cli
