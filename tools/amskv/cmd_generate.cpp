// amskv generate: images as PNG (one per image plus a grid), optional dump of tokens/logits/images, and a
// report of KV memory and time. Every PNG records how it was made (provenance.h); --from regenerates one.
//
// Failing early and cleanly: every output path is checked before a checkpoint is read (output_paths.h), each
// file is written atomically, and when a batch fails after others were written the error says how many images
// are on disk (each of them complete).
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <new>
#include <optional>

#include "commands.h"
#include "io/png_writer.h"
#include "io/safetensors.h"
#include "output_paths.h"
#include "provenance.h"
#include "report_json.h"

namespace amskv::cli {

namespace {

constexpr int64_t kGridImages = 64;  // grid.png shows at most the first 64 images

std::string image_name(uint64_t index) {
  char name[32];
  std::snprintf(name, sizeof name, "%06llu.png", static_cast<unsigned long long>(index));
  return name;
}

std::string labels_text(const std::vector<int64_t>& labels) {
  std::string out;
  for (int64_t l : labels) out += (out.empty() ? "" : ",") + std::to_string(l);
  return out;
}

// The job and policy to run: from the flags, or (--from) from the PNG's record, writing only its image.
struct Plan {
  engine::JobOptions job;
  kv::PolicyOptions policy;
  std::optional<uint64_t> only;  // the one image index to write
};

Plan plan_of(const GenerateArgs& a) {
  if (a.from_png.empty()) return {a.run.resolved(), a.run.policy, std::nullopt};
  const Regeneration g = regeneration(read_record(a.from_png), a.from_png, a.run.job.var_path, a.run.job.vae_path,
                                      a.run.job.backend, a.given);
  return {g.job, g.policy, g.image_index};
}

}  // namespace

void run_generate(const GenerateArgs& a) {
  const Plan plan = plan_of(a);
  const int64_t total = static_cast<int64_t>(plan.job.labels.size());
  const uint64_t first_index = plan.job.first_image_index;
  const bool dump = !a.dump_path.empty();
  const bool grid_wanted = !a.no_images && !a.no_grid && total > 1 && !plan.only;
  const int64_t to_write = a.no_images ? 0 : plan.only ? 1 : total;

  // Where the results go, checked before anything is loaded or computed.
  OutputCheck outputs({{"--var", plan.job.var_path},
                       {"--vae", plan.job.vae_path},
                       {"--force-tokens", plan.job.force_tokens},
                       {"--kv-table", plan.policy.table_path},
                       {"--ams-profile", plan.policy.ams_profile},
                       {"--from", a.from_png}});
  if (!a.no_images) {
    std::vector<std::string> names;
    if (plan.only) names.push_back(image_name(*plan.only));
    else
      for (int64_t i = 0; i < total; ++i) names.push_back(image_name(first_index + static_cast<uint64_t>(i)));
    if (grid_wanted) names.push_back("grid.png");
    outputs.folder("--out", a.out_dir, names);
  }
  outputs.file("--dump", a.dump_path);
  outputs.file("--report", a.report_path);

  const engine::GenerationJob job(plan.job, plan.policy);
  const auto& cfg = job.var().config();
  const int64_t side = cfg.schedule.last_side() * job.vae().config().upsample_factor(), image_floats = 3 * side * side;
  const nlohmann::json record = run_record(job, job.policy().options());
  outputs.create_folders();

  // Images are written batch by batch; only a dump keeps every batch's tensors until the end.
  engine::BatchMerger merger(/*keep_tensors=*/dump);
  std::vector<float> grid;
  engine::RunSettings settings;
  settings.keep_logits = a.dump_logits;
  settings.decode = !(a.no_images && !dump);
  settings.record_steps = a.graphs;
  int64_t written = 0;
  try {
    job.run_batches(
        settings,
        [&](engine::GenerateResult&& r, int64_t first) {
          const int64_t n = r.tokens.empty() ? 0 : r.tokens[0].dim(0);
          if (!a.no_images) {
            const float* img = r.images.data<float>();
            const std::vector<int64_t> labels(plan.job.labels.begin() + first, plan.job.labels.begin() + first + n);
            const nlohmann::json batch =
                batch_record(first_index + static_cast<uint64_t>(first), labels, job.memory_plan().exec);
            for (int64_t b = 0; b < n; ++b) {
              const uint64_t index = first_index + static_cast<uint64_t>(first + b);
              if (plan.only && index != *plan.only) continue;
              const nlohmann::json image = image_record(record, labels[b], index, batch, r.policy);
              io::write_png((std::filesystem::path(a.out_dir) / image_name(index)).string(), img + b * image_floats,
                            side, side, {{kPngKey, image.dump()}});
              ++written;
            }
            const int64_t take = std::min(n, kGridImages - first);
            if (take > 0) grid.insert(grid.end(), img, img + take * image_floats);
          }
          merger.add(std::move(r));
        },
        progress_printer(a.run.quiet));
  } catch (const std::exception& e) {
    const std::string what = dynamic_cast<const std::bad_alloc*>(&e) ? "out of host memory" : e.what();
    if (a.no_images) throw Error(what);
    fail(what, " (", written, " of ", to_write, " images were written to ", a.out_dir, ")");
  }
  const engine::GenerateResult r = merger.finish();

  if (!a.no_images) {
    const int64_t shown = static_cast<int64_t>(grid.size()) / image_floats;
    if (grid_wanted && shown > 1) {
      nlohmann::json grid_record = record;
      grid_record["labels"] = plan.job.labels;
      grid_record["first_image_index"] = first_index;
      io::write_png_grid((std::filesystem::path(a.out_dir) / "grid.png").string(), grid.data(), shown, side, side,
                         std::min<int64_t>(shown, 8), 2, {{kPngKey, grid_record.dump()}});
    }
    if (!a.run.quiet)
      std::cerr << "wrote " << written << " image" << (written == 1 ? "" : "s") << " to " << a.out_dir << "\n";
  }
  if (dump) {
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (size_t k = 0; k < r.tokens.size(); ++k) tensors.emplace_back(cat("idx.", k), r.tokens[k]);
    for (size_t k = 0; k < r.logits_cfg.size(); ++k) tensors.emplace_back(cat("logits_cfg.", k), r.logits_cfg[k]);
    tensors.emplace_back("image", r.images);
    tensors.emplace_back("fhat", r.fhat);
    io::save_safetensors(a.dump_path, tensors,
                         {{"model", cfg.summary()},
                          {"labels", labels_text(plan.job.labels)},
                          {"policy", plan.policy.name},
                          {kPngKey, record.dump()}});
  }
  nlohmann::json report = generation_report(r, cfg, 2 * job.batch_size(), total);
  report["device"] = job.backend().name();
  report["memory_plan"] = job.memory_plan().to_json();
  report["settings"] = record;
  if (!a.report_path.empty()) write_json_file(a.report_path, report);
  if (!a.run.quiet) std::cerr << generation_report_table(report);
}

}  // namespace amskv::cli
