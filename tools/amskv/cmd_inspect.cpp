// amskv inspect FILE: what a checkpoint is (VAR transformer, VQVAE, or other tensors) and its sizes.
#include <iostream>
#include <memory>

#include "commands.h"
#include "io/tensor_file.h"
#include "model/var_config.h"
#include "model/vqvae_config.h"

namespace amskv::cli {

namespace {
void run_inspect(const std::string& path, bool list) {
  const io::TensorMap t = io::load_tensor_file(path);
  int64_t numel = 0;
  for (const auto& [name, tensor] : t.all()) numel += tensor.numel();
  std::cout << path << ": " << t.size() << " tensors, " << numel << " elements\n";
  if (t.contains("class_emb.weight")) {
    std::cout << model::infer_var_config(t).summary() << "\n";
  } else if (t.contains("quantize.embedding.weight")) {
    std::cout << model::infer_vqvae_config(t).summary() << "\n";
  } else {
    std::cout << "neither a VAR transformer nor a VQVAE checkpoint\n";
  }
  if (list)
    for (const auto& [name, tensor] : t.all())
      std::cout << "  " << name << " " << dtype_name(tensor.dtype()) << " " << shape_str(tensor.shape()) << "\n";
}
}  // namespace

void add_inspect_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto list = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("inspect", "Print a checkpoint's inferred configuration and parameter count");
  cmd->add_option("file", *path, "Checkpoint (.pth or .safetensors)")->required();
  cmd->add_flag("--tensors", *list, "Also list every tensor");
  cmd->callback([path, list] { run_inspect(*path, *list); });
}

}  // namespace amskv::cli
