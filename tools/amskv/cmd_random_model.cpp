// amskv random-model: seeded random weights in the official checkpoint layout. Images from them are noise;
// they exist for tests and benchmarks.
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "io/torch_checkpoint.h"
#include "model/random_model.h"
#include "output_paths.h"

namespace amskv::cli {

void run_random_model(const RandomModelArgs& a) {
  const std::string var_name = a.var_name.empty() ? "var_" + a.shape + ".pth" : a.var_name;
  std::vector<std::string> names = {var_name};
  if (!a.no_vae) names.push_back(a.vae_name);
  OutputCheck outputs({});
  outputs.folder("--out", a.out_dir, names);
  outputs.create_folders();
  model::RandomVarSpec spec = model::official_var_spec(a.shape);
  spec.seed = a.seed;
  const std::string var_path = (std::filesystem::path(a.out_dir) / var_name).string();
  io::save_torch_checkpoint(var_path, model::random_var_weights(spec));
  std::cout << "wrote " << var_path << " (random weights, " << a.shape << " shapes)\n";
  if (a.no_vae) return;
  model::RandomVqvaeSpec vae;
  vae.seed = a.seed + 1;
  vae.vocab = spec.vocab;
  vae.cvae = spec.cvae;
  vae.ch = a.shape == "tiny" ? 32 : a.vae_ch;
  const std::string vae_path = (std::filesystem::path(a.out_dir) / a.vae_name).string();
  io::save_torch_checkpoint(vae_path, model::random_vqvae_weights(vae));
  std::cout << "wrote " << vae_path << " (random weights, ch " << vae.ch << ")\n";
}

}  // namespace amskv::cli
