// The command line, end to end: golden cases through `amskv generate`/`profile`, and bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli_runner.h"
#include "golden_case.h"
#include "io/safetensors.h"
#include "io/torch_checkpoint.h"
#include "model/random_model.h"

namespace amskv::cli_test {
namespace {

struct CaseFiles {
  std::string dir, var, vae, golden, labels;
  double cfg;
  explicit CaseFiles(const std::string& name) {
    dir = golden_case_dir(name);
    std::ifstream in(dir + "/config.json");
    const auto config = nlohmann::json::parse(in);
    var = dir + "/var.pth";
    vae = dir + "/" + config["vae_file"].get<std::string>();
    golden = dir + "/golden.safetensors";
    for (auto l : config["labels"]) labels += (labels.empty() ? "" : ",") + std::to_string(l.get<int64_t>());
    cfg = config["cfg"].get<double>();
  }
  std::string model_args() const {
    return "--var " + var + " --vae " + vae + " --labels " + labels + " --cfg " + std::to_string(cfg) + " -q";
  }
};

class CliGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(CliGolden, ForcedTokensThroughTheCommandLine) {
  CaseFiles c(GetParam());
  TempDir tmp;
  const auto r = run_cli("generate " + c.model_args() + " --force-tokens " + c.golden + " --dump " + (tmp / "d.safetensors") +
                         " --dump-logits --out " + (tmp / "img"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto dump = io::load_tensor_file(tmp / "d.safetensors");
  const auto ref = io::load_tensor_file(c.golden);
  for (int k = 0; ref.contains(cat("forced.logits_cfg.", k)); ++k) {
    EXPECT_LE(golden::max_rel_error(dump.at(cat("logits_cfg.", k)).data<float>(), ref.at(cat("forced.logits_cfg.", k))), 1e-5);
    EXPECT_EQ(dump.at(cat("idx.", k)).to_f64_vector(), ref.at(cat("forced.idx.", k)).to_f64_vector());
  }
  EXPECT_LE(golden::max_abs_error(dump.at("image").data<float>(), ref.at("forced.image")), 1e-4);
  EXPECT_TRUE(std::filesystem::exists(tmp / "img/000000.png"));
}

TEST_P(CliGolden, EvictTableThroughTheCommandLine) {
  CaseFiles c(GetParam());
  TempDir tmp;
  std::ofstream(tmp / "table.json") << R"({"default": {"condensed": 2, "window": 1}, "layers": {"0": {"full": true}}})";
  const auto r = run_cli("generate " + c.model_args() + " --force-tokens " + c.golden + " --kv table --kv-table " +
                         (tmp / "table.json") + " --dump " + (tmp / "d.safetensors") + " --dump-logits --no-images");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto dump = io::load_tensor_file(tmp / "d.safetensors");
  const auto ref = io::load_tensor_file(c.golden);
  for (int k = 0; ref.contains(cat("evict.logits_cfg.", k)); ++k)
    EXPECT_LE(golden::max_rel_error(dump.at(cat("logits_cfg.", k)).data<float>(), ref.at(cat("evict.logits_cfg.", k))), 1e-5);
}

TEST_P(CliGolden, ProfileJsonMatchesReference) {
  CaseFiles c(GetParam());
  TempDir tmp;
  const auto r = run_cli("profile " + c.model_args() + " --force-tokens " + c.golden + " --out " + (tmp / "p"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(tmp / "p/profile.json");
  const auto j = nlohmann::json::parse(in);
  const auto ref = io::load_tensor_file(c.golden);
  for (size_t l = 0; l < j["similarity"].size(); ++l) {
    const auto sim = ref.at(cat("profile.similarity.", l)).to_f64_vector();
    for (size_t s = 0; s < sim.size(); ++s) EXPECT_NEAR(j["similarity"][l][s].get<double>(), sim[s], 1e-5);
    const auto den = ref.at(cat("profile.density.", l)).to_f64_vector();
    const size_t K = j["density"][l].size();
    for (size_t jj = 0; jj < K; ++jj)
      for (size_t i = 0; i < K; ++i) EXPECT_NEAR(j["density"][l][jj][i].get<double>(), den[jj * K + i], 1e-5);
  }
  for (const char* png : {"similarity_heatmap.png", "similarity_per_layer.png", "density_layers.png", "density_mean.png"})
    EXPECT_TRUE(std::filesystem::exists(tmp / (std::string("p/") + png))) << png;
}

INSTANTIATE_TEST_SUITE_P(Cases, CliGolden, ::testing::ValuesIn(golden_cases()));

TEST(Cli, GreedyTokensMatchReferenceThroughTheCommandLine) {
  CaseFiles c("mini");
  TempDir tmp;
  const auto r = run_cli("generate " + c.model_args() + " --top-k 1 --no-images --dump " + (tmp / "d.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto dump = io::load_tensor_file(tmp / "d.safetensors");
  const auto ref = io::load_tensor_file(c.golden);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(dump.at(cat("idx.", k)).to_f64_vector(), ref.at(cat("greedy.idx.", k)).to_f64_vector());
  EXPECT_LE(golden::max_abs_error(dump.at("image").data<float>(), ref.at("greedy.image")), 1e-4);
}

TEST(Cli, ReportHasTheMemoryNumbersAndBatchesDoNotChangeImages) {
  AMSKV_REQUIRE_SHARED_GOLDEN();
  CaseFiles c("std256");
  TempDir tmp;
  auto r = run_cli("generate " + c.model_args() + " --top-k 20 --seed 5 --kv ams --report " + (tmp / "r.json") +
                   " --no-images --dump " + (tmp / "a.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(tmp / "r.json");
  const auto j = nlohmann::json::parse(in);
  for (const char* key : {"stored_bytes", "resident_bytes", "allocated_bytes"}) {
    EXPECT_GT(j["kv"][key].get<int64_t>(), 0);
    EXPECT_GT(j["kv"]["full"][key].get<int64_t>(), j["kv"][key].get<int64_t>());
  }
  EXPECT_EQ(j["kv"]["policy"], "ams");
  EXPECT_EQ(j["time"]["per_scale_s"].size(), 10u);
  r = run_cli("generate " + c.model_args() + " --top-k 20 --seed 5 --kv ams --batch 1 --no-images --dump " +
              (tmp / "b.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto a = io::load_tensor_file(tmp / "a.safetensors"), b = io::load_tensor_file(tmp / "b.safetensors");
  for (int k = 0; k < 10; ++k) EXPECT_EQ(a.at(cat("idx.", k)).to_f64_vector(), b.at(cat("idx.", k)).to_f64_vector());
}

TEST(Cli, BadInputGivesOneLineErrorAndNothingHalfWritten) {
  CaseFiles c("mini");
  TempDir tmp;
  auto expect_fail = [&](const std::string& args, const std::string& needle) {
    const auto r = run_cli(args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.output.find(needle), std::string::npos) << "output: " << r.output;
  };
  expect_fail("generate --var " + (tmp / "missing.pth") + " --vae " + c.vae + " --out " + (tmp / "o"), "missing.pth");
  expect_fail("generate --var " + c.var + " --vae " + c.vae + " --labels 3,99 --out " + (tmp / "o"), "label 99");
  expect_fail("generate " + c.model_args() + " --cfg abc --out " + (tmp / "o"), "cfg");
  expect_fail("generate " + c.model_args() + " --kv bogus --out " + (tmp / "o"), "kv");
  expect_fail("generate " + c.model_args() + " --force-tokens " + c.var + " --out " + (tmp / "o"), "forced_idx.0");
  // A VQVAE whose codebook does not fit the transformer.
  model::RandomVqvaeSpec spec;
  spec.vocab = 256, spec.cvae = 16, spec.ch = 32;
  io::save_torch_checkpoint(tmp / "vae256.pth", model::random_vqvae_weights(spec));
  expect_fail("generate --var " + c.var + " --vae " + (tmp / "vae256.pth") + " --out " + (tmp / "o"), "codebook");
  // A truncated checkpoint.
  {
    std::ifstream src(c.var, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(src)), std::istreambuf_iterator<char>());
    std::ofstream(tmp / "cut.pth", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  expect_fail("generate --var " + (tmp / "cut.pth") + " --vae " + c.vae + " --out " + (tmp / "o"), "cut.pth");
  expect_fail("generate " + c.model_args() + " --cfg nan --out " + (tmp / "o"), "finite");
  expect_fail("generate " + c.model_args() + " --top-p nan --out " + (tmp / "o"), "finite");
  expect_fail("generate " + c.model_args() + " --threads 100000 --out " + (tmp / "o"), "threads");
  std::ofstream(tmp / "t99.json") << R"({"layers": {"99": {"full": true}}})";
  expect_fail("generate " + c.model_args() + " --kv table --kv-table " + (tmp / "t99.json") + " --out " + (tmp / "o"),
              "layer 99");
  std::ofstream(tmp / "tdup.json") << R"({"layers": {"1": {"full": true}, "01": {"window": 0}}})";
  expect_fail("generate " + c.model_args() + " --kv table --kv-table " + (tmp / "tdup.json") + " --out " + (tmp / "o"),
              "two rules");
  {
    std::vector<std::pair<std::string, Tensor>> forced;
    for (int k = 0; k < 4; ++k) forced.emplace_back(cat("forced_idx.", k), Tensor::zeros(DType::F32, {2, (k + 1) * (k + 1)}));
    io::save_safetensors(tmp / "float_tokens.safetensors", forced);
  }
  expect_fail("generate " + c.model_args() + " --force-tokens " + (tmp / "float_tokens.safetensors") + " --out " +
                  (tmp / "o"),
              "expected integer tokens");
  expect_fail("plan --shape d36 --batch 4611686018427387903", "batch");
  EXPECT_FALSE(std::filesystem::exists(tmp / "o/000000.png"));
}

TEST(Cli, ProfileInBatchesEqualsOneBatch) {
  AMSKV_REQUIRE_SHARED_GOLDEN();
  CaseFiles c("std256");
  TempDir tmp;
  auto r = run_cli("profile " + c.model_args() + " --top-k 20 --seed 3 --out " + (tmp / "a"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_cli("profile " + c.model_args() + " --top-k 20 --seed 3 --batch 1 --out " + (tmp / "b"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream ia(tmp / "a/profile.json"), ib(tmp / "b/profile.json");
  const auto a = nlohmann::json::parse(ia), b = nlohmann::json::parse(ib);
  for (size_t l = 0; l < a["similarity"].size(); ++l) {
    for (size_t s = 0; s < a["similarity"][l].size(); ++s)
      EXPECT_NEAR(a["similarity"][l][s].get<double>(), b["similarity"][l][s].get<double>(), 1e-5);  // fp32 rounding differs with batch size
    for (size_t j = 0; j < a["density"][l].size(); ++j)
      for (size_t i = 0; i < a["density"][l][j].size(); ++i)
        EXPECT_NEAR(a["density"][l][j][i].get<double>(), b["density"][l][j][i].get<double>(), 1e-5);
  }
}

TEST(Cli, RandomModelInspectAndConvertRoundTrip) {
  TempDir tmp;
  auto r = run_cli("random-model --shape tiny --out " + (tmp / "m"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_cli("inspect " + (tmp / "m/var_tiny.pth"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("VAR depth 2, width 128"), std::string::npos) << r.output;
  r = run_cli("convert " + (tmp / "m/var_tiny.pth") + " " + (tmp / "m/var_tiny.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string common = " --vae " + (tmp / "m/vae_ch160v4096z32.pth") + " --labels 1,2 --top-k 10 --seed 1 -q --no-images";
  r = run_cli("generate --var " + (tmp / "m/var_tiny.pth") + common + " --dump " + (tmp / "a.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_cli("generate --var " + (tmp / "m/var_tiny.safetensors") + common + " --dump " + (tmp / "b.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto a = io::load_tensor_file(tmp / "a.safetensors"), b = io::load_tensor_file(tmp / "b.safetensors");
  EXPECT_EQ(a.at("image").to_f64_vector(), b.at("image").to_f64_vector());
}

}  // namespace
}  // namespace amskv::cli_test

namespace amskv::cli_test {
namespace {

TEST(Cli, EvalSweepWritesTableJsonAndPlots) {
  CaseFiles c("mini");
  TempDir tmp;
  const auto r = run_cli("eval " + c.model_args() + " --top-k 20 --kv ams --sweep --sweep-budgets 5,14,29 --json " +
                         (tmp / "e.json") + " --out " + (tmp / "e"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("| policy"), std::string::npos);
  std::ifstream in(tmp / "e.json");
  const auto j = nlohmann::json::parse(in);
  ASSERT_EQ(j["runs"].size(), 3u);
  // Budget 29 holds every stored scale of the 1,2,3,4 schedule (1 + 4 + 9 + ... = 14 < 29): identical to full.
  EXPECT_EQ(j["runs"][2]["mean_ssim"].get<double>(), 1.0);
  for (const auto& v : j["runs"][2]["token_agreement"]) EXPECT_EQ(v.get<double>(), 1.0);
  EXPECT_TRUE(std::filesystem::exists(tmp / "e/quality_memory.png"));
}

}  // namespace
}  // namespace amskv::cli_test

namespace amskv::cli_test {
namespace {

TEST(Cli, ProfileFeedsAmsOfflineAndPlanPrintsReductions) {
  AMSKV_REQUIRE_SHARED_GOLDEN();
  CaseFiles c("std256");
  TempDir tmp;
  auto r = run_cli("profile " + c.model_args() + " --force-tokens " + c.golden + " --out " + (tmp / "p"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_cli("generate " + c.model_args() + " --force-tokens " + c.golden + " --kv ams --ams-profile " +
              (tmp / "p/profile.json") + " --no-images --report " + (tmp / "r.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(tmp / "r.json");
  const auto j = nlohmann::json::parse(in);
  EXPECT_NE(j["kv"]["settings"]["decision_basis"].get<std::string>().find("profile"), std::string::npos);
  r = run_cli("plan --shape d30 --kv ams --ams-cmin 100 --ams-cmax 200 --kv-memory-gib 80");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("allocated 84.14%"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("largest batch"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace amskv::cli_test
