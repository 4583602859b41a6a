// Loads one golden case (see golden_dir.h for where each case lives): the transformer, the shared VQVAE, the reference
// tensors and the run settings from config.json.
#pragma once
#include <cmath>
#include <fstream>
#include <memory>
#include <string>
#include <utility>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_backend.h"
#include "engine/generator.h"
#include "golden_dir.h"
#include "io/tensor_file.h"
#include "kv/policies/recency_policy.h"

namespace amskv::golden {

struct GoldenCase {
  backend::CpuBackend cpu;  // first: the models below hold its memory
  std::string name, dir;
  nlohmann::json config;
  io::TensorMap ref;
  std::unique_ptr<model::VarModel> var;
  std::unique_ptr<model::Vqvae> vae;
  std::vector<int64_t> labels;

  explicit GoldenCase(const std::string& case_name) : name(case_name), dir(golden_case_dir(case_name)) {
    std::ifstream in(dir + "/config.json");
    config = nlohmann::json::parse(in);
    ref = io::load_tensor_file(dir + "/golden.safetensors");
    var = std::make_unique<model::VarModel>(cpu, io::load_tensor_file(dir + "/var.pth"));
    vae = std::make_unique<model::Vqvae>(cpu, io::load_tensor_file(dir + "/" + config["vae_file"].get<std::string>()));
    labels = config["labels"].get<std::vector<int64_t>>();
  }
  int num_scales() const { return var->config().schedule.num_scales(); }
  engine::GenerateOptions options() const {
    engine::GenerateOptions o;
    o.labels = labels;
    o.sampling.cfg = config["cfg"].get<double>();
    return o;
  }
};

// max |a - b| over max |ref|, the golden README's relative measure.
// One request run on the whole batch, then with one CFG row per transformer chunk and one image per head
// chunk (what the memory planner does for large batches), each with a fresh full cache.
struct WholeAndChunked {
  engine::GenerateResult whole, chunked;
};
inline WholeAndChunked run_whole_and_chunked(const model::VarModel& var, const model::Vqvae& vae,
                                             engine::GenerateOptions opt) {
  auto p1 = kv::make_full_policy(), p2 = kv::make_full_policy();
  WholeAndChunked r;
  r.whole = engine::generate(var, vae, *p1, opt);
  opt.plan.chunk_rows = 1;
  opt.plan.head_images = 1;
  r.chunked = engine::generate(var, vae, *p2, opt);
  return r;
}

inline double max_rel_error(const float* got, const Tensor& ref) {
  const auto r = ref.to_f64_vector();
  double err = 0.0, scale = 0.0;
  for (size_t i = 0; i < r.size(); ++i) {
    err = std::max(err, std::abs(got[i] - r[i]));
    scale = std::max(scale, std::abs(r[i]));
  }
  return err / std::max(scale, 1e-30);
}

inline double max_abs_error(const float* got, const Tensor& ref) {
  const auto r = ref.to_f64_vector();
  double err = 0.0;
  for (size_t i = 0; i < r.size(); ++i) err = std::max(err, std::abs(got[i] - r[i]));
  return err;
}

// Captures every intermediate of a run, keyed like the golden files ("x_in.3", "logits_cfg.0", ...).
class Recorder : public engine::GenerationObserver {
 public:
  std::map<std::string, std::vector<float>> values;
  void on_scale_input(int k, const float* x, int64_t rows, int64_t n, int64_t width) override {
    put(cat("x_in.", k), x, rows * n * width);
  }
  void on_logits_raw(int k, const float* l, int64_t rows, int64_t n, int64_t vocab) override {
    put(cat("logits_raw.", k), l, rows * n * vocab);
  }
  void on_logits_cfg(int k, const float* l, int64_t batch, int64_t n, int64_t vocab) override {
    put(cat("logits_cfg.", k), l, batch * n * vocab);
  }
  void on_fhat(int k, const float* f, int64_t batch, int64_t channels, int64_t side) override {
    put(cat("fhat.", k), f, batch * channels * side * side);
  }
  void on_next_map(int k, const float* m, int64_t batch, int64_t channels, int64_t side) override {
    put(cat("next_map.", k), m, batch * channels * side * side);
  }

 private:
  void put(const std::string& key, const float* p, int64_t n) { values[key].assign(p, p + n); }
};

}  // namespace amskv::golden
