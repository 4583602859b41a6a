// With no --var/--vae, commands run the shipped Fashion-MNIST model (weights/fashion-mnist), found beside the
// executable (a build folder in the repository, or an install's share/amskv) or in the source tree.
#include <gtest/gtest.h>

#include <filesystem>

#include "cli_fixture.h"
#include "io/png_reader.h"

namespace amskv::cli_test {
namespace {

namespace fs = std::filesystem;

TEST(CliDefaultModel, GenerateWithoutModelFlagsWritesFashionMnistImages) {
  TempDir tmp;
  const auto r = run_cli("generate --labels 0,9 --out " + (tmp / "o") + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* name : {"000000.png", "000001.png"}) {
    const io::PngImage png = io::read_png(tmp / (std::string("o/") + name));
    EXPECT_EQ(png.width, 32) << name;
    EXPECT_EQ(png.height, 32) << name;
    EXPECT_EQ(nlohmann::json::parse(png.text.at("amskv"))["var"]["name"], "var_fmnist.safetensors");
  }
}

TEST(CliDefaultModel, AnInstalledCopyUsesItsOwnWeights) {
  TempDir tmp;
  // An install: bin/amskv beside share/amskv/weights/fashion-mnist. Here that folder holds the mini model under
  // the shipped names, so the 64 px images prove which model ran.
  fs::create_directories(tmp / "bin");
  fs::create_directories(tmp / "share/amskv/weights/fashion-mnist");
  fs::copy_file(AMSKV_CLI_PATH, tmp / "bin/amskv");
  fs::copy_file(mini_var(), tmp / "share/amskv/weights/fashion-mnist/var_fmnist.safetensors");
  fs::copy_file(mini_vae(), tmp / "share/amskv/weights/fashion-mnist/vae_fmnist.safetensors");
  const std::string command = (tmp / "bin/amskv") + " generate --labels 1 -q --out " + (tmp / "o") + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  while (fgets(buf, sizeof buf, pipe)) output += buf;
  ASSERT_EQ(::pclose(pipe), 0) << output;
  EXPECT_EQ(io::read_png(tmp / "o/000000.png").width, 64);
}

TEST(CliDefaultModel, OnlyOneOfVarAndVaeIsRefused) {
  expect_cli_error("generate --vae " + mini_vae(), {"--var and --vae go together"});
  expect_cli_error("profile --var " + mini_var(), {"--var and --vae go together"});
}

}  // namespace
}  // namespace amskv::cli_test
