// amskv eval: what a policy costs against `full` on the same seeds and labels: token agreement per scale,
// PSNR and SSIM of the images, the three KV memory numbers, attention and total time; and, where a
// classifier is at hand (the shipped Fashion-MNIST model has one), the quality of the images themselves:
// class consistency and the Fréchet distance of classifier features to real test images, for every policy
// and for `full`. --sweep repeats it over budgets of one policy; --reduction 50,75,85 picks, for every
// policy family, the setting closest to each resident-KV reduction (planned, not run) and compares the
// families at equal memory.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include "commands.h"
#include "engine/reduction_targets.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "io/tensor_file.h"
#include "kv/memory_report.h"
#include "kv/policy_factory.h"
#include "model/var_config.h"
#include "model/var_model.h"
#include "output_paths.h"
#include "quality/quality_judge.h"
#include "report/image_metrics.h"
#include "report/markdown_table.h"
#ifdef AMSKV_HAVE_PLOTS
#include "report/plot.h"
#endif
#include "report_json.h"
#include "run_options.h"

namespace amskv::cli {

namespace {

namespace fs = std::filesystem;

// The files the shipped Fashion-MNIST model comes with (weights/fashion-mnist/).
constexpr const char* kClassifierFile = "classifier_fmnist.safetensors";
constexpr const char* kReferenceStatsFile = "fmnist_test_features.safetensors";

struct EvalArgs {
  RunOptions run;
  std::string json_path, markdown_path, out_dir = "eval";
  bool sweep = false;
  std::vector<int64_t> sweep_budgets;
  std::vector<double> reductions;  // percent
  std::vector<std::string> families;
  int64_t per_class = 0;
  std::string classifier_path, reference_stats_path;
  std::string replot_path;
  bool no_quality = false;
};

// One policy setting to run, and why (the --reduction targets it was chosen for).
struct Variant {
  kv::PolicyOptions options;
  std::string family, setting;
  std::vector<double> targets;  // percent
  double planned_reduction = NAN;
};

std::string fmt(double v, const char* f = "%.4f") {
  if (std::isinf(v)) return "inf";
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// The command line as typed (Linux), for the table's provenance; arguments with spaces are quoted.
std::string command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()), out, arg;
  for (char ch : all) {
    if (ch != '\0') {
      arg += ch;
      continue;
    }
    if (!out.empty()) out += ' ';
    out += arg.find_first_of(" \t'\"$") == std::string::npos ? arg : "'" + arg + "'";
    arg.clear();
  }
  return out.empty() ? "amskv eval" : out;
}

std::string utc_date() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
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
  j["identical_images"] = B - finite;
  j["mean_ssim"] = ssim_sum / B;
  j["kv"] = mem.to_json(pol.kv, pol.policy);
  j["time"] = {{"total_s", pol.time.total_s}, {"attention_s", pol.time.attention_s}};
  return j;
}

// --classifier/--reference-stats, or the shipped files next to the model; none: no quality columns.
std::optional<quality::QualityJudge> make_judge(const EvalArgs& a, const engine::GenerationJob& job) {
  if (a.no_quality) return std::nullopt;
  std::string classifier = a.classifier_path, stats = a.reference_stats_path;
  AMSKV_CHECK(stats.empty() || !classifier.empty(), "--reference-stats needs --classifier (the features are its)");
  if (classifier.empty()) {
    const std::string& var = job.options().var_path;
    const fs::path dir = var.empty() ? fs::path("weights/fashion-mnist") : fs::path(var).parent_path();
    std::error_code ec;
    if (!fs::exists(dir / kClassifierFile, ec) || !fs::exists(dir / kReferenceStatsFile, ec)) {
      std::cerr << "quality: no " << kClassifierFile << " and " << kReferenceStatsFile << " next to the model; "
                << "pass --classifier and --reference-stats for class accuracy and FD\n";
      return std::nullopt;
    }
    classifier = (dir / kClassifierFile).string();
    stats = (dir / kReferenceStatsFile).string();
  }
  quality::QualityJudge judge(job.backend(), classifier, stats);
  AMSKV_CHECK(judge.num_classes() == job.var().config().num_classes, classifier, ": a classifier of ",
              judge.num_classes(), " classes cannot judge a model of ", job.var().config().num_classes,
              " classes (", job.options().var_path, ")");
  return judge;
}

std::vector<Variant> sweep_variants(const EvalArgs& a, const model::VarConfig& cfg) {
  std::vector<int64_t> budgets = a.sweep_budgets;
  const int K = cfg.schedule.num_scales();
  const bool by_scales = a.run.policy.name == "window" || a.run.policy.name == "sink";
  if (budgets.empty() && by_scales) {  // windows of 1 .. K-1 scales
    for (int w = 1; w < K; ++w) budgets.push_back(w);
  } else if (budgets.empty()) {  // condensed + fractions of the largest stored scale up to everything
    const int64_t cond = cfg.schedule.tokens(0) + (K > 1 ? cfg.schedule.tokens(1) : 0);
    for (double f : {0.25, 0.5, 1.0, 1.5, 2.0, 3.0})
      budgets.push_back(cond + static_cast<int64_t>(f * cfg.schedule.tokens(K - 2)));
  }
  std::vector<Variant> out;
  for (int64_t b : budgets) {
    kv::PolicyOptions p = a.run.policy;
    if (p.name == "uniform") p.budget = b;
    else if (by_scales) p.window = static_cast<int>(b);
    else {
      p.ams.cmin = b;
      p.ams.cmax = a.run.policy.ams.cmax ? std::max(*a.run.policy.ams.cmax, b) : 2 * b;
    }
    out.push_back({p, p.name, "", {}, NAN});
  }
  return out;
}

// For every family and target, the planned setting closest to it; a setting chosen for several targets
// runs once.
std::vector<Variant> reduction_variants(const EvalArgs& a, const model::VarConfig& cfg) {
  std::vector<std::string> families = a.families;
  // An 8-bit store keeps whole scales: families whose policies keep single tokens are left out of the
  // default list, and refused when named.
  const bool int8 = a.run.job.backend.kv_dtype == "int8";
  const auto single_tokens = [](const std::string& family) {
    kv::PolicyOptions po;
    po.name = family;
    return kv::make_policy(po)->token_level();
  };
  if (families.empty()) {
    families = engine::searchable_policy_families();
    if (int8) std::erase_if(families, single_tokens);
  }
  for (const std::string& family : families)
    AMSKV_CHECK(!int8 || !single_tokens(family), "--families ", family, ": the 8-bit KV store (--kv-dtype int8) "
                "keeps whole scales, and ", family, " keeps single tokens");
  std::vector<Variant> out;
  for (const std::string& family : families) {
    kv::PolicyOptions base;
    if (a.run.policy.name == family) base = a.run.policy;  // its other knobs (--ams-demanding-fraction, ...)
    const auto candidates = engine::policy_candidates(family, cfg, base);
    for (double target : a.reductions) {
      const engine::PolicyCandidate& c = engine::closest_to_reduction(candidates, target / 100.0);
      auto same = std::find_if(out.begin(), out.end(), [&](const Variant& v) { return v.setting == c.setting; });
      if (same != out.end()) {
        same->targets.push_back(target);
        continue;
      }
      out.push_back({c.options, family, c.setting, {target}, c.planned_resident_reduction});
    }
  }
  return out;
}

std::string targets_text(const std::vector<double>& targets) {
  std::string s;
  for (double t : targets) s += (s.empty() ? "" : ", ") + fmt(t, "%g") + "%";
  return s.empty() ? "-" : s;
}

// The plots of --sweep and --reduction, drawn from the results JSON alone (what --json writes), so that a run
// made where no plotting library is (the GPU machine) is plotted later with --replot. One series per family,
// x = the measured resident-KV reduction.
void plot_eval(const nlohmann::json& results, const std::string& out_dir) {
#ifdef AMSKV_HAVE_PLOTS
  struct Point {
    std::string family;
    double reduction, psnr, ssim, agree, accuracy, fd;
  };
  auto number = [](const nlohmann::json& j, const char* key) {
    return j.contains(key) && j[key].is_number() ? j[key].get<double>() : NAN;
  };
  std::vector<Point> points;
  AMSKV_CHECK(results.contains("runs") && results["runs"].is_array(), "eval results: no \"runs\" array");
  for (const auto& c : results["runs"]) {
    Point p{c.value("family", std::string("?")), 100.0 * c.at("kv").at("reduction").at("resident").get<double>(),
            number(c, "mean_psnr_finite_db"), number(c, "mean_ssim"), number(c, "mean_token_agreement"), NAN, NAN};
    if (c.contains("quality")) {
      p.accuracy = c["quality"]["class_consistency"]["accuracy"].get<double>();
      if (c["quality"].contains("fd")) p.fd = c["quality"]["fd"]["distance"].get<double>();
    }
    points.push_back(p);
  }
  report::LinePlotStyle ls;
  ls.x_label = "resident KV reduction vs the reference cache (%)";
  auto series_of = [&](double Point::*field, const std::string& suffix) {
    std::vector<report::Series> s;
    for (const Point& p : points) {
      auto it = std::find_if(s.begin(), s.end(), [&](const report::Series& x) { return x.label == p.family + suffix; });
      if (it == s.end()) s.push_back({p.family + suffix, {}, {}}), it = s.end() - 1;
      it->x.push_back(p.reduction);
      it->y.push_back(p.*field);
    }
    return s;
  };
  std::filesystem::create_directories(out_dir);
  std::vector<std::string> written;
  auto plot = [&](const std::string& name, const std::vector<report::Series>& s, report::LinePlotStyle style) {
    report::line_plot_png(out_dir + "/" + name, s, style);
    written.push_back(out_dir + "/" + name);
  };
  if (results.contains("full_quality")) {
    const auto& fq = results["full_quality"];
    ls.title = "Class accuracy of generated images by KV policy";
    ls.y_label = "class accuracy (classifier agrees with label)";
    ls.reference_y = fq["class_consistency"]["accuracy"].get<double>();
    ls.reference_label = "full cache";
    plot("quality_accuracy.png", series_of(&Point::accuracy, ""), ls);
    if (fq.contains("fd")) {
      ls.title = "Fréchet distance to real test images by KV policy (lower is better)";
      ls.y_label = "FD of classifier features";
      ls.reference_y = fq["fd"]["distance"].get<double>();
      plot("quality_fd.png", series_of(&Point::fd, ""), ls);
    }
    ls.reference_y.reset();
    ls.reference_label.clear();
  }
  ls.title = "Image PSNR against full";
  ls.y_label = "PSNR (dB)";
  plot("quality_memory_psnr.png", series_of(&Point::psnr, ""), ls);
  ls.title = "SSIM and token agreement against full";
  ls.y_label = "fraction";
  ls.y_min = 0.0;
  ls.y_max = 1.0;
  auto both = series_of(&Point::ssim, " SSIM");
  for (auto& s : series_of(&Point::agree, " tokens equal")) both.push_back(s);
  plot("quality_memory.png", both, ls);
  for (const auto& w : written) std::cout << "wrote " << w << "\n";
#else
  (void)results;
  (void)out_dir;
  std::cout << "this build has no plotting: the results are in the table and --json (plot them with --replot)\n";
#endif
}

void run_eval(EvalArgs a) {
  if (!a.replot_path.empty()) {  // plots of an earlier run, nothing generated
    OutputCheck outputs({{"--replot", a.replot_path}});
    outputs.folder("--out", a.out_dir,
                   {"quality_accuracy.png", "quality_fd.png", "quality_memory_psnr.png", "quality_memory.png"});
    const nlohmann::json results = io::read_json_file(a.replot_path, "eval results");
    try {
      plot_eval(results, a.out_dir);
    } catch (const nlohmann::json::exception& e) {
      fail(a.replot_path, ": not the results of amskv eval --json (", e.what(), ")");
    }
    return;
  }
  if (a.per_class > 0) {  // labels 0..C-1, each per_class times, needs the model's class count: set below
    AMSKV_CHECK(a.run.labels_text == "0", "--per-class replaces --labels; give one or the other");
  }
  AMSKV_CHECK(!(a.sweep && !a.reductions.empty()), "--sweep and --reduction are different experiments; pick one");
  for (double r : a.reductions)
    AMSKV_CHECK(r > 0 && r < 100, "--reduction: ", r, " is not a percentage in (0, 100)");
  engine::JobOptions job_options = a.run.resolved();
  // Every output checked now, not after an hour of generation (output_paths.h).
  OutputCheck outputs({{"--var", job_options.var_path},
                       {"--vae", job_options.vae_path},
                       {"--force-tokens", job_options.force_tokens},
                       {"--classifier", a.classifier_path},
                       {"--reference-stats", a.reference_stats_path}});
  outputs.file("--json", a.json_path);
  outputs.file("--markdown", a.markdown_path);
  if (a.sweep || !a.reductions.empty())
    outputs.folder("--out", a.out_dir,
                   {"quality_accuracy.png", "quality_fd.png", "quality_memory_psnr.png", "quality_memory.png"});
  if (a.per_class > 0) {
    // The classes are known only once the model is read; the job checks labels against them again.
    AMSKV_CHECK(!job_options.var_path.empty(), "--per-class needs the model (--var) to know its classes");
    const int64_t classes = model::infer_var_config(io::load_tensor_file(job_options.var_path)).num_classes;
    job_options.labels.clear();
    for (int64_t c = 0; c < classes; ++c)
      for (int64_t i = 0; i < a.per_class; ++i) job_options.labels.push_back(c);
  }

  kv::PolicyOptions full_opt;
  full_opt.name = "full";
  const engine::GenerationJob job(job_options, full_opt);  // full needs the most memory of all policies
  const auto& cfg = job.var().config();
  const int64_t B = job.images();
  const int64_t rows = 2 * job.batch_size();
  const auto progress = progress_printer(a.run.quiet);
  const std::optional<quality::QualityJudge> judge = make_judge(a, job);
  outputs.create_folders();
  const std::vector<int64_t>& labels = job.options().labels;

  std::vector<Variant> variants;
  if (a.sweep) variants = sweep_variants(a, cfg);
  else if (!a.reductions.empty()) variants = reduction_variants(a, cfg);
  else variants.push_back({a.run.policy, a.run.policy.name, "", {}, NAN});

  const auto full = job.run(full_opt, {}, progress);
  const std::string command = command_line(), date = utc_date();
  nlohmann::json out = {{"command", command},
                        {"date", date},
                        {"model", cfg.summary()},
                        {"var", job.options().var_path},
                        {"vae", job.options().vae_path},
                        {"backend", job.backend().name()},
                        {"images", B},
                        {"labels", labels},
                        {"sampling",
                         {{"cfg", job.options().sampling.cfg},
                          {"top_k", job.options().sampling.top_k},
                          {"top_p", job.options().sampling.top_p},
                          {"seed", job.options().sampling.seed}}},
                        {"full_time", {{"total_s", full.time.total_s}, {"attention_s", full.time.attention_s}}}};
  std::optional<quality::QualityScores> full_quality;
  if (judge) {
    full_quality = judge->judge(full.images, labels);
    out["quality_reference"] = judge->describe();
    out["full_quality"] = full_quality->to_json();
  }

  const bool by_target = !a.reductions.empty();
  std::vector<std::vector<std::string>> rows_md;
  for (Variant& v : variants) {
    const auto r = job.run(v.options, {}, progress);
    nlohmann::json c = compare(full, r, cfg, rows);
    std::string setting = v.setting;
    if (setting.empty() || setting == v.family) {  // --sweep or a single policy: describe from its report
      setting = v.options.name;
      const auto& s = c["kv"]["settings"];
      if (s.contains("cmin")) setting += cat(" ", s["cmin"].get<int64_t>(), "/", s["cmax"].get<int64_t>());
      if (v.options.name == "window" || v.options.name == "sink") setting += cat(" w=", v.options.window);
    }
    const auto& agree = c["token_agreement"];
    double mean_agree = 0.0;
    for (const auto& x : agree) mean_agree += x.get<double>() / static_cast<double>(agree.size());
    const auto& red = c["kv"]["reduction"];
    const double resident = red["resident"].get<double>();
    double accuracy = NAN, fd = NAN;
    if (judge) {
      const quality::QualityScores q = judge->judge(r.images, labels);
      accuracy = q.consistency.accuracy();
      if (q.fd) fd = q.fd->distance();
      c["quality"] = q.to_json();
    }
    std::vector<std::string> row = {setting};
    if (by_target) row.push_back(targets_text(v.targets));
    row.push_back(fmt(100.0 * resident, "%.1f%%"));
    if (judge) row.push_back(fmt(100.0 * accuracy, "%.1f%%")), row.push_back(fmt(fd, "%.3f"));
    for (const std::string& cell :
         {fmt(c["mean_psnr_finite_db"].get<double>(), "%.2f"), fmt(c["mean_ssim"].get<double>()),
          fmt(mean_agree, "%.3f") + " / " + fmt(agree.back().get<double>(), "%.3f"),
          fmt(100.0 * red["stored"].get<double>(), "%.1f%%"), fmt(100.0 * red["allocated"].get<double>(), "%.1f%%"),
          fmt(c["kv"]["resident_bytes"].get<double>() / 1048576.0, "%.2f"), fmt(r.time.attention_s, "%.2f"),
          fmt(r.time.total_s, "%.1f")})
      row.push_back(cell);
    rows_md.push_back(row);
    c["mean_token_agreement"] = mean_agree;
    c["setting"] = setting;
    c["family"] = v.family;
    if (by_target) {
      c["targets_percent"] = v.targets;
      c["planned_resident_reduction"] = v.planned_reduction;
    }
    out["runs"].push_back(c);
  }

  // The engine's own full cache already saves against the reference (vanilla VAR keeps the last scale of every
  // layer; this engine never stores the last scale and computes it in one transient buffer).
  const auto full_mem = kv::make_memory_report(full.kv, model::kv_schedule(cfg), rows);
  out["full_kv"] = full_mem.to_json(full.kv, full.policy);
  std::vector<std::string> full_row = {"full"};
  if (by_target) full_row.push_back("-");
  full_row.push_back(fmt(100.0 * full_mem.reduction(&kv::MemoryNumbers::resident_bytes), "%.1f%%"));
  if (judge)
    full_row.push_back(fmt(100.0 * full_quality->consistency.accuracy(), "%.1f%%")),
        full_row.push_back(full_quality->fd ? fmt(full_quality->fd->distance(), "%.3f") : "-");
  for (const std::string& cell :
       {std::string("inf"), std::string("1.0000"), std::string("1.000 / 1.000"),
        fmt(100.0 * full_mem.reduction(&kv::MemoryNumbers::stored_bytes), "%.1f%%"),
        fmt(100.0 * full_mem.reduction(&kv::MemoryNumbers::allocated_bytes), "%.1f%%"),
        fmt(full_mem.policy.resident_bytes / 1048576.0, "%.2f"), fmt(full.time.attention_s, "%.2f"),
        fmt(full.time.total_s, "%.1f")})
    full_row.push_back(cell);
  rows_md.push_back(full_row);

  std::vector<std::string> header = {"policy"};
  if (by_target) header.push_back("target");
  header.push_back("resident KV −");
  if (judge) header.push_back("class acc"), header.push_back("FD");
  for (const char* h : {"PSNR dB vs full", "SSIM vs full", "tokens = full (mean / last scale)", "stored KV −",
                        "allocated KV −", "resident MiB", "attention s", "total s"})
    header.push_back(h);
  const std::string table = report::markdown_table(header, rows_md);
  std::string preamble = cat("Command: `", command, "`  \nDate: ", date, "; ", B, " images (", full.images.dim(2), "x",
                             full.images.dim(3), "), cfg ", job.options().sampling.cfg, ", top-k ",
                             job.options().sampling.top_k, ", top-p ", job.options().sampling.top_p, ", seed ",
                             job.options().sampling.seed, " (the same images and seeds for every policy); ",
                             cfg.summary(), "; ", job.backend().name(), "; full: ",
                             fmt(full.time.total_s / static_cast<double>(B), "%.3f"), " s per image\n");
  if (judge)
    preamble += cat("Class acc: the classifier (", judge->classifier_path(),
                    ") agrees with the requested label; FD: Fréchet distance of its features to ",
                    judge->has_reference() ? judge->stats_path() : std::string("(no reference statistics)"),
                    ".\n");
  preamble += cat("KV reductions (−) are against the reference cache of vanilla VAR (every scale of every layer: ",
                  fmt(full_mem.reference.resident_bytes / 1048576.0, "%.2f"), " MiB per batch of ", job.batch_size(),
                  " images); the engine's own full cache is below it already.\n");
  out["table"] = table;
  out["markdown"] = preamble + "\n" + table;
  std::cout << preamble << "\n" << table;
  if (!a.json_path.empty()) write_json_file(a.json_path, out);
  if (!a.markdown_path.empty()) {
    io::AtomicFile f(a.markdown_path);
    const std::string text = preamble + "\n" + table;
    f.write(text.data(), text.size());
    f.commit();
  }

  if (a.sweep || by_target) plot_eval(out, a.out_dir);
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Fidelity, memory, time and image quality of KV policies against full");
  add_run_options(*cmd, a->run, true);
  cmd->add_option("--json", a->json_path, "Write the results as JSON");
  cmd->add_option("--markdown", a->markdown_path, "Write the table (with the command and date) as markdown");
  cmd->add_flag("--sweep", a->sweep, "Repeat over budgets and plot the quality-memory curve");
  cmd->add_option("--sweep-budgets", a->sweep_budgets, "Budgets (tokens; scales for window/sink) for --sweep, e.g. 50,100,200")
      ->delimiter(',');
  cmd->add_option("--reduction", a->reductions,
                  "Resident-KV reductions in percent, e.g. 50,75,85: for every policy family the planned setting "
                  "closest to each is run")
      ->delimiter(',')
      ->check(finite_number)
      ->default_str("none: only the --kv policy");
  cmd->add_option("--families", a->families, "Policy families for --reduction")
      ->delimiter(',')
      ->check(CLI::IsMember(engine::searchable_policy_families()))
      ->default_str("ams,sink,window,uniform,h2o");
  cmd->add_option("--per-class", a->per_class, "Instead of --labels: every class N times (0,0,..,1,1,..)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->default_str("off: --labels");
  cmd->add_option("--classifier", a->classifier_path,
                  "Classifier for class accuracy and FD")
      ->default_str("classifier_fmnist.safetensors beside --var");
  cmd->add_option("--reference-stats", a->reference_stats_path,
                  "Feature statistics of real images for FD")
      ->default_str("fmnist_test_features.safetensors beside --var");
  cmd->add_flag("--no-quality", a->no_quality, "Skip class accuracy and FD");
  cmd->add_option("--replot", a->replot_path,
                  "Only draw the plots of an earlier run from its --json (e.g. one made on a machine without plots)");
  cmd->add_option("--out", a->out_dir, "Folder for the plots of --sweep and --reduction")->capture_default_str();
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace amskv::cli
