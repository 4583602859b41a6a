// `amskv eval` with quality measures (class accuracy, FD) and --reduction targeting.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "golden_dir.h"

namespace amskv::cli_test {
namespace {

const std::string kWeights = std::string(AMSKV_SOURCE_DIR) + "/weights/fashion-mnist";

std::string fmnist_args() {
  return "--var " + kWeights + "/var_fmnist.safetensors --vae " + kWeights +
         "/vae_fmnist.safetensors --cfg 3 --top-p 0.95 --threads 1 -q";
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// The shipped model finds its classifier and test statistics beside it; full and the policy are judged.
TEST(CliEvalQuality, ShippedModelIsJudgedWithItsClassifier) {
  TempDir tmp;
  const auto r = run_cli("eval " + fmnist_args() + " --per-class 1 --kv window --kv-window 2 --json " + (tmp / "e.json") +
                         " --markdown " + (tmp / "t/e.md"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("class acc"), std::string::npos) << r.output;
  const auto j = read_json(tmp / "e.json");
  EXPECT_EQ(j["images"].get<int64_t>(), 10);
  EXPECT_EQ(j["labels"], nlohmann::json({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  for (const auto& q : {j["full_quality"], j["runs"][0]["quality"]}) {
    const double acc = q["class_consistency"]["accuracy"].get<double>();
    EXPECT_GE(acc, 0.0);
    EXPECT_LE(acc, 1.0);
    EXPECT_GT(q["fd"]["distance"].get<double>(), 0.0);
    EXPECT_EQ(q["class_consistency"]["scored"].get<int64_t>(), 10);
  }
  EXPECT_NE(j["quality_reference"]["reference_stats"].get<std::string>().find("fmnist_test_features"),
            std::string::npos);
  std::ifstream md(tmp / "t/e.md");
  const std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("Command: `"), std::string::npos);
  EXPECT_NE(text.find("--per-class 1"), std::string::npos);
}

// --reduction runs, per family and target, the planned setting closest to it; a setting chosen for two
// targets runs once.
TEST(CliEvalQuality, ReductionTargetsPickOneSettingPerFamily) {
  TempDir tmp;
  const std::string dir = golden_case_dir("mini");
  const auto r = run_cli("eval --var " + dir + "/var.pth --vae " + dir +
                         "/../vae-V64-Cvae8-ch32-s121-dec-f16.pth --labels 4,1 -q --reduction 20,90 "
                         "--families window,uniform --json " + (tmp / "e.json") + " --out " + (tmp / "plots"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("| target"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no classifier_fmnist.safetensors"), std::string::npos) << r.output;  // mini has none
  const auto j = read_json(tmp / "e.json");
  int targets = 0;
  for (const auto& run : j["runs"]) {
    const std::string family = run["family"];
    EXPECT_TRUE(family == "window" || family == "uniform") << family;
    targets += static_cast<int>(run["targets_percent"].size());
    EXPECT_FALSE(run.contains("quality"));
    // The plan and the run agree on the reduction (depth 1: no online decisions to differ).
    EXPECT_NEAR(run["planned_resident_reduction"].get<double>(), run["kv"]["reduction"]["resident"].get<double>(),
                1e-9);
  }
  EXPECT_EQ(targets, 4);  // 2 families x 2 targets, however many distinct settings that took
#ifdef AMSKV_HAVE_PLOTS
  EXPECT_TRUE(std::filesystem::exists(tmp / "plots/quality_memory.png"));
#endif
}

// With an 8-bit KV store the default families leave h2o (single tokens) out, and naming it is refused.
TEST(CliEvalQuality, EightBitStoreRunsTheWholeScaleFamilies) {
  TempDir tmp;
  const std::string dir = golden_case_dir("mini");
  const std::string base = "eval --var " + dir + "/var.pth --vae " + dir +
                           "/../vae-V64-Cvae8-ch32-s121-dec-f16.pth --labels 4,1 -q --reduction 50 --kv-dtype int8";
  const auto r = run_cli(base + " --json " + (tmp / "e.json") + " --out " + (tmp / "plots"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::set<std::string> families;
  const auto j = read_json(tmp / "e.json");
  for (const auto& run : j["runs"]) families.insert(run["family"].get<std::string>());
  EXPECT_EQ(families, (std::set<std::string>{"ams", "sink", "window", "uniform"}));
  const auto refused = run_cli(base + " --families ams,h2o");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("--families h2o: the 8-bit KV store"), std::string::npos) << refused.output;
}

TEST(CliEvalQuality, MismatchedOrIncompleteQualityInputsAreRefused) {
  const std::string dir = golden_case_dir("mini");
  const std::string mini = "eval --var " + dir + "/var.pth --vae " + dir + "/../vae-V64-Cvae8-ch32-s121-dec-f16.pth -q ";
  auto r = run_cli(mini + "--reference-stats " + kWeights + "/fmnist_test_features.safetensors");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--reference-stats needs --classifier"), std::string::npos) << r.output;
  r = run_cli(mini + "--classifier " + kWeights + "/classifier_fmnist.safetensors");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("10 classes cannot judge a model of 5 classes"), std::string::npos) << r.output;
  r = run_cli(mini + "--reduction 120");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("not a percentage"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace amskv::cli_test
