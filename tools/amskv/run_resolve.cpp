// RunOptions to the engine's JobOptions: the lists parsed and the model files found (the program that runs
// commands only; the flags themselves are in run_options.cpp).
#include "core/parse.h"
#include "model/patch_nums.h"
#include "run_options.h"
#include "shipped_model.h"

namespace amskv::cli {

engine::JobOptions RunOptions::resolved() const {
  engine::JobOptions j = job;
  j.labels = parse_int_list(labels_text, "--labels");
  if (!patch_nums_text.empty()) j.patch_nums = model::parse_patch_nums(patch_nums_text);
  AMSKV_CHECK(j.var_path.empty() == j.vae_path.empty(), "--var and --vae go together");
  if (j.var_path.empty()) {
    const ShippedModel m = find_shipped_model();
    j.var_path = m.var_path;
    j.vae_path = m.vae_path;
  }
  return j;
}

}  // namespace amskv::cli
