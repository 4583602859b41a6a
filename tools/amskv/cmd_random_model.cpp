// amskv random-model: seeded random weights in the official checkpoint layout. Images from them are noise;
// they exist for tests, benchmarks and the default run.
#include <filesystem>
#include <iostream>
#include <memory>

#include "commands.h"
#include "io/torch_checkpoint.h"
#include "model/random_model.h"

namespace amskv::cli {

namespace {
struct RandomArgs {
  std::string shape = "d16", out_dir = "models", var_name, vae_name = "vae_ch160v4096z32.pth";
  uint64_t seed = 0;
  int64_t vae_ch = 160;
  bool no_vae = false;
};

void run_random(const RandomArgs& a) {
  std::filesystem::create_directories(a.out_dir);
  model::RandomVarSpec spec = model::official_var_spec(a.shape);
  spec.seed = a.seed;
  const std::string var_path = (std::filesystem::path(a.out_dir) / (a.var_name.empty() ? "var_" + a.shape + ".pth" : a.var_name)).string();
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
}  // namespace

void add_random_model_command(CLI::App& app) {
  auto a = std::make_shared<RandomArgs>();
  CLI::App* cmd = app.add_subcommand("random-model", "Write a VAR (and VQVAE) checkpoint with seeded random weights");
  cmd->add_option("--shape", a->shape, "d16, d20, d24, d30, d36 or tiny")
      ->check(CLI::IsMember({"d16", "d20", "d24", "d30", "d36", "tiny"}));
  cmd->add_option("--out", a->out_dir, "Output folder");
  cmd->add_option("--var-name", a->var_name, "File name of the transformer (default var_<shape>.pth)");
  cmd->add_option("--vae-name", a->vae_name, "File name of the VQVAE");
  cmd->add_option("--vae-ch", a->vae_ch, "VQVAE base channels (official 160)")->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a->seed, "Seed");
  cmd->add_flag("--no-vae", a->no_vae, "Only the transformer");
  cmd->callback([a] { run_random(*a); });
}

}  // namespace amskv::cli
