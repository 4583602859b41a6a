// amskv demo: the same images with the full cache and with a policy (AMS-KV by default), side by side: one
// grid per requested class (first row full, second row the policy, same seeds), the grids of every image,
// and the KV memory and time of both runs beside the reference VAR cache.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "commands.h"
#include "core/parse.h"
#include "io/png_writer.h"
#include "kv/memory_report.h"
#include "model/var_model.h"
#include "output_paths.h"
#include "report/image_metrics.h"
#include "report/markdown_table.h"
#include "run_options.h"

namespace amskv::cli {

namespace {

struct DemoArgs {
  RunOptions run;
  std::string out_dir = "samples";
  int64_t per_class = 8;
};

std::string fmt(double v, const char* f = "%.2f") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

void run_demo(const DemoArgs& a) {
  engine::JobOptions job_options = a.run.resolved();
  // The grids' names, checked before any work (output_paths.h).
  const std::vector<int64_t> requested = parse_int_list(a.run.labels_text, "--labels");
  std::vector<std::string> names = {"grid_full.png", cat("grid_", a.run.policy.name, ".png")};
  for (int64_t c : requested) names.push_back(cat("class_", c, "_full_vs_", a.run.policy.name, ".png"));
  OutputCheck outputs({{"--var", job_options.var_path}, {"--vae", job_options.vae_path}});
  outputs.folder("--out", a.out_dir, names);
  // Each requested class `per_class` times, class by class.
  const std::vector<int64_t> classes = job_options.labels;
  job_options.labels.clear();
  for (int64_t c : classes)
    for (int64_t i = 0; i < a.per_class; ++i) job_options.labels.push_back(c);
  kv::PolicyOptions full;
  full.name = "full";
  const engine::GenerationJob job(job_options, full);
  const auto& cfg = job.var().config();
  const int64_t side = cfg.schedule.last_side() * job.vae().config().upsample_factor(), plane = 3 * side * side;
  const auto progress = progress_printer(a.run.quiet);
  const engine::GenerateResult r_full = job.run(full, {}, progress);
  const engine::GenerateResult r_pol = job.run(a.run.policy, {}, progress);

  outputs.create_folders();
  const float* f = r_full.images.data<float>();
  const float* p = r_pol.images.data<float>();
  for (size_t ci = 0; ci < classes.size(); ++ci) {
    std::vector<float> grid;
    const int64_t first = static_cast<int64_t>(ci) * a.per_class;
    grid.insert(grid.end(), f + first * plane, f + (first + a.per_class) * plane);
    grid.insert(grid.end(), p + first * plane, p + (first + a.per_class) * plane);
    const std::string name = cat("class_", classes[ci], "_full_vs_", a.run.policy.name, ".png");
    io::write_png_grid((std::filesystem::path(a.out_dir) / name).string(), grid.data(), 2 * a.per_class, side, side,
                       a.per_class);
  }
  const int64_t total = job.images();
  io::write_png_grid((std::filesystem::path(a.out_dir) / "grid_full.png").string(), f, total, side, side, a.per_class);
  io::write_png_grid((std::filesystem::path(a.out_dir) / cat("grid_", a.run.policy.name, ".png")).string(), p, total,
                     side, side, a.per_class);

  // Memory of one batch and time of the whole run, both policies, beside the reference cache.
  const int64_t rows = 2 * job.batch_size();
  const auto schedule = model::kv_schedule(cfg);
  const auto mf = kv::make_memory_report(r_full.kv, schedule, rows), mp = kv::make_memory_report(r_pol.kv, schedule, rows);
  double psnr = 0.0, ssim = 0.0;
  int64_t finite = 0, same = 0, tokens = 0;
  for (int64_t b = 0; b < total; ++b) {
    const double v = report::psnr(f + b * plane, p + b * plane, plane);
    if (std::isfinite(v)) psnr += v, ++finite;
    ssim += report::ssim(f + b * plane, p + b * plane, 3, side, side);
  }
  for (size_t k = 0; k < r_full.tokens.size(); ++k)
    for (int64_t i = 0; i < r_full.tokens[k].numel(); ++i, ++tokens)
      same += r_full.tokens[k].data<int64_t>()[i] == r_pol.tokens[k].data<int64_t>()[i];
  auto mib = [](int64_t bytes) { return fmt(static_cast<double>(bytes) / (1 << 20)); };
  auto pct = [](double v) { return fmt(100.0 * v, "%.1f%%"); };
  std::vector<std::vector<std::string>> rows_md;
  rows_md.push_back({"reference VAR cache", mib(mf.reference.stored_bytes), mib(mf.reference.resident_bytes),
                     mib(mf.reference.allocated_bytes), "", "", "", ""});
  rows_md.push_back({"full", mib(mf.policy.stored_bytes), mib(mf.policy.resident_bytes), mib(mf.policy.allocated_bytes),
                     pct(mf.reduction(&kv::MemoryNumbers::resident_bytes)), fmt(r_full.time.total_s / total, "%.4f"),
                     fmt(1000.0 * r_full.time.attention_s, "%.1f"), "1.000"});
  rows_md.push_back({a.run.policy.name, mib(mp.policy.stored_bytes), mib(mp.policy.resident_bytes),
                     mib(mp.policy.allocated_bytes), pct(mp.reduction(&kv::MemoryNumbers::resident_bytes)),
                     fmt(r_pol.time.total_s / total, "%.4f"), fmt(1000.0 * r_pol.time.attention_s, "%.1f"),
                     fmt(static_cast<double>(same) / static_cast<double>(tokens), "%.3f")});
  std::cout << cat(total, " images (", classes.size(), " classes x ", a.per_class, ") in batches of ", job.batch_size(),
                   " on ", job.backend().name(), "; KV per batch:\n")
            << report::markdown_table({"KV cache", "stored MiB", "resident MiB", "allocated MiB", "resident -",
                                       "s/image", "attention ms", "tokens equal to full"},
                                      rows_md)
            << cat(a.run.policy.name, " against full: PSNR ", finite ? fmt(psnr / finite) : std::string("inf"),
                   " dB (identical images: ", total - finite, "), SSIM ", fmt(ssim / total, "%.4f"), "\n")
            << "wrote " << a.out_dir << "/class_<id>_full_vs_" << a.run.policy.name << ".png (row 1 full, row 2 "
            << a.run.policy.name << "), grid_full.png, grid_" << a.run.policy.name << ".png\n";
}

}  // namespace

void add_demo_command(CLI::App& app) {
  auto a = std::make_shared<DemoArgs>();
  a->run.policy.name = "ams";
  a->run.labels_text = "0,1,2,3,4,5,6,7,8,9";
  a->run.job.sampling.cfg = 3.0;
  a->run.job.sampling.top_p = 0.95;
  CLI::App* cmd = app.add_subcommand("demo", "The same images with the full cache and with a KV policy, side by side "
                                             "per class, with their memory and time");
  add_run_options(*cmd, a->run, true);
  cmd->add_option("--per-class", a->per_class, "Images per requested class")->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--out", a->out_dir, "Folder for the grids")->capture_default_str();
  cmd->callback([a] { run_demo(*a); });
}

}  // namespace amskv::cli
