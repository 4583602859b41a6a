// amskv convert IN OUT: re-save a checkpoint as safetensors (or .pth), tensors unchanged.
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "io/safetensors.h"
#include "io/tensor_file.h"
#include "io/torch_checkpoint.h"
#include "output_paths.h"

namespace amskv::cli {

void run_convert(const ConvertArgs& a) {
  OutputCheck outputs({{"input", a.input}});
  outputs.file("output", a.output);
  const io::TensorMap t = io::load_tensor_file(a.input);
  std::vector<std::pair<std::string, Tensor>> tensors(t.all().begin(), t.all().end());
  outputs.create_folders();
  if (std::filesystem::path(a.output).extension() == ".safetensors")
    io::save_safetensors(a.output, tensors, t.metadata);
  else
    io::save_torch_checkpoint(a.output, tensors);
  std::cout << "wrote " << tensors.size() << " tensors to " << a.output << "\n";
}

}  // namespace amskv::cli
