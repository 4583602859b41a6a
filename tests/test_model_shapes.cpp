// The configuration of an official shape, computed without making its weights (amskv plan --device), is the
// one that the engine infers from the weights random-model makes for that shape.
#include <gtest/gtest.h>

#include "model/random_model.h"
#include "model/var_config.h"

namespace amskv::model {
namespace {

void expect_same(const VarConfig& a, const VarConfig& b) {
  EXPECT_EQ(a.depth, b.depth);
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.heads, b.heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.ffn_hidden, b.ffn_hidden);
  EXPECT_EQ(a.vocab, b.vocab);
  EXPECT_EQ(a.cvae, b.cvae);
  EXPECT_EQ(a.num_classes, b.num_classes);
  EXPECT_EQ(a.shared_aln, b.shared_aln);
  EXPECT_EQ(a.schedule.patch_nums, b.schedule.patch_nums);
  EXPECT_EQ(a.schedule.total_tokens, b.schedule.total_tokens);
  EXPECT_EQ(a.param_count, b.param_count);
}

TEST(ModelShapes, ConfigOfASpecIsWhatItsWeightsAreInferredAs) {
  RandomVarSpec small_shared;
  small_shared.depth = 3;
  small_shared.width = 96;
  small_shared.heads = 3;
  small_shared.shared_aln = true;
  small_shared.vocab = 64;
  small_shared.num_classes = 10;
  small_shared.patch_nums = {1, 2, 4};
  RandomVarSpec small_separate = small_shared;
  small_separate.shared_aln = false;
  small_separate.cvae = 8;
  for (const RandomVarSpec& spec : {official_var_spec("tiny"), small_shared, small_separate}) {
    const VarConfig inferred = infer_var_config(to_tensor_map(random_var_weights(spec), "random"));
    expect_same(var_config_of(spec), inferred);
  }
}

TEST(ModelShapes, OfficialShapesHaveTheirPublishedSizes) {
  // VAR's model zoo: d16 310M, d20 600M, d24 1.0B, d30 2.0B, d36 2.3B parameters.
  EXPECT_NEAR(var_config_of(official_var_spec("d16")).param_count / 1e6, 310, 10);
  EXPECT_NEAR(var_config_of(official_var_spec("d30")).param_count / 1e9, 2.0, 0.1);
  const VarConfig d36 = var_config_of(official_var_spec("d36"));
  EXPECT_TRUE(d36.shared_aln);
  EXPECT_EQ(d36.schedule.last_side(), 32);
  EXPECT_NEAR(d36.param_count / 1e9, 2.35, 0.1);
}

}  // namespace
}  // namespace amskv::model
