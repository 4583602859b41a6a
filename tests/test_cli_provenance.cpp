// Generated PNGs say how they were made, `inspect` shows it, and `generate --from` regenerates the image
// exactly (same pixels) after checking that the checkpoints are the ones recorded.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli_fixture.h"
#include "io/file_hash.h"
#include "io/png_reader.h"
#include "io/png_writer.h"

namespace amskv::cli_test {
namespace {

namespace fs = std::filesystem;

nlohmann::json record_of(const std::string& png) {
  return nlohmann::json::parse(io::read_png(png, /*pixels=*/false).text.at("amskv"));
}

TEST(CliProvenance, EveryPngRecordsHowItWasMade) {
  TempDir tmp;
  const auto r = run_cli("generate " + mini_args() + " --labels 4,1,-1 --seed 7 --cfg 2.5 --top-k 10 --top-p 0.9 "
                         "--kv sink --kv-window 2 --batch 2 --out " + (tmp / "o"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json j = record_of(tmp / "o/000002.png");
  EXPECT_EQ(j["format"], 1);
  EXPECT_EQ(j["engine"].get<std::string>().rfind("amskv ", 0), 0u);
  EXPECT_EQ(j["var"]["path"], fs::absolute(mini_var()).lexically_normal().string());
  EXPECT_EQ(j["var"]["name"], "var.pth");
  EXPECT_EQ(j["var"]["bytes"], fs::file_size(mini_var()));
  EXPECT_EQ(j["var"]["hash"], io::xxh64_hex(io::file_xxh64(mini_var())));
  EXPECT_EQ(j["vae"]["hash"], io::xxh64_hex(io::file_xxh64(mini_vae())));
  EXPECT_EQ(j["label"], -1);
  EXPECT_EQ(j["image_index"], 2);
  EXPECT_EQ(j["seed"], 7);
  EXPECT_EQ(j["sampling"]["cfg"], 2.5);
  EXPECT_EQ(j["sampling"]["top_k"], 10);
  EXPECT_EQ(j["sampling"]["top_p"], 0.9);
  EXPECT_EQ(j["sampling"]["more_smooth"], false);
  EXPECT_EQ(j["schedule"], nlohmann::json({1, 2, 3, 4}));
  EXPECT_EQ(j["kv"]["policy"], "sink");
  EXPECT_EQ(j["kv"]["window"], 2);
  EXPECT_EQ(j["kv"]["describe"]["policy"], "sink");  // the policy's own describe()
  EXPECT_EQ(j["kv"]["describe"]["default"]["window"], 2);
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_EQ(j["dtype"], "f32");
  EXPECT_EQ(j["kv_dtype"], "auto");
  // Image 2 was the second batch, alone.
  EXPECT_EQ(j["batch"]["first_image_index"], 2);
  EXPECT_EQ(j["batch"]["labels"], nlohmann::json({-1}));
  EXPECT_EQ(record_of(tmp / "o/000001.png")["batch"]["labels"], nlohmann::json({4, 1}));
  // The grid carries the run's settings without per-image fields.
  const nlohmann::json grid = record_of(tmp / "o/grid.png");
  EXPECT_EQ(grid["labels"], nlohmann::json({4, 1, -1}));
  EXPECT_FALSE(grid.contains("label"));
  EXPECT_FALSE(grid.contains("image_index"));
  // inspect recognises a PNG by its bytes, whatever its name.
  fs::copy_file(tmp / "o/000002.png", tmp / "image.bin");
  const auto shown = run_cli("inspect " + (tmp / "image.bin"));
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_NE(shown.output.find("64x64 PNG"), std::string::npos) << shown.output;
  EXPECT_NE(shown.output.find("\"seed\": 7"), std::string::npos) << shown.output;
}

TEST(CliProvenance, FromRegeneratesTheSamePixels) {
  TempDir tmp;
  auto r = run_cli("generate " + mini_args() + " --labels 4,1,3 --seed 11 --top-k 20 --kv window --kv-window 2 --out " +
                   (tmp / "o"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_cli("generate -q --from " + (tmp / "o/000001.png") + " --out " + (tmp / "again"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(files_in(tmp / "again"), std::vector<std::string>{"000001.png"});
  const io::PngImage a = io::read_png(tmp / "o/000001.png"), b = io::read_png(tmp / "again/000001.png");
  EXPECT_EQ(b.height, a.height);
  EXPECT_EQ(b.width, a.width);
  EXPECT_TRUE(b.rgb == a.rgb) << "pixels differ";
  EXPECT_EQ(b.text.at("amskv"), a.text.at("amskv"));
  // A KV table travels in the PNG: no table file is needed to regenerate.
  std::ofstream(tmp / "t.json") << R"({"default": {"condensed": 1, "window": 1}, "layers": {"0": {"full": true}}})";
  r = run_cli("generate " + mini_args() + " --labels 2,0 --seed 3 --kv table --kv-table " + (tmp / "t.json") +
              " --out " + (tmp / "t"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  fs::remove(tmp / "t.json");
  r = run_cli("generate -q --from " + (tmp / "t/000000.png") + " --out " + (tmp / "t2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(io::read_png(tmp / "t/000000.png").rgb == io::read_png(tmp / "t2/000000.png").rgb);
  // The 8-bit KV store changes the image like a dtype does: it is recorded and repeated.
  r = run_cli("generate " + mini_args() + " --labels 5 --seed 9 --kv-dtype int8 --out " + (tmp / "q"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(record_of(tmp / "q/000000.png")["kv_dtype"], "int8");
  r = run_cli("generate -q --from " + (tmp / "q/000000.png") + " --out " + (tmp / "q2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(io::read_png(tmp / "q/000000.png").rgb == io::read_png(tmp / "q2/000000.png").rgb);
}

TEST(CliProvenance, FromChecksTheCheckpointsAndWhatItIsGiven) {
  TempDir tmp;
  fs::copy_file(mini_var(), tmp / "var.pth");
  auto r = run_cli("generate --var " + (tmp / "var.pth") + " --vae " + mini_vae() + " -q --labels 4,1 --out " +
                   (tmp / "o"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string from = "generate -q --from " + (tmp / "o/000000.png") + " --out " + (tmp / "again");
  // Another checkpoint given in its place, or the recorded one changed since.
  expect_cli_error(from + " --var " + mini_vae() + " --vae " + mini_vae(),
                   {mini_vae(), "but " + (tmp / "o/000000.png") + " was made from", "xxh64:", "--var"});
  std::ofstream(tmp / "var.pth", std::ios::app) << "x";
  expect_cli_error(from, {tmp / "var.pth", "was made from", "give the checkpoint it was made from with --var"});
  fs::remove(tmp / "var.pth");
  expect_cli_error(from, {tmp / "var.pth", "cannot open it"});
  // The copy elsewhere is fine when named.
  r = run_cli(from + " --var " + mini_var() + " --vae " + mini_vae());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // Not a generated image, or the grid of a whole run.
  const std::vector<float> gray(3 * 4 * 4, 0.5f);
  io::write_png(tmp / "plain.png", gray.data(), 4, 4);
  expect_cli_error("generate --from " + (tmp / "plain.png"), {"plain.png: no amskv settings"});
  expect_cli_error("generate --from " + (tmp / "o/grid.png"), {"settings of a whole run"});
  expect_cli_error("generate --from " + mini_var(), {"not a PNG"});
}

}  // namespace
}  // namespace amskv::cli_test
