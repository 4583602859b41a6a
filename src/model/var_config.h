// The VAR transformer's configuration, inferred from a checkpoint's tensors (spec section 0): nothing is
// assumed from the file name or the official model table.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/tensor_map.h"
#include "model/patch_nums.h"  // parse_patch_nums, once declared here

namespace amskv::model {

struct ScaleSchedule {
  std::vector<int64_t> patch_nums;  // side of every scale: 1, 2, 3, ... HW
  std::vector<int64_t> starts;      // token offset of every scale in the flattened sequence
  int64_t total_tokens = 0;         // L

  static ScaleSchedule from_patch_nums(std::vector<int64_t> patch_nums);
  int num_scales() const { return static_cast<int>(patch_nums.size()); }
  int64_t tokens(int k) const { return patch_nums[k] * patch_nums[k]; }
  int64_t last_side() const { return patch_nums.back(); }
  std::string str() const;  // "1,2,3,4"
};

struct VarConfig {
  int64_t depth = 0;
  int64_t width = 0;  // C
  int64_t heads = 0;  // H
  int64_t head_dim = 0;
  int64_t ffn_hidden = 0;
  int64_t vocab = 0;        // V
  int64_t cvae = 0;         // latent channels
  int64_t num_classes = 0;  // the null class id equals this
  bool shared_aln = false;
  ScaleSchedule schedule;
  int64_t param_count = 0;

  std::string summary() const;
};

// Infers and validates every size and key. `patch_nums_override` is used only when the checkpoint has no
// lvl_1L buffer (and must then be given); when both exist they must agree.
VarConfig infer_var_config(const io::TensorMap& tensors, const std::vector<int64_t>& patch_nums_override = {});

}  // namespace amskv::model
