// amskv eval: what a policy costs against `full` on the same seeds and labels: token agreement per scale,
// PSNR and SSIM of the images, the three KV memory numbers, attention and total time. --sweep repeats it
// over budgets and draws the quality-memory curve.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "commands.h"
#include "kv/memory_report.h"
#include "model/var_model.h"
#include "report/image_metrics.h"
#include "report/markdown_table.h"
#ifdef AMSKV_HAVE_PLOTS
#include "report/plot.h"
#endif
#include "report_json.h"
#include "run_options.h"

namespace amskv::cli {

namespace {

struct EvalArgs {
  RunOptions run;
  std::string json_path, out_dir = "eval";
  bool sweep = false;
  std::vector<int64_t> sweep_budgets;
};

std::string fmt(double v, const char* f = "%.4f") {
  if (std::isinf(v)) return "inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

nlohmann::json compare(const engine::GenerateResult& full, const engine::GenerateResult& pol,
                       const model::VarConfig& cfg, int64_t rows) {
  nlohmann::json j;
  std::vector<double> agreement;
  for (size_t k = 0; k < full.tokens.size(); ++k) {
    const int64_t n = full.tokens[k].numel();
    int64_t same = 0;
    for (int64_t i = 0; i < n; ++i) same += full.tokens[k].data<int64_t>()[i] == pol.tokens[k].data<int64_t>()[i];
    agreement.push_back(static_cast<double>(same) / static_cast<double>(n));
  }
  const int64_t B = full.images.dim(0), H = full.images.dim(2), W = full.images.dim(3);
  double psnr_sum = 0, ssim_sum = 0;
  int finite = 0;
  std::vector<double> psnrs, ssims;
  for (int64_t b = 0; b < B; ++b) {
    const float* a = full.images.data<float>() + b * 3 * H * W;
    const float* p = pol.images.data<float>() + b * 3 * H * W;
    psnrs.push_back(report::psnr(a, p, 3 * H * W));
    ssims.push_back(report::ssim(a, p, 3, H, W));
    if (std::isfinite(psnrs.back())) psnr_sum += psnrs.back(), ++finite;
    ssim_sum += ssims.back();
  }
  const auto mem = kv::make_memory_report(pol.kv, model::kv_schedule(cfg), rows);
  j["token_agreement"] = agreement;
  j["psnr_db"] = psnrs;
  j["ssim"] = ssims;
  j["mean_psnr_db"] = finite == B ? nlohmann::json(psnr_sum / B) : nlohmann::json("inf (identical images)");
  j["mean_psnr_finite_db"] = finite ? psnr_sum / finite : INFINITY;
  j["mean_ssim"] = ssim_sum / B;
  j["kv"] = mem.to_json(pol.kv, pol.policy);
  j["time"] = {{"total_s", pol.time.total_s}, {"attention_s", pol.time.attention_s}};
  return j;
}

void run_eval(const EvalArgs& a) {
  kv::PolicyOptions full_opt;
  full_opt.name = "full";
  const engine::GenerationJob job(a.run.resolved(), full_opt);  // full needs the most memory of all policies
  const auto& cfg = job.var().config();
  const int64_t B = job.images();
  const int64_t rows = 2 * job.batch_size();
  const auto progress = progress_printer(a.run.quiet);
  const auto full = job.run(full_opt, {}, progress);

  std::vector<kv::PolicyOptions> variants;
  if (a.sweep) {
    std::vector<int64_t> budgets = a.sweep_budgets;
    const int K = cfg.schedule.num_scales();
    const bool by_scales = a.run.policy.name == "window" || a.run.policy.name == "sink";
    if (budgets.empty() && by_scales) {  // windows of 1 .. K-1 scales
      for (int w = 1; w < K; ++w) budgets.push_back(w);
    } else if (budgets.empty()) {  // condensed + fractions of the largest stored scale up to everything
      const int64_t cond = cfg.schedule.tokens(0) + (K > 1 ? cfg.schedule.tokens(1) : 0);
      for (double f : {0.25, 0.5, 1.0, 1.5, 2.0, 3.0}) budgets.push_back(cond + static_cast<int64_t>(f * cfg.schedule.tokens(K - 2)));
    }
    for (int64_t b : budgets) {
      kv::PolicyOptions p = a.run.policy;
      if (p.name == "uniform") p.budget = b;
      else if (p.name == "window" || p.name == "sink") p.window = static_cast<int>(b);
      else {
        p.ams.cmin = b;
        p.ams.cmax = a.run.policy.ams.cmax ? std::max(*a.run.policy.ams.cmax, b) : 2 * b;
      }
      variants.push_back(p);
    }
  } else {
    variants.push_back(a.run.policy);
  }

  nlohmann::json out = {{"model", cfg.summary()}, {"images", B}, {"labels", a.run.labels_text},
                        {"full_time", {{"total_s", full.time.total_s}, {"attention_s", full.time.attention_s}}}};
  std::vector<std::vector<std::string>> rows_md;
  std::vector<double> reduction_x, psnr_y, ssim_y, agree_y;  // the quality-memory curves of --sweep
  for (const auto& p : variants) {
    const auto r = job.run(p, {}, progress);
    nlohmann::json c = compare(full, r, cfg, rows);
    const double resident = c["kv"]["reduction"]["resident"];
    std::string setting = p.name;
    const auto& s = c["kv"]["settings"];
    if (s.contains("cmin")) setting += cat(" ", s["cmin"].get<int64_t>(), "/", s["cmax"].get<int64_t>());
    if (p.name == "window" || p.name == "sink") setting += cat(" w=", p.window);
    const auto& agree = c["token_agreement"];
    double mean_agree = 0.0;
    for (const auto& v : agree) mean_agree += v.get<double>() / static_cast<double>(agree.size());
    const auto& red = c["kv"]["reduction"];
    rows_md.push_back({setting, fmt(c["mean_psnr_finite_db"].get<double>(), "%.2f"), fmt(c["mean_ssim"].get<double>()),
                       fmt(mean_agree, "%.3f") + " / " + fmt(agree.back().get<double>(), "%.3f"),
                       fmt(100.0 * red["stored"].get<double>(), "%.2f%%"), fmt(100.0 * resident, "%.2f%%"),
                       fmt(100.0 * red["allocated"].get<double>(), "%.2f%%"),
                       fmt(c["kv"]["resident_bytes"].get<double>() / 1048576.0, "%.2f"),
                       fmt(r.time.attention_s, "%.3f"), fmt(r.time.total_s, "%.2f")});
    reduction_x.push_back(100.0 * resident);
    psnr_y.push_back(c["mean_psnr_finite_db"].get<double>());
    ssim_y.push_back(c["mean_ssim"].get<double>());
    agree_y.push_back(mean_agree);
    c["setting"] = setting;
    out["runs"].push_back(c);
  }
  const auto reference = kv::make_memory_report(full.kv, model::kv_schedule(cfg), rows).reference;
  rows_md.push_back({"full (reference cache)", "inf", "1.0000", "1.000 / 1.000", "0.00%", "0.00%", "0.00%",
                     fmt(reference.resident_bytes / 1048576.0, "%.2f"), fmt(full.time.attention_s, "%.3f"),
                     fmt(full.time.total_s, "%.2f")});
  const std::string table = report::markdown_table(
      {"policy", "PSNR dB", "SSIM", "tokens equal (mean / last scale)", "stored KV -", "resident KV -",
       "allocated KV -", "resident MiB", "attention s", "total s"},
      rows_md);
  out["table"] = table;
  std::cout << table;
  if (!a.json_path.empty()) write_json_file(a.json_path, out);
  if (a.sweep) {
#ifdef AMSKV_HAVE_PLOTS
    std::filesystem::create_directories(a.out_dir);
    const report::Series psnr_curve{"PSNR vs full (dB)", reduction_x, psnr_y},
        ssim_curve{"SSIM vs full", reduction_x, ssim_y},
        agree_curve{"tokens equal to full (mean over scales)", reduction_x, agree_y};
    report::LinePlotStyle ls;
    ls.x_label = "resident KV reduction vs the reference cache (%)";
    ls.title = cat("Image PSNR against full: ", a.run.policy.name);
    ls.y_label = "PSNR (dB)";
    report::line_plot_png(a.out_dir + "/quality_memory_psnr.png", {psnr_curve}, ls);
    ls.title = cat("SSIM and token agreement against full: ", a.run.policy.name);
    ls.y_label = "fraction";
    ls.y_min = 0.0;
    ls.y_max = 1.0;
    report::line_plot_png(a.out_dir + "/quality_memory.png", {ssim_curve, agree_curve}, ls);
    std::cout << "wrote " << a.out_dir << "/quality_memory.png and quality_memory_psnr.png\n";
#else
    std::cout << "this build has no plotting: the sweep is in the table and --json only\n";
#endif
  }
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Fidelity, memory and time of a KV policy against full");
  add_run_options(*cmd, a->run, true);
  cmd->add_option("--json", a->json_path, "Write the results as JSON");
  cmd->add_flag("--sweep", a->sweep, "Repeat over budgets and plot the quality-memory curve");
  cmd->add_option("--sweep-budgets", a->sweep_budgets, "Budgets (tokens; scales for window/sink) for --sweep, e.g. 50,100,200")
      ->delimiter(',');
  cmd->add_option("--out", a->out_dir, "Folder for the sweep plot")->capture_default_str();
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace amskv::cli
