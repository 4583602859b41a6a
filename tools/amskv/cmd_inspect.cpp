// amskv inspect FILE: what a checkpoint is (VAR transformer, VQVAE, or other tensors), its sizes, and whether it
// is intact: the CRC-32 of every zip entry (torch checkpoints) and a scan for NaN/Inf weights. A damaged
// checkpoint makes the exit status 1. For a PNG written by `amskv generate`: the settings it records.
#include <iostream>

#include "commands.h"
#include "io/checkpoint_crc.h"
#include "io/non_finite.h"
#include "io/png_reader.h"
#include "io/tensor_file.h"
#include "model/var_config.h"
#include "model/vqvae_config.h"
#include "provenance.h"

namespace amskv::cli {

namespace {

void inspect_png(const std::string& path) {
  const io::PngImage png = io::read_png(path, /*pixels=*/false);
  std::cout << path << ": " << png.width << "x" << png.height << " PNG\n";
  const nlohmann::json record = read_record(path);
  std::cout << record.dump(1) << "\n";
}

void inspect_checkpoint(const std::string& path, bool list) {
  const io::TensorMap t = io::load_tensor_file(path);
  int64_t numel = 0;
  for (const auto& [name, tensor] : t.all()) numel += tensor.numel();
  std::cout << path << ": " << t.size() << " tensors, " << numel << " elements\n";
  const bool var = t.contains("class_emb.weight");
  if (var) {
    std::cout << model::infer_var_config(t).summary() << "\n";
  } else if (t.contains("quantize.embedding.weight")) {
    std::cout << model::infer_vqvae_config(t).summary() << "\n";
  } else {
    std::cout << "neither a VAR transformer nor a VQVAE checkpoint\n";
  }
  if (list)
    for (const auto& [name, tensor] : t.all())
      std::cout << "  " << name << " " << dtype_name(tensor.dtype()) << " " << shape_str(tensor.shape()) << "\n";

  // Integrity: both checks run and print before the verdict, so one report shows everything that is wrong.
  std::string damage;
  try {
    const io::CrcReport crc = io::verify_checkpoint_crc(path);
    if (crc.entries + crc.skipped == 0)
      std::cout << "CRC-32: none recorded (safetensors files carry no checksum)\n";
    else
      std::cout << "CRC-32: OK, " << crc.entries << " entries (" << crc.bytes << " bytes)"
                << (crc.skipped ? cat(", ", crc.skipped, " compressed entries not checked") : "") << "\n";
  } catch (const Error& e) {
    std::cout << "CRC-32: MISMATCH: " << e.what() << "\n";
    damage = "a CRC-32 mismatch";
  }
  // The causal mask of a VAR checkpoint is -inf by design and never read.
  const auto bad =
      io::find_non_finite(t, [var](std::string_view key) { return var && key == "attn_bias_for_masking"; });
  if (!bad) {
    std::cout << "weights: all finite\n";
  } else {
    std::cout << "weights: NOT FINITE: " << bad->key << " holds " << bad->count << " NaN/Inf value"
              << (bad->count == 1 ? "" : "s") << " (first at flat index " << bad->first_index << "); " << bad->total
              << " in " << bad->tensors << " tensor" << (bad->tensors == 1 ? "" : "s") << " in all\n";
    damage += cat(damage.empty() ? "" : " and ", bad->total, " NaN/Inf weights");
  }
  AMSKV_CHECK(damage.empty(), path, ": damaged checkpoint (", damage, ")");
}

}  // namespace

void run_inspect(const InspectArgs& a) {
  if (io::is_png_file(a.path)) {
    AMSKV_CHECK(!a.list, "--tensors: ", a.path, " is a PNG image, not a checkpoint");
    inspect_png(a.path);
  } else {
    inspect_checkpoint(a.path, a.list);
  }
}

}  // namespace amskv::cli
