// The golden cases on every non-CPU backend present: fp32 within 10x the golden tolerances; bf16/f16
// against the CPU fp32 engine within the reduced-precision tolerances of the golden README; every cache
// policy on the device equal to the same policy on the CPU; and results independent of the batch chunking.
#include <gtest/gtest.h>

#include <algorithm>
#include <tuple>

#include "backends_under_test.h"
#include "golden_case.h"
#include "kv/policies/recency_policy.h"
#include "kv/policy_factory.h"

namespace amskv::golden {
namespace {

using test::BackendUnderTest;

struct DeviceModels {
  std::unique_ptr<backend::Backend> be;
  std::unique_ptr<model::VarModel> var;
  std::unique_ptr<model::Vqvae> vae;
  DeviceModels(const BackendUnderTest& b, const GoldenCase& g) : be(test::make_backend_under_test(b)) {
    var = std::make_unique<model::VarModel>(*be, io::load_tensor_file(g.dir + "/var.pth"));
    vae = std::make_unique<model::Vqvae>(
        *be, io::load_tensor_file(g.dir + "/" + g.config["vae_file"].get<std::string>()));
  }
};

using Param = std::tuple<std::string, BackendUnderTest>;

class GpuGolden : public ::testing::TestWithParam<Param> {};

std::vector<Param> params() {
  std::vector<Param> out;
  for (const auto& b : test::other_backends())
    for (const auto& c : golden_cases()) out.emplace_back(c, b);
  return out;
}

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  std::string n = std::get<0>(info.param) + "_" + std::get<1>(info.param).name;
  for (char& c : n)
    if (c == '-') c = '_';
  return n;
}

TEST_P(GpuGolden, ForcedRun) {
  const auto& [name, b] = GetParam();
  GoldenCase g(name);
  DeviceModels d(b, g);
  auto opt = g.options();
  opt.forced_tokens = &g.ref;
  auto policy = kv::make_full_policy();
  Recorder rec;
  const auto res = engine::generate(*d.var, *d.vae, *policy, opt, &rec);
  const bool f32 = b.compute == DType::F32;
  for (int k = 0; k < g.num_scales(); ++k) {
    SCOPED_TRACE(cat(b.name, " scale ", k));
    // fp32: 10x the golden tolerances; reduced precision: guided logits within 1e-2 relative.
    EXPECT_LE(max_rel_error(rec.values[cat("logits_cfg.", k)].data(), g.ref.at(cat("forced.logits_cfg.", k))),
              f32 ? 1e-4 : 1e-2);
    if (f32) {
      EXPECT_LE(max_rel_error(rec.values[cat("x_in.", k)].data(), g.ref.at(cat("forced.x_in.", k))), 1e-4);
      EXPECT_LE(max_rel_error(rec.values[cat("fhat.", k)].data(), g.ref.at(cat("forced.fhat.", k))), 1e-4);
    }
  }
  // Images: bf16 carries 8 bits of mantissa through the decoder's activations (fp16 carries 11).
  EXPECT_LE(max_abs_error(res.images.data<float>(), g.ref.at("forced.image")),
            f32 ? 1e-3 : (b.compute == DType::BF16 ? 6e-2 : 3e-2));
}

TEST_P(GpuGolden, GreedyTokensUpToTheFirstNarrowMargin) {
  const auto& [name, b] = GetParam();
  GoldenCase g(name);
  DeviceModels d(b, g);
  auto opt = g.options();
  opt.sampling.top_k = 1;
  auto policy = kv::make_full_policy();
  const auto res = engine::generate(*d.var, *d.vae, *policy, opt);
  // fp32 follows the golden README's tie rule (1e-3); reduced precision may diverge below a margin of 0.1.
  const double margin_limit = b.compute == DType::F32 ? 1e-3 : 0.1;
  const int64_t B = static_cast<int64_t>(g.labels.size());
  std::vector<bool> stop(static_cast<size_t>(B), false);
  for (int k = 0; k < g.num_scales(); ++k) {
    const auto ref = g.ref.at(cat("greedy.idx.", k)).to_f64_vector();
    const auto margin = g.ref.at(cat("greedy.top2_margin.", k)).to_f64_vector();
    const int64_t n = res.tokens[k].dim(1);
    for (int64_t i = 0; i < B; ++i)
      for (int64_t t = 0; t < n && !stop[i]; ++t) {
        const size_t at = static_cast<size_t>(i * n + t);
        if (margin[at] < margin_limit) {
          stop[i] = true;
          break;
        }
        ASSERT_EQ(res.tokens[k].data<int64_t>()[at], static_cast<int64_t>(ref[at])) << b.name << " image " << i
                                                                                    << " scale " << k;
      }
  }
}

// Each policy on the device gives what it gives on the CPU (forced tokens, so the caches see the same
// history): the same retained scales through a different memory and kernel. `reduced_tol` bounds the guided
// logits of bf16/f16 backends (f32: 1e-4).
static void expect_policies_match_the_cpu(const GoldenCase& g, const DeviceModels& d, const BackendUnderTest& b,
                                   const std::vector<std::string>& policies, double reduced_tol) {
  auto opt = g.options();
  opt.forced_tokens = &g.ref;
  opt.keep_logits = true;
  opt.decode_images = false;
  for (const std::string& policy : policies) {
    kv::PolicyOptions po;
    po.name = policy;
    po.budget = 12;
    po.window = 2;
    po.ams.cmin = 10;
    po.ams.cmax = 20;
    po.ams.condensed = 1;
    auto pc = kv::make_policy(po), pd = kv::make_policy(po);
    const auto rc = engine::generate(*g.var, *g.vae, *pc, opt);
    const auto rd = engine::generate(*d.var, *d.vae, *pd, opt);
    for (size_t k = 0; k < rc.logits_cfg.size(); ++k)
      EXPECT_LE(max_rel_error(rd.logits_cfg[k].data<float>(), rc.logits_cfg[k]),
                b.compute == DType::F32 ? 1e-4 : reduced_tol)
          << b.name << " " << policy << " scale " << k;
    EXPECT_EQ(rc.kv.footprint.stored_tokens, rd.kv.footprint.stored_tokens) << policy;
    EXPECT_EQ(rc.kv.footprint.allocated_tokens, rd.kv.footprint.allocated_tokens) << policy;
    // An 8-bit store has one width on every backend (16-bit and float32 stores differ): both stored 8 bits.
    if (g.cpu.kv_dtype() == DType::I8) EXPECT_EQ(rc.kv.bytes_per_token, rd.kv.bytes_per_token) << policy;
  }
}

TEST_P(GpuGolden, EveryPolicyMatchesTheCpu) {
  const auto& [name, b] = GetParam();
  GoldenCase g(name);
  DeviceModels d(b, g);
  std::vector<std::string> policies = {"full", "ams", "window", "sink", "uniform"};
  // h2o picks tokens by their accumulated attention, so bf16 rounding can flip a close pick: compare it in f32.
  if (b.compute == DType::F32) policies.push_back("h2o");
  expect_policies_match_the_cpu(g, d, b, policies, 1e-2);
}

// The 8-bit KV store on the device against the CPU's: both round the same values alike (the device's are
// its compute dtype's), and AMS-KV decides from keys read out of the 8-bit store.
TEST_P(GpuGolden, EightBitStoreMatchesTheCpu) {
  const auto& [name, b] = GetParam();
  GoldenCase g(name);
  DeviceModels d(b, g);
  g.cpu.set_kv_int8(true);
  d.be->set_kv_int8(true);
  expect_policies_match_the_cpu(g, d, b, {"full", "ams", "sink"}, 2e-2);
}

// Splitting a batch into row chunks (transformer scratch) and image chunks (head and sampling) changes
// nothing but the order of work.
TEST_P(GpuGolden, ChunkedBatchEqualsWholeBatch) {
  const auto& [name, b] = GetParam();
  GoldenCase g(name);
  DeviceModels d(b, g);
  for (const bool int8 : {false, true}) {  // an 8-bit store's scales must follow the chunk's rows too
    d.be->set_kv_int8(int8);
    auto opt = g.options();
    opt.sampling.top_k = 20;
    opt.sampling.seed = 3;
    opt.keep_logits = true;
    const auto [whole, chunked] = run_whole_and_chunked(*d.var, *d.vae, opt);
    for (size_t k = 0; k < whole.tokens.size(); ++k)
      EXPECT_EQ(whole.tokens[k].to_f64_vector(), chunked.tokens[k].to_f64_vector())
          << b.name << (int8 ? " int8" : "") << " scale " << k;
  }
}

// Scales recorded once and replayed (CUDA graphs) give exactly what launching every kernel gives, also when a
// later run with the same batch updates the recorded steps with new arguments (another seed, other labels)
// and with a policy whose decisions come from keys measured on the device (ams).
TEST_P(GpuGolden, RecordedStepsEqualLaunchedKernels) {
  const auto& [name, b] = GetParam();
  GoldenCase g(name);
  DeviceModels d(b, g);
  if (!d.be->can_record_steps()) GTEST_SKIP() << b.name << " does not record steps";
  for (const std::string policy : {"full", "ams"}) {
    kv::PolicyOptions po;
    po.name = policy;
    po.ams.cmin = 10;
    po.ams.cmax = 20;
    po.ams.condensed = 1;
    auto opt = g.options();
    opt.sampling.top_k = 20;
    opt.time_ops = false;
    for (uint64_t seed : {3u, 5u, 5u}) {
      SCOPED_TRACE(cat(b.name, " ", policy, " seed ", seed));
      opt.sampling.seed = seed;
      std::reverse(opt.labels.begin(), opt.labels.end());
      opt.record_steps = false;
      auto p1 = kv::make_policy(po), p2 = kv::make_policy(po);
      const auto launched = engine::generate(*d.var, *d.vae, *p1, opt);
      opt.record_steps = true;
      const auto recorded = engine::generate(*d.var, *d.vae, *p2, opt);
      EXPECT_FALSE(launched.steps_recorded);
      EXPECT_TRUE(recorded.steps_recorded);
      for (size_t k = 0; k < launched.tokens.size(); ++k)
        EXPECT_EQ(launched.tokens[k].to_f64_vector(), recorded.tokens[k].to_f64_vector()) << "scale " << k;
      EXPECT_EQ(max_abs_error(recorded.images.data<float>(), launched.images), 0.0);
    }
  }
}

// A Generator records a whole request once and replays it for later requests of the same shape: each replay
// (other labels, other image numbers) gives what a fresh, launched request gives. Another seed records anew;
// ams without a profile reads the device mid-run, so it runs launched; with a profile its layers are decided
// before the run, and it is replayed. Also with an 8-bit KV store.
TEST_P(GpuGolden, ReplayedGenerationsEqualLaunchedOnes) {
  const auto& [name, b] = GetParam();
  GoldenCase g(name);
  DeviceModels d(b, g);
  if (!d.be->can_record_steps()) GTEST_SKIP() << b.name << " does not record steps";
  const auto& cfg = d.var->config();
  for (const std::string policy : {"full", "sink", "ams", "ams-profile", "sink-int8"}) {
    d.be->set_kv_int8(policy == "sink-int8");  // the 8-bit store's writes are recorded like any kernel
    kv::PolicyOptions po;
    po.name = policy == "ams-profile" ? "ams" : policy == "sink-int8" ? "sink" : policy;
    po.ams.cmin = 10;
    po.ams.cmax = 20;
    po.ams.condensed = 1;
    if (policy == "ams-profile") {  // layer l's keys change more from scale to scale the deeper it is
      for (int64_t l = 0; l < cfg.depth; ++l)
        po.ams.profile_similarity.emplace_back(cfg.schedule.num_scales() - 1, 0.9 - 0.1 * static_cast<double>(l));
      po.ams.profile_source = "test profile";
    }
    engine::Generator generator(*d.var, *d.vae);
    auto opt = g.options();
    opt.sampling.top_k = 20;
    opt.time_ops = false;
    const auto labels = opt.labels;
    struct Run {
      uint64_t seed, first_image;
      bool reversed, replayed;
    };
    const bool kept = policy != "ams";  // only ams without a profile reads the device mid-run
    for (const Run r : {Run{3, 0, false, false}, Run{3, 7, true, kept}, Run{3, 0, false, kept}, Run{5, 2, true, false},
                        Run{5, 2, false, kept}}) {
      SCOPED_TRACE(cat(b.name, " ", policy, " seed ", r.seed, " first image ", r.first_image));
      opt.sampling.seed = r.seed;
      opt.first_image_index = r.first_image;
      opt.labels = labels;
      if (r.reversed) std::reverse(opt.labels.begin(), opt.labels.end());
      opt.record_steps = false;
      auto p1 = kv::make_policy(po), p2 = kv::make_policy(po);
      const auto launched = engine::generate(*d.var, *d.vae, *p1, opt);
      opt.record_steps = true;
      const auto replayed = generator.generate(*p2, opt);
      EXPECT_EQ(replayed.steps_recorded, kept);  // ams without a profile runs launched
      EXPECT_EQ(replayed.replayed, r.replayed);
      for (size_t k = 0; k < launched.tokens.size(); ++k)
        EXPECT_EQ(launched.tokens[k].to_f64_vector(), replayed.tokens[k].to_f64_vector()) << "scale " << k;
      EXPECT_EQ(max_abs_error(replayed.images.data<float>(), launched.images), 0.0);
      EXPECT_EQ(replayed.kv.footprint.allocated_tokens, launched.kv.footprint.allocated_tokens);
      EXPECT_EQ(replayed.policy.dump(), launched.policy.dump());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, GpuGolden, ::testing::ValuesIn(params()), param_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GpuGolden);

}  // namespace
}  // namespace amskv::golden
