// amskv convert IN OUT: re-save a checkpoint as safetensors (or .pth), tensors unchanged.
#include <iostream>
#include <memory>

#include "commands.h"
#include "io/safetensors.h"
#include "io/tensor_file.h"
#include "io/torch_checkpoint.h"

namespace amskv::cli {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void run_convert(const std::string& in, const std::string& out) {
  const io::TensorMap t = io::load_tensor_file(in);
  std::vector<std::pair<std::string, Tensor>> tensors(t.all().begin(), t.all().end());
  if (ends_with(out, ".safetensors")) {
    io::save_safetensors(out, tensors, t.metadata);
  } else if (ends_with(out, ".pth") || ends_with(out, ".pt")) {
    io::save_torch_checkpoint(out, tensors);
  } else {
    fail(out, ": unknown output format (use .safetensors or .pth)");
  }
  std::cout << "wrote " << tensors.size() << " tensors to " << out << "\n";
}
}  // namespace

void add_convert_command(CLI::App& app) {
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("convert", "Convert a checkpoint between .pth and .safetensors");
  cmd->add_option("input", *in, "Input checkpoint")->required();
  cmd->add_option("output", *out, "Output file (.safetensors or .pth)")->required();
  cmd->callback([in, out] { run_convert(*in, *out); });
}

}  // namespace amskv::cli
