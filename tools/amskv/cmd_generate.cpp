// amskv generate: images as PNG (one per image plus a grid), optional dump of tokens/logits/images, and a
// report of KV memory and time.
#include <filesystem>
#include <iostream>
#include <memory>

#include "commands.h"
#include "io/png_writer.h"
#include "io/safetensors.h"
#include "report_json.h"
#include "run_options.h"

namespace amskv::cli {

namespace {

struct GenerateArgs {
  RunOptions run;
  std::string out_dir = "samples";
  std::string dump_path, report_path;
  bool dump_logits = false, no_grid = false, no_images = false;
};

constexpr int64_t kGridImages = 64;  // grid.png shows at most the first 64 images

std::string image_path(const std::string& dir, int64_t index) {
  char name[32];
  std::snprintf(name, sizeof name, "%06lld.png", static_cast<long long>(index));
  return (std::filesystem::path(dir) / name).string();
}

void run_generate(const GenerateArgs& a) {
  const engine::GenerationJob job(a.run.resolved(), a.run.policy);
  const auto& cfg = job.var().config();
  const int64_t total = job.images();
  const int64_t side = cfg.schedule.last_side() * job.vae().config().upsample_factor(), image_floats = 3 * side * side;
  const bool dump = !a.dump_path.empty();
  if (!a.no_images) std::filesystem::create_directories(a.out_dir);

  // Images are written batch by batch; only a dump keeps every batch's tensors until the end.
  engine::BatchMerger merger(/*keep_tensors=*/dump);
  std::vector<float> grid;
  engine::RunSettings settings;
  settings.keep_logits = a.dump_logits;
  settings.decode = !(a.no_images && !dump);
  job.run_batches(a.run.policy, settings,
                  [&](engine::GenerateResult&& r, int64_t first) {
                    const int64_t n = r.tokens.empty() ? 0 : r.tokens[0].dim(0);
                    if (!a.no_images) {
                      const float* img = r.images.data<float>();
                      for (int64_t b = 0; b < n; ++b)
                        io::write_png(image_path(a.out_dir, first + b), img + b * image_floats, side, side);
                      const int64_t take = std::min(n, kGridImages - first);
                      if (take > 0) grid.insert(grid.end(), img, img + take * image_floats);
                    }
                    merger.add(std::move(r));
                  },
                  progress_printer(a.run.quiet));
  const engine::GenerateResult r = merger.finish();

  if (!a.no_images) {
    const int64_t shown = static_cast<int64_t>(grid.size()) / image_floats;
    if (!a.no_grid && shown > 1)
      io::write_png_grid((std::filesystem::path(a.out_dir) / "grid.png").string(), grid.data(), shown, side, side,
                         std::min<int64_t>(shown, 8));
    if (!a.run.quiet) std::cerr << "wrote " << total << " images to " << a.out_dir << "\n";
  }
  if (dump) {
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (size_t k = 0; k < r.tokens.size(); ++k) tensors.emplace_back(cat("idx.", k), r.tokens[k]);
    for (size_t k = 0; k < r.logits_cfg.size(); ++k) tensors.emplace_back(cat("logits_cfg.", k), r.logits_cfg[k]);
    tensors.emplace_back("image", r.images);
    tensors.emplace_back("fhat", r.fhat);
    io::save_safetensors(a.dump_path, tensors,
                         {{"model", cfg.summary()}, {"labels", a.run.labels_text}, {"policy", a.run.policy.name}});
  }
  nlohmann::json report = generation_report(r, cfg, 2 * job.batch_size(), total);
  report["device"] = job.backend().name();
  report["memory_plan"] = job.memory_plan().to_json();
  if (!a.report_path.empty()) write_json_file(a.report_path, report);
  if (!a.run.quiet) std::cerr << generation_report_table(report);
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate class-conditional images");
  add_run_options(*cmd, args->run, true);
  cmd->add_option("--out", args->out_dir, "Folder for the PNG images (000000.png, ..., grid.png)");
  cmd->add_flag("--no-grid", args->no_grid, "Do not write grid.png");
  cmd->add_flag("--no-images", args->no_images, "Do not write PNG images");
  cmd->add_option("--dump", args->dump_path, "Write idx.{k}, image (and fhat) to this safetensors file");
  cmd->add_flag("--dump-logits", args->dump_logits, "Also dump logits_cfg.{k} (guided, before top-k/top-p)");
  cmd->add_option("--report", args->report_path, "Write KV memory and timing report (JSON)");
  cmd->callback([args] { run_generate(*args); });
}

}  // namespace amskv::cli
