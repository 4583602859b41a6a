// Damaged checkpoints: every command that runs a model refuses NaN/Inf weights naming file, tensor and count;
// `inspect` reports CRC-32 and NaN/Inf findings and fails on damage; a KV table's mistakes come before any
// checkpoint is read.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include "cli_fixture.h"
#include "io/tensor_file.h"
#include "io/torch_checkpoint.h"
#include "io/zip_archive.h"

namespace amskv::cli_test {
namespace {

// A copy of `src` (as .pth) whose tensor `key` holds a NaN and an infinity.
void save_with_non_finite(const std::string& src, const std::string& dst, const std::string& key) {
  const io::TensorMap t = io::load_tensor_file(src);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, tensor] : t.all()) {
    if (name != key) {
      tensors.emplace_back(name, tensor);
      continue;
    }
    const Tensor f = tensor.to_f32();
    Tensor bad = Tensor::zeros(DType::F32, f.shape());
    std::memcpy(bad.mutable_data<float>(), f.data<float>(), static_cast<size_t>(f.numel()) * sizeof(float));
    bad.mutable_data<float>()[3] = std::nanf("");
    bad.mutable_data<float>()[7] = -std::numeric_limits<float>::infinity();
    tensors.emplace_back(name, bad);
  }
  io::save_torch_checkpoint(dst, tensors);
}

TEST(CliCheckpoints, NanWeightsAreRefusedByEveryCommandThatRunsAModel) {
  TempDir tmp;
  save_with_non_finite(mini_var(), tmp / "nan_var.pth", "blocks.0.attn.proj.weight");
  const std::string model = " --var " + (tmp / "nan_var.pth") + " --vae " + mini_vae() + " -q";
  const std::vector<std::string> why = {tmp / "nan_var.pth", "tensor blocks.0.attn.proj.weight holds 2 NaN/Inf values",
                                        "(first at flat index 3)", "transformer checkpoint is damaged"};
  expect_cli_error("generate" + model + " --out " + (tmp / "o"), why);
  expect_cli_error("profile" + model + " --out " + (tmp / "p"), why);
  expect_cli_error("eval" + model, why);
  expect_cli_error("bench --var " + (tmp / "nan_var.pth") + " --vae " + mini_vae() + " --policies full", why);
  EXPECT_TRUE(files_in(tmp / "o").empty());
  save_with_non_finite(mini_vae(), tmp / "inf_vae.pth", "decoder.conv_in.weight");
  expect_cli_error("generate --var " + mini_var() + " --vae " + (tmp / "inf_vae.pth") + " -q --out " + (tmp / "o"),
                   {tmp / "inf_vae.pth", "decoder.conv_in.weight holds 2 NaN/Inf values", "VQVAE checkpoint"});
}

TEST(CliCheckpoints, InspectChecksCrcAndWeightsAndFailsOnDamage) {
  TempDir tmp;
  auto r = run_cli("inspect " + mini_var());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("CRC-32: OK"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("weights: all finite"), std::string::npos) << r.output;  // the -inf causal mask is skipped
  r = run_cli("inspect " + bundled_golden_dir() + "/mini/golden.safetensors");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("CRC-32: none recorded"), std::string::npos) << r.output;

  save_with_non_finite(mini_var(), tmp / "nan.pth", "head.weight");
  r = run_cli("inspect " + (tmp / "nan.pth"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("CRC-32: OK"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("weights: NOT FINITE: head.weight holds 2 NaN/Inf values"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("damaged checkpoint (2 NaN/Inf weights)"), std::string::npos) << r.output;

  // One flipped bit in a stored tensor: it still loads, but its entry's CRC-32 no longer matches.
  std::vector<uint8_t> bytes = io_test::read_bytes(mini_var());
  {
    const io::ZipArchive zip(bytes.data(), bytes.size(), "var.pth");
    const io::ZipEntry* entry = nullptr;
    for (const auto& e : zip.entries())
      if (e.name.find("/data/") != std::string::npos && e.method == 0 && (!entry || e.size > entry->size)) entry = &e;
    ASSERT_NE(entry, nullptr);
    bytes[zip.data_offset(*entry) + 1] ^= 0x10;
  }
  io_test::write_bytes(tmp / "flipped.pth", bytes);
  r = run_cli("inspect " + (tmp / "flipped.pth"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("CRC-32: MISMATCH"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("is corrupt (CRC-32 0x"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("damaged checkpoint (a CRC-32 mismatch"), std::string::npos) << r.output;
}

TEST(CliCheckpoints, PolicyInputsAreCheckedBeforeAnyCheckpointIsRead) {
  TempDir tmp;
  std::ofstream(tmp / "t.json") << R"({"default": {"window": -1}})";
  const std::string missing = " --var " + (tmp / "missing.pth") + " --vae " + (tmp / "missing_vae.pth") + " -q";
  expect_cli_error("generate" + missing + " --kv table --kv-table " + (tmp / "t.json") + " --out " + (tmp / "o"),
                   {tmp / "t.json", "window"});
  std::ofstream(tmp / "p.json") << R"({"ams": {"cmin": 50, "cmax": 10}, "similarity": [[0.5, 0.5, 0.5]]})";
  expect_cli_error("generate" + missing + " --kv ams --ams-profile " + (tmp / "p.json") + " --out " + (tmp / "o"),
                   {"C_max = 10", "p.json"});
  // Once the model is loaded, its depth: the mini model has one layer.
  std::ofstream(tmp / "deep.json") << R"({"layers": {"3": {"full": true}}})";
  expect_cli_error("plan --var " + mini_var() + " --kv table --kv-table " + (tmp / "deep.json"),
                   {"a rule for layer 3", "the model has 1 layers"});
}

}  // namespace
}  // namespace amskv::cli_test
