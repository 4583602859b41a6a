// Outputs are checked before any work, never overwrite an input, and a run that fails midway leaves only
// complete images and says how many.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli_fixture.h"
#include "io/png_reader.h"
#include "io/safetensors.h"

namespace amskv::cli_test {
namespace {

namespace fs = std::filesystem;

TEST(CliOutputs, UnusableOutputPathsAreRefusedBeforeAnyImage) {
  TempDir tmp;
  std::ofstream(tmp / "file") << "x";
  fs::create_directories(tmp / "dir");
  fs::create_directories(tmp / "taken/000001.png");  // a folder where an image goes
  const std::string run = "generate " + mini_args() + " --labels 4,1 --out " + (tmp / "o");
  expect_cli_error(run + " --report " + (tmp / "file/r.json"), {"--report", tmp / "file/r.json", "is not a folder"});
  expect_cli_error(run + " --dump " + (tmp / "file/d.safetensors"), {"--dump", "is not a folder"});
  expect_cli_error(run + " --report " + (tmp / "dir"), {"--report", tmp / "dir", "is a folder"});
  expect_cli_error(run + " --dump /dev/null", {"--dump /dev/null", "not a regular file"});
  expect_cli_error(run + " --report " + (tmp / "out/"), {"--report", "names a folder"});
  expect_cli_error("generate " + mini_args() + " --labels 4,1 --out " + (tmp / "file"), {"--out", "not a folder"});
  expect_cli_error("generate " + mini_args() + " --labels 4,1 --out " + (tmp / "file/sub"), {"--out", "not a folder"});
  expect_cli_error("generate " + mini_args() + " --labels 4,1 --out " + (tmp / "taken"),
                   {"--out", "000001.png", "is a folder"});
  EXPECT_TRUE(files_in(tmp / "o").empty());
  EXPECT_EQ(files_in(tmp / "taken").size(), 1u);
  // profile, bench and random-model check theirs the same way.
  expect_cli_error("profile " + mini_args() + " --out " + (tmp / "file"), {"--out", "not a folder"});
  expect_cli_error("bench --shapes tiny --json " + (tmp / "file/b.json"), {"--json", "is not a folder"});
  expect_cli_error("random-model --shape tiny --out " + (tmp / "file"), {"--out", "not a folder"});
}

TEST(CliOutputs, MissingFoldersOfFileOutputsAreCreated) {
  TempDir tmp;
  const auto r = run_cli("generate " + mini_args() + " --labels 4 --no-images --report " + (tmp / "new/r.json") +
                         " --dump " + (tmp / "new/deeper/d.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(exists(tmp / "new/r.json"));
  EXPECT_TRUE(exists(tmp / "new/deeper/d.safetensors"));
}

TEST(CliOutputs, AnOutputThatIsAnInputIsRefused) {
  TempDir tmp;
  fs::copy_file(mini_var(), tmp / "var.pth");
  fs::copy_file(mini_vae(), tmp / "vae.pth");
  fs::create_symlink(tmp / "var.pth", tmp / "link.pth");
  const std::string model = " --var " + (tmp / "var.pth") + " --vae " + (tmp / "vae.pth") + " -q --labels 4,1";
  const std::string g = "generate" + model + " --no-images";
  expect_cli_error(g + " --dump " + (tmp / "var.pth"), {"--dump", "is the same file as --var"});
  expect_cli_error(g + " --report " + (tmp / "vae.pth"), {"--report", "is the same file as --vae"});
  expect_cli_error(g + " --dump " + (tmp / "link.pth"), {"--dump", "is the same file as --var"});
  // An image that would land on the VQVAE.
  fs::create_directories(tmp / "o");
  fs::copy_file(mini_vae(), tmp / "o/000001.png");
  expect_cli_error("generate --var " + (tmp / "var.pth") + " --vae " + (tmp / "o/000001.png") +
                       " -q --labels 4,1 --out " + (tmp / "o"),
                   {"--out", "000001.png", "is the same file as --vae"});
  std::ofstream(tmp / "table.json") << R"({"default": {"condensed": 1, "window": 1}})";
  expect_cli_error(g + " --kv table --kv-table " + (tmp / "table.json") + " --report " + (tmp / "table.json"),
                   {"--report", "is the same file as --kv-table"});
  expect_cli_error("convert " + (tmp / "var.pth") + " " + (tmp / "link.pth"), {"output", "is the same file as input"});
  EXPECT_EQ(io_test::read_bytes(tmp / "var.pth"), io_test::read_bytes(mini_var()));
  EXPECT_EQ(io_test::read_bytes(tmp / "vae.pth"), io_test::read_bytes(mini_vae()));
}

TEST(CliOutputs, TwoOutputsNamingOneFileAreRefused) {
  TempDir tmp;
  expect_cli_error("generate " + mini_args() + " --no-images --dump " + (tmp / "x") + " --report " + (tmp / "./x"),
                   {"--dump and --report name the same file"});
  expect_cli_error(
      "generate " + mini_args() + " --labels 4,1 --out " + (tmp / "o") + " --report " + (tmp / "o/grid.png"),
      {"--report", "is also written by --out"});
}

// Forced tokens for labels 4,1,2 of the mini model; scale 0 of image `bad_row` holds a token beyond the
// vocabulary of 64, which its batch only finds when it runs.
std::string forced_tokens(const TempDir& tmp, int64_t rows, int64_t bad_row) {
  std::vector<std::pair<std::string, Tensor>> forced;
  for (int k = 0; k < 4; ++k) {
    Tensor t = Tensor::zeros(DType::I64, {rows, (k + 1) * (k + 1)});
    if (k == 0 && bad_row >= 0) t.mutable_data<int64_t>()[bad_row] = 999;
    forced.emplace_back(cat("forced_idx.", k), t);
  }
  const std::string path = tmp / "forced.safetensors";
  io::save_safetensors(path, forced);
  return path;
}

TEST(CliOutputs, ForcedTokensWithFewerRowsThanLabelsAreRefusedUpFront) {
  TempDir tmp;
  expect_cli_error("generate " + mini_args() + " --labels 4,1,2 --batch 1 --force-tokens " +
                       forced_tokens(tmp, 2, -1) + " --out " + (tmp / "o"),
                   {"forced_idx.0 has shape [2, 1], expected [3, 1] (one row per label)"});
  EXPECT_TRUE(files_in(tmp / "o").empty());
}

TEST(CliOutputs, AFailedBatchLeavesCompleteImagesAndSaysHowMany) {
  TempDir tmp;
  const auto r = run_cli("generate " + mini_args() + " --labels 4,1,2 --batch 1 --force-tokens " +
                         forced_tokens(tmp, 3, 2) + " --out " + (tmp / "o"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("holds token 999 outside the vocabulary of 64"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(2 of 3 images were written to " + (tmp / "o") + ")"), std::string::npos) << r.output;
  auto files = files_in(tmp / "o");
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"000000.png", "000001.png"}));  // no temporaries, no grid
  for (const std::string& f : files) EXPECT_EQ(io::read_png(tmp / ("o/" + f)).width, 64) << f;
}

}  // namespace
}  // namespace amskv::cli_test
