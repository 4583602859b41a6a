// amskv profile: the paper's analysis on a full-cache run. Per layer, the inter-scale key similarity of
// every finer scale and the resulting layer classes, and the attention density d(i <- j); written as
// DIR/profile.json (usable as --ams-profile) and PNG plots.
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>

#include "commands.h"
#include "kv/policies/ams_policy.h"
#include "model/var_model.h"
#include "output_paths.h"
#ifdef AMSKV_HAVE_PLOTS
#include "report/plot.h"
#endif
#include "report_json.h"
#include "run_options.h"

namespace amskv::cli {

namespace {

nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

#ifdef AMSKV_HAVE_PLOTS
void write_plots(const std::string& dir, const model::VarConfig& cfg, const engine::GenerateResult& r,
                 const std::vector<double>& layer_mean, const std::vector<int>& demanding,
                 const std::optional<double>& theta) {
  const int K = cfg.schedule.num_scales(), D = static_cast<int>(cfg.depth);
  std::vector<std::string> scale_ticks, layer_ticks;
  for (int k = 0; k < K; ++k) scale_ticks.push_back(cat(cfg.schedule.patch_nums[k], "x", cfg.schedule.patch_nums[k]));
  for (int l = 0; l < D; ++l) layer_ticks.push_back(std::to_string(l));

  // Similarity: layers x finer scales.
  std::vector<std::vector<double>> sim(static_cast<size_t>(D));
  for (int l = 0; l < D; ++l) sim[l].assign(r.similarity[l].begin() + 1, r.similarity[l].end());
  report::HeatmapStyle hs;
  hs.title = "Inter-scale key similarity (keys of scale s-1 upsampled to s vs keys of s)";
  hs.x_label = "scale s";
  hs.y_label = "layer";
  hs.x_ticks.assign(scale_ticks.begin() + 1, scale_ticks.end());
  hs.y_ticks = layer_ticks;
  hs.colorbar_label = "cosine similarity";
  report::heatmap_png(dir + "/similarity_heatmap.png", sim, hs);

  // Per-layer mean similarity with the demanding layers marked.
  report::Series all{"mean similarity over scales", {}, {}}, marked{"cache-demanding layers", {}, {}, false};
  for (int l = 0; l < D; ++l) {
    all.x.push_back(l);
    all.y.push_back(layer_mean[l]);
  }
  for (int l : demanding) {
    marked.x.push_back(l);
    marked.y.push_back(layer_mean[l]);
  }
  report::LinePlotStyle ls;
  ls.title = "Layer similarity and the AMS-KV layer classes";
  ls.x_label = "layer";
  ls.y_label = "mean inter-scale key similarity";
  if (theta) {
    ls.reference_y = *theta;
    ls.reference_label = cat("theta = ", *theta);
  }
  report::line_plot_png(dir + "/similarity_per_layer.png", {all, marked}, ls);

  // Similarity against scale, one line per layer (the paper's curve).
  std::vector<report::Series> curves;
  for (int l = 0; l < D; ++l) {
    report::Series s{cat("layer ", l), {}, {}};
    for (int k = 1; k < K; ++k) {
      s.x.push_back(k);
      s.y.push_back(r.similarity[l][k]);
    }
    curves.push_back(std::move(s));
  }
  ls = {};
  ls.title = "Inter-scale key similarity per layer";
  ls.x_label = "scale index s";
  ls.y_label = "similarity";
  ls.legend = D > 12 ? report::LegendPlacement::None : report::LegendPlacement::Auto;
  report::line_plot_png(dir + "/similarity_per_scale.png", curves, ls);

  // Attention density: one map per layer (query scale j x key scale i), log colour scale, shared range.
  report::HeatmapStyle ds;
  ds.x_label = "key scale i";
  ds.y_label = "query scale j";
  ds.x_ticks = scale_ticks;
  ds.y_ticks = scale_ticks;
  ds.colorbar_label = "density d(i<-j)";
  ds.log_scale = true;
  ds.annotate = false;
  std::vector<std::vector<std::vector<double>>> maps;
  std::vector<std::string> titles;
  std::vector<std::vector<double>> mean(static_cast<size_t>(K), std::vector<double>(static_cast<size_t>(K), 0.0));
  for (int l = 0; l < D; ++l) {
    auto m = r.density[l];
    for (int j = 0; j < K; ++j)
      for (int i = 0; i < K; ++i) {
        mean[j][i] += m[j][i] / D;
        if (i > j) m[j][i] = std::nan("");
      }
    maps.push_back(std::move(m));
    titles.push_back(cat("layer ", l));
  }
  for (int j = 0; j < K; ++j)
    for (int i = j + 1; i < K; ++i) mean[j][i] = std::nan("");
  ds.title = "Attention density per layer";
  report::grid_of_heatmaps_png(dir + "/density_layers.png", maps, titles, ds, std::min(D, 6));
  ds.title = "Attention density, mean over layers";
  report::heatmap_png(dir + "/density_mean.png", mean, ds);
}
#endif

}  // namespace

void run_profile(const ProfileArgs& a) {
  const engine::JobOptions options = a.run.resolved();
  OutputCheck outputs(
      {{"--var", options.var_path}, {"--vae", options.vae_path}, {"--force-tokens", options.force_tokens}});
  outputs.folder("--out", a.out_dir,
                 {"profile.json", "similarity_heatmap.png", "similarity_per_layer.png", "similarity_per_scale.png",
                  "density_layers.png", "density_mean.png"});
  kv::PolicyOptions full;
  full.name = "full";
  const engine::GenerationJob job(options, full);
  const auto& cfg = job.var().config();
  engine::RunSettings settings;
  settings.analysis = {true, true};
  settings.decode = false;
  const auto r = job.run(settings, progress_printer(a.run.quiet));
  const int K = cfg.schedule.num_scales(), D = static_cast<int>(cfg.depth);

  // Layer classes by the same rule AMS-KV applies to a profile (offline mode).
  kv::AmsOptions ams = a.run.policy.ams;
  for (int l = 0; l < D; ++l) ams.profile_similarity.emplace_back(r.similarity[l].begin() + 1, r.similarity[l].end());
  ams.profile_source = "this run";
  kv::AmsPolicy classifier(ams, false);
  classifier.begin(model::kv_schedule(cfg));
  const nlohmann::json decision = classifier.describe();

  std::vector<double> layer_mean;
  nlohmann::json sim = nlohmann::json::array(), den = nlohmann::json::array();
  for (int l = 0; l < D; ++l) {
    nlohmann::json row = nlohmann::json::array();
    double sum = 0;
    int n = 0;
    for (int k = 1; k < K; ++k) {
      row.push_back(finite_or_null(r.similarity[l][k]));
      if (std::isfinite(r.similarity[l][k])) sum += r.similarity[l][k], ++n;
    }
    layer_mean.push_back(n ? sum / n : std::nan(""));
    sim.push_back(row);
    den.push_back(r.density[l]);
  }
  const auto demanding = classifier.demanding_layers();
  nlohmann::json j = {
      {"model", cfg.summary()},
      {"patch_nums", cfg.schedule.patch_nums},
      {"labels", a.run.labels_text},
      {"similarity", sim},
      {"similarity_scales", "s = 1..K-1"},
      {"layer_mean_similarity", layer_mean},
      {"density", den},
      {"density_layout", "density[layer][j][i]: attention mass from queries of scale j onto keys of scale i, per key of i"},
      {"demanding", demanding},
      {"ams", {{"condensed", decision["condensed"]}, {"cmin", decision["cmin"]}, {"cmax", decision["cmax"]},
               {"budgets", decision["budgets"]}}},
  };
  if (decision.contains("theta")) j["ams"]["theta"] = decision["theta"];
  else j["ams"]["demanding_fraction"] = decision["demanding_fraction"];
  outputs.create_folders();
  write_json_file(a.out_dir + "/profile.json", j);
#ifdef AMSKV_HAVE_PLOTS
  write_plots(a.out_dir, cfg, r, layer_mean, demanding, ams.theta);
  std::cout << "wrote " << a.out_dir << "/profile.json and plots; cache-demanding layers:";
#else
  std::cout << "wrote " << a.out_dir << "/profile.json (this build has no plotting: no PNGs); cache-demanding layers:";
#endif
  for (int l : demanding) std::cout << " " << l;
  std::cout << "\n";
}

}  // namespace amskv::cli
