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

void run_generate(const GenerateArgs& a) {
  GenerationJob job(a.run);
  const auto& cfg = job.var().config();
  const engine::GenerateResult r =
      job.run(a.run.policy, a.dump_logits, {}, /*decode=*/!(a.no_images && a.dump_path.empty()));
  const int64_t B = r.tokens.empty() ? 0 : r.tokens[0].dim(0);
  const int64_t side = cfg.image_size();

  if (!a.no_images) {
    std::filesystem::create_directories(a.out_dir);
    const float* img = r.images.data<float>();
    for (int64_t b = 0; b < B; ++b) {
      char name[32];
      std::snprintf(name, sizeof name, "%06lld.png", static_cast<long long>(b));
      io::write_png((std::filesystem::path(a.out_dir) / name).string(), img + b * 3 * side * side, side, side);
    }
    if (!a.no_grid && B > 1) {
      const int64_t columns = std::min<int64_t>(B, 8);
      io::write_png_grid((std::filesystem::path(a.out_dir) / "grid.png").string(), img, B, side, side, columns);
    }
    if (!a.run.quiet) std::cerr << "wrote " << B << " images to " << a.out_dir << "\n";
  }
  if (!a.dump_path.empty()) {
    std::vector<std::pair<std::string, Tensor>> dump;
    for (size_t k = 0; k < r.tokens.size(); ++k) dump.emplace_back(cat("idx.", k), r.tokens[k]);
    for (size_t k = 0; k < r.logits_cfg.size(); ++k) dump.emplace_back(cat("logits_cfg.", k), r.logits_cfg[k]);
    dump.emplace_back("image", r.images);
    dump.emplace_back("fhat", r.fhat);
    io::save_safetensors(a.dump_path, dump,
                         {{"model", cfg.summary()}, {"labels", a.run.labels_text}, {"policy", a.run.policy.name}});
  }
  const int64_t batch = a.run.batch > 0 ? std::min<int64_t>(a.run.batch, B) : B;
  const nlohmann::json report = generation_report(r, cfg, 2 * batch, B);
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
