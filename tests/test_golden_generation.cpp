// The engine against the PyTorch reference on every golden case, with the golden README's tolerances.
#include <gtest/gtest.h>

#include "golden_case.h"
#include "kv/memory_plan.h"
#include "kv/policies/ams_policy.h"
#include "kv/policy_factory.h"
#include "kv/policies/recency_policy.h"

#include <cstring>

namespace amskv::golden {
namespace {

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, ForcedRunMatchesEveryIntermediate) {
  GoldenCase g(GetParam());
  auto opt = g.options();
  opt.forced_tokens = &g.ref;
  auto policy = kv::make_full_policy();
  Recorder rec;
  const auto res = engine::generate(*g.var, *g.vae, *policy, opt, &rec);
  const int K = g.num_scales();
  for (int k = 0; k < K; ++k) {
    SCOPED_TRACE(cat("scale ", k));
    EXPECT_LE(max_rel_error(rec.values[cat("x_in.", k)].data(), g.ref.at(cat("forced.x_in.", k))), 1e-5);
    EXPECT_LE(max_rel_error(rec.values[cat("logits_cfg.", k)].data(), g.ref.at(cat("forced.logits_cfg.", k))), 1e-5);
    if (g.ref.contains(cat("forced.logits_raw.", k)))
      EXPECT_LE(max_rel_error(rec.values[cat("logits_raw.", k)].data(), g.ref.at(cat("forced.logits_raw.", k))), 1e-5);
    EXPECT_LE(max_rel_error(rec.values[cat("fhat.", k)].data(), g.ref.at(cat("forced.fhat.", k))), 1e-5);
    if (k + 1 < K)
      EXPECT_LE(max_rel_error(rec.values[cat("next_map.", k)].data(), g.ref.at(cat("forced.next_map.", k))), 1e-5);
    const auto idx = g.ref.at(cat("forced.idx.", k)).to_f64_vector();
    const int64_t* got = res.tokens[k].data<int64_t>();
    for (size_t i = 0; i < idx.size(); ++i) ASSERT_EQ(got[i], static_cast<int64_t>(idx[i]));
  }
  EXPECT_LE(max_abs_error(res.images.data<float>(), g.ref.at("forced.image")), 1e-4);
}

TEST_P(Golden, GreedyRunMatchesTokensUpToTiesAndImage) {
  GoldenCase g(GetParam());
  auto opt = g.options();
  opt.sampling.top_k = 1;
  auto policy = kv::make_full_policy();
  const auto res = engine::generate(*g.var, *g.vae, *policy, opt);
  const int K = g.num_scales();
  const int64_t B = static_cast<int64_t>(g.labels.size());
  std::vector<bool> tied(static_cast<size_t>(B), false);
  for (int k = 0; k < K; ++k) {
    const auto ref = g.ref.at(cat("greedy.idx.", k)).to_f64_vector();
    const auto margin = g.ref.at(cat("greedy.top2_margin.", k)).to_f64_vector();
    const int64_t n = res.tokens[k].dim(1);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t t = 0; t < n && !tied[b]; ++t) {
        const size_t i = static_cast<size_t>(b * n + t);
        if (margin[i] < 1e-3) {
          tied[b] = true;  // a legitimate rounding tie: compare this image no further
          break;
        }
        ASSERT_EQ(res.tokens[k].data<int64_t>()[i], static_cast<int64_t>(ref[i])) << "image " << b << " scale " << k;
      }
    }
  }
  const Tensor& ref_img = g.ref.at("greedy.image");
  const int64_t per = ref_img.numel() / B;
  const auto ref = ref_img.to_f64_vector();
  for (int64_t b = 0; b < B; ++b) {
    if (tied[b]) continue;
    double err = 0.0;
    for (int64_t i = 0; i < per; ++i)
      err = std::max(err, std::abs(res.images.data<float>()[b * per + i] - ref[b * per + i]));
    EXPECT_LE(err, 1e-4) << "image " << b;
  }
}

TEST_P(Golden, EvictingTableCacheMatchesReference) {
  GoldenCase g(GetParam());
  auto opt = g.options();
  opt.forced_tokens = &g.ref;
  // The golden evict case: layer 0 keeps everything; other layers keep scales {0, 1} and the previous one.
  auto policy = kv::make_table_policy_from_json(
      nlohmann::json::parse(R"({"default": {"condensed": 2, "window": 1}, "layers": {"0": {"full": true}}})"), "test");
  Recorder rec;
  engine::generate(*g.var, *g.vae, *policy, opt, &rec);
  for (int k = 0; k < g.num_scales(); ++k)
    EXPECT_LE(max_rel_error(rec.values[cat("logits_cfg.", k)].data(), g.ref.at(cat("evict.logits_cfg.", k))), 1e-5)
        << "scale " << k;
}

TEST_P(Golden, ProfileSimilarityAndDensityMatchReference) {
  GoldenCase g(GetParam());
  auto opt = g.options();
  opt.forced_tokens = &g.ref;
  opt.analysis = {true, true};
  auto policy = kv::make_full_policy();
  const auto res = engine::generate(*g.var, *g.vae, *policy, opt);
  const int K = g.num_scales();
  for (int l = 0; l < static_cast<int>(res.similarity.size()); ++l) {
    const auto sim = g.ref.at(cat("profile.similarity.", l)).to_f64_vector();
    for (int s = 1; s < K; ++s) EXPECT_NEAR(res.similarity[l][s], sim[s - 1], 1e-5) << "layer " << l << " scale " << s;
    const auto den = g.ref.at(cat("profile.density.", l)).to_f64_vector();
    for (int j = 0; j < K; ++j)
      for (int i = 0; i < K; ++i)
        EXPECT_NEAR(res.density[l][j][i], den[j * K + i], 1e-5) << "layer " << l << " j " << j << " i " << i;
  }
}

// Row chunks in the transformer and image chunks in the head (what the memory planner uses for large
// batches) change the order of work only.
TEST_P(Golden, ChunkedBatchEqualsWholeBatch) {
  GoldenCase g(GetParam());
  auto opt = g.options();
  opt.sampling.top_k = 20;
  opt.sampling.seed = 3;
  opt.keep_logits = true;
  const auto [whole, chunked] = run_whole_and_chunked(*g.var, *g.vae, opt);
  for (size_t k = 0; k < whole.tokens.size(); ++k) {
    EXPECT_EQ(whole.tokens[k].to_f64_vector(), chunked.tokens[k].to_f64_vector()) << "scale " << k;
    EXPECT_LE(max_rel_error(chunked.logits_cfg[k].data<float>(), whole.logits_cfg[k]), 1e-5) << "scale " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, Golden, ::testing::ValuesIn(golden_cases()));

TEST_P(Golden, PerScaleCachedLogitsEqualOnePassForward) {
  GoldenCase g(GetParam());
  if (!g.ref.contains("teacher.logits_cond")) GTEST_SKIP() << g.name << " has no teacher logits (only tiny and mini do)";
  auto opt = g.options();
  opt.forced_tokens = &g.ref;
  auto policy = kv::make_full_policy();
  Recorder rec;
  engine::generate(*g.var, *g.vae, *policy, opt, &rec);
  const Tensor& teacher = g.ref.at("teacher.logits_cond");  // [B, L, V], conditional rows
  const auto ref = teacher.to_f64_vector();
  const int64_t B = teacher.dim(0), L = teacher.dim(1), V = teacher.dim(2);
  const auto& sched = g.var->config().schedule;
  double err = 0.0, scale = 0.0;
  for (int k = 0; k < sched.num_scales(); ++k) {
    const auto& raw = rec.values[cat("logits_raw.", k)];  // [2B, n, V], conditional rows first
    const int64_t n = sched.tokens(k);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < n; ++t)
        for (int64_t v = 0; v < V; ++v) {
          const double r = ref[(b * L + sched.starts[k] + t) * V + v];
          err = std::max(err, std::abs(raw[(b * n + t) * V + v] - r));
          scale = std::max(scale, std::abs(r));
        }
  }
  EXPECT_LE(err / scale, 1e-5);
}

}  // namespace
}  // namespace amskv::golden

namespace amskv::golden {
namespace {

TEST(GoldenPolicies, UnlimitedBudgetsGiveFullBitForBit) {
  AMSKV_REQUIRE_SHARED_GOLDEN();
  GoldenCase g("std256");
  auto opt = g.options();
  opt.sampling.top_k = 30;
  opt.sampling.seed = 4;
  opt.keep_logits = true;
  auto full = kv::make_full_policy();
  const auto ref = engine::generate(*g.var, *g.vae, *full, opt);
  std::vector<std::unique_ptr<kv::CachePolicy>> policies;
  kv::AmsOptions unlimited;
  unlimited.cmin = unlimited.cmax = 1 << 20;
  policies.push_back(std::make_unique<kv::AmsPolicy>(unlimited, false));
  policies.push_back(std::make_unique<kv::AmsPolicy>(unlimited, true));
  policies.push_back(kv::make_window_policy(10));
  policies.push_back(kv::make_sink_policy(2, 10));
  for (auto& p : policies) {
    const auto r = engine::generate(*g.var, *g.vae, *p, opt);
    for (size_t k = 0; k < ref.logits_cfg.size(); ++k)
      ASSERT_EQ(0, std::memcmp(r.logits_cfg[k].raw(), ref.logits_cfg[k].raw(), ref.logits_cfg[k].nbytes()))
          << p->name() << " scale " << k;
    ASSERT_EQ(0, std::memcmp(r.images.raw(), ref.images.raw(), ref.images.nbytes())) << p->name();
  }
}

TEST(GoldenPolicies, TightAmsBudgetChangesLogitsButStaysWithinPlan) {
  AMSKV_REQUIRE_SHARED_GOLDEN();
  GoldenCase g("std256");
  auto opt = g.options();
  opt.forced_tokens = &g.ref;
  kv::AmsOptions o;
  o.cmin = 40, o.cmax = 80;
  opt.keep_logits = true;
  kv::AmsPolicy policy(o, false);
  const auto r = engine::generate(*g.var, *g.vae, policy, opt);
  for (size_t l = 0; l < r.kv.layer_peak_tokens.size(); ++l) {
    EXPECT_LE(r.kv.layer_peak_tokens[l], policy.budget(static_cast<int>(l)));
    EXPECT_LE(r.kv.layer_peak_tokens[l], r.kv.layer_reserved_tokens[l]);
  }
  EXPECT_EQ(policy.demanding_layers().size(), 1u);  // ceil(0.1 * 2 layers)
  EXPECT_GT(max_rel_error(r.logits_cfg.back().data<float>(), g.ref.at("forced.logits_cfg.9")), 1e-3);
}

}  // namespace
}  // namespace amskv::golden

namespace amskv::golden {
namespace {

TEST(GoldenPolicies, MemoryPlanBoundsTheRealRun) {
  AMSKV_REQUIRE_SHARED_GOLDEN();
  GoldenCase g("std256");
  auto opt = g.options();
  opt.forced_tokens = &g.ref;
  opt.decode_images = false;
  const auto& sched = g.var->config().schedule;
  kv::ScheduleInfo info;
  for (int k = 0; k < sched.num_scales(); ++k) info.tokens.push_back(sched.tokens(k));
  info.depth = static_cast<int>(g.var->config().depth);
  for (const std::string name : {"full", "ams", "sink", "window", "uniform"}) {
    kv::PolicyOptions po;
    po.name = name;
    po.ams.cmin = 60;
    po.ams.cmax = 120;
    auto run_policy = kv::make_policy(po);
    const auto real = engine::generate(*g.var, *g.vae, *run_policy, opt);
    auto plan_policy = kv::make_policy(po);
    const auto plan = kv::plan_footprint(*plan_policy, info, sched.patch_nums);
    EXPECT_EQ(plan.footprint.allocated_tokens, real.kv.footprint.allocated_tokens) << name;
    EXPECT_GE(plan.footprint.resident_tokens, real.kv.footprint.resident_tokens) << name;
    EXPECT_GE(plan.footprint.stored_tokens, real.kv.footprint.stored_tokens) << name;
  }
}

}  // namespace
}  // namespace amskv::golden

namespace amskv::golden {
namespace {

TEST(VarConfigErrors, NameTheFileKeyAndProblem) {
  auto t = io::load_tensor_file(golden_case_dir("mini") + "/var.pth");
  auto expect = [](const io::TensorMap& m, const std::string& needle) {
    try {
      model::infer_var_config(m);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("var.pth"), std::string::npos) << e.what();
    }
  };
  auto wrong_shape = t;
  wrong_shape.insert("blocks.0.attn.proj.weight", Tensor::zeros(DType::F32, {64, 32}));
  expect(wrong_shape, "blocks.0.attn.proj.weight has shape [64, 32], expected [64, 64]");
  auto wrong_dtype = t;
  wrong_dtype.insert("head.bias", Tensor::zeros(DType::I64, {64}));
  expect(wrong_dtype, "head.bias has dtype I64");
  io::TensorMap missing(t.source());
  for (const auto& [k, v] : t.all())
    if (k != "blocks.0.ffn.fc2.bias") missing.insert(k, v);
  expect(missing, "missing key blocks.0.ffn.fc2.bias");
}

}  // namespace
}  // namespace amskv::golden
