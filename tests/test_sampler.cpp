// Sampling: top-k/top-p masks as the reference defines them, and a random stream that depends only on
// (seed, image, scale, position).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/philox.h"
#include "golden_case.h"
#include "kv/policies/recency_policy.h"
#include "backend/cpu/sampling.h"

namespace amskv::model {
namespace {

using cpu::mask_top_k_top_p;
using cpu::sample_tokens;

TEST(Sampler, TopKKeepsTiesAtTheKthValue) {
  std::vector<float> l = {1, 5, 3, 5, 2, 3};
  mask_top_k_top_p(l.data(), 1, 6, 3, 0.0);
  const float inf = -std::numeric_limits<float>::infinity();
  EXPECT_EQ(l, (std::vector<float>{inf, 5, 3, 5, inf, 3}));  // 3rd largest is 3, both 3s survive
}

TEST(Sampler, TopPKeepsSmallestSetWithMassAtLeastP) {
  // probabilities 0.5, 0.25, 0.125, 0.125 (log-space)
  std::vector<float> l = {std::log(0.5f), std::log(0.25f), std::log(0.125f), std::log(0.125f)};
  auto m = l;
  mask_top_k_top_p(m.data(), 1, 4, 0, 0.7);
  EXPECT_TRUE(std::isfinite(m[0]) && std::isfinite(m[1]));
  EXPECT_TRUE(std::isinf(m[2]) && std::isinf(m[3]));
  m = l;
  mask_top_k_top_p(m.data(), 1, 4, 0, 0.01);  // the largest is always kept
  EXPECT_TRUE(std::isfinite(m[0]));
  EXPECT_TRUE(std::isinf(m[1]));
}

TEST(Sampler, ArgmaxWhenOnlyOneTokenSurvives) {
  std::vector<float> l = {0.1f, 0.9f, 0.3f, 0.2f, 0.8f, 0.1f};
  mask_top_k_top_p(l.data(), 2, 3, 1, 0.0);
  int64_t tok[2];
  sample_tokens(l.data(), 2, 3, 42, 0, 0, tok);
  EXPECT_EQ(tok[0], 1);
  EXPECT_EQ(tok[1], 1);
}

TEST(Sampler, DrawsFollowTheDistribution) {
  std::vector<float> l(4 * 1000);
  const float lp[4] = {std::log(0.1f), std::log(0.2f), std::log(0.3f), std::log(0.4f)};
  for (int t = 0; t < 1000; ++t)
    for (int v = 0; v < 4; ++v) l[t * 4 + v] = lp[v];
  std::vector<int64_t> tok(1000);
  sample_tokens(l.data(), 1000, 4, 1, 0, 3, tok.data());
  int counts[4] = {0, 0, 0, 0};
  for (int64_t t : tok) ++counts[t];
  EXPECT_NEAR(counts[0], 100, 40);
  EXPECT_NEAR(counts[3], 400, 60);
}

TEST(Philox, KnownAnswerAndIndependentCounters) {
  // Philox4x32-10 reference vector (Random123 kat_vectors): counter 0, key 0.
  const auto out = Philox4x32::generate({0, 0, 0, 0}, {0, 0});
  EXPECT_EQ(out[0], 0x6627e8d5u);
  EXPECT_EQ(out[1], 0xe169c58du);
  EXPECT_EQ(out[2], 0xbc57ac4cu);
  EXPECT_EQ(out[3], 0x9b00dbd8u);
  EXPECT_NE(uniform_at(1, 0, 0, 0, RandomStream::Token), uniform_at(1, 1, 0, 0, RandomStream::Token));
  EXPECT_NE(uniform_at(1, 0, 0, 0, RandomStream::Token), uniform_at(1, 0, 1, 0, RandomStream::Token));
}

TEST(Generation, AnImageDependsOnlyOnSeedAndIndexNotOnBatch) {
  golden::GoldenCase g("mini");
  auto opt = g.options();
  opt.sampling.top_k = 50;
  opt.sampling.seed = 9;
  opt.decode_images = false;
  auto policy = kv::make_full_policy();
  const auto both = engine::generate(*g.var, *g.vae, *policy, opt);
  opt.labels = {g.labels[1]};
  opt.first_image_index = 1;
  const auto second = engine::generate(*g.var, *g.vae, *policy, opt);
  for (size_t k = 0; k < both.tokens.size(); ++k) {
    const int64_t n = both.tokens[k].dim(1);
    for (int64_t t = 0; t < n; ++t) EXPECT_EQ(both.tokens[k].data<int64_t>()[n + t], second.tokens[k].data<int64_t>()[t]);
  }
}

TEST(Generation, MoreSmoothRunsAndDiffersFromHardTokens) {
  golden::GoldenCase g("mini");
  auto opt = g.options();
  opt.sampling.top_k = 50;
  opt.sampling.seed = 3;
  auto policy = kv::make_full_policy();
  const auto hard = engine::generate(*g.var, *g.vae, *policy, opt);
  opt.sampling.more_smooth = true;
  const auto soft = engine::generate(*g.var, *g.vae, *policy, opt);
  double diff = 0.0;
  for (int64_t i = 0; i < hard.fhat.numel(); ++i)
    diff = std::max(diff, static_cast<double>(std::abs(hard.fhat.data<float>()[i] - soft.fhat.data<float>()[i])));
  EXPECT_GT(diff, 0.0);
  for (int64_t i = 0; i < soft.images.numel(); ++i) ASSERT_TRUE(std::isfinite(soft.images.data<float>()[i]));
}

}  // namespace
}  // namespace amskv::model
