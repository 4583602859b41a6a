// The VAR checkpoint reader is as strict about unknown keys as the VQVAE one: a key it would ignore means
// the file is not the model we think it is (a newer architecture, a typo in a conversion script).
#include <gtest/gtest.h>

#include "golden_dir.h"
#include "io/tensor_file.h"
#include "io_test_util.h"
#include "model/var_config.h"

namespace amskv::model {
namespace {

using io_test::expect_error;

TEST(VarConfigKeys, UnknownKeyIsRefusedNamingIt) {
  const io::TensorMap golden = io::load_tensor_file(golden_case_dir("mini") + "/var.pth");
  EXPECT_NO_THROW(infer_var_config(golden));  // buffers (lvl_1L, attn_bias_for_masking, zero_k_bias) are known
  for (const char* extra : {"blocks.0.attn.rel_pos_bias", "blocks.2.attn.q_bias", "head.weight_g", "extra"}) {
    io::TensorMap t = golden;
    t.insert(extra, Tensor::zeros(DType::F32, {1}));
    expect_error([&] { infer_var_config(t); }, {"var.pth", "unexpected key ", extra, "in a VAR checkpoint"});
  }
}

}  // namespace
}  // namespace amskv::model
