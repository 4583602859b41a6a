// VQVAE decoder benchmark: a random-weight VQVAE of the official shape (ch 160, ch_mult 1,1,2,2,4, 2 res
// blocks, Cvae 32, V 4096, attention at the lowest resolution and in the middle) decoding 256px images
// (HW = 16) for batch 1 and 4, and 512px (HW = 32) batch 1 with --full. Prints JSON, then a markdown table.
//
//   bench_vqvae [--full] [--reps N] [--seed S]
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "io/tensor_map.h"
#include "model/random_model.h"
#include "backend/cpu/cpu_backend.h"
#include "model/vqvae.h"

namespace {

using amskv::DType;
using amskv::Shape;
using amskv::Tensor;

struct Rng {  // splitmix64 -> uniform floats in [-1, 1)
  uint64_t s;
  float next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<float>(static_cast<double>(z >> 40) / static_cast<double>(1ull << 23) - 1.0);
  }
};

// Official-shape VQVAE decoder + quantizer tensors with seeded random weights.
amskv::io::TensorMap official_shape_vqvae(uint64_t seed) {
  amskv::model::RandomVqvaeSpec spec;
  spec.seed = seed;
  return amskv::model::to_tensor_map(amskv::model::random_vqvae_weights(spec), "random-official-vqvae");
}

// Multiply-adds ×2 of every convolution and attention product of one decode at latent side hw.
double decode_gflop(const amskv::io::TensorMap& t, const amskv::model::VqvaeConfig& cfg, int64_t hw) {
  double flop = 0;
  int64_t res = hw;
  auto conv = [&](const std::string& key, int64_t r) {
    const Tensor& w = t.at(key);
    flop += 2.0 * static_cast<double>(w.numel()) * static_cast<double>(r * r);
  };
  auto resblock = [&](const std::string& p, int64_t r) {
    conv(p + ".conv1.weight", r);
    conv(p + ".conv2.weight", r);
    if (t.contains(p + ".nin_shortcut.weight")) conv(p + ".nin_shortcut.weight", r);
  };
  auto attn = [&](const std::string& p, int64_t r) {
    conv(p + ".qkv.weight", r);
    conv(p + ".proj_out.weight", r);
    const double c = static_cast<double>(t.at(p + ".proj_out.weight").dim(0)), n = static_cast<double>(r * r);
    flop += 4.0 * c * n * n;
  };
  conv("post_quant_conv.weight", res);
  conv("decoder.conv_in.weight", res);
  resblock("decoder.mid.block_1", res);
  if (cfg.mid_attn) attn("decoder.mid.attn_1", res);
  resblock("decoder.mid.block_2", res);
  for (int i = cfg.num_levels() - 1; i >= 0; --i) {
    for (int64_t j = 0; j <= cfg.num_res_blocks; ++j) {
      resblock(amskv::cat("decoder.up.", i, ".block.", j), res);
      if (cfg.level_has_attn[static_cast<size_t>(i)]) attn(amskv::cat("decoder.up.", i, ".attn.", j), res);
    }
    if (i != 0) {
      res *= 2;
      conv(amskv::cat("decoder.up.", i, ".upsample.conv.weight"), res);
    }
  }
  conv("decoder.conv_out.weight", res);
  return flop / 1e9;
}

struct Result {
  int64_t px, batch;
  int reps;
  double best_s, mean_s, gflop_per_image;
};

}  // namespace

int main(int argc, char** argv) {
  bool full = false;
  int reps = 3;
  uint64_t seed = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--full") {
      full = true;
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: %s [--full] [--reps N] [--seed S]\n", argv[0]);
      return 2;
    }
  }
  try {
    const auto t0 = std::chrono::steady_clock::now();
    const amskv::io::TensorMap tensors = official_shape_vqvae(seed);
    amskv::backend::CpuBackend cpu;
    const amskv::model::Vqvae vae(cpu, tensors);
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto& cfg = vae.config();
    std::fprintf(stderr, "%s (built in %.2f s)\n", cfg.summary().c_str(), load_s);

    std::vector<std::pair<int64_t, int64_t>> runs = {{16, 1}, {16, 4}};
    if (full) runs.push_back({32, 1});
    std::vector<Result> results;
    for (const auto& [hw, batch] : runs) {
      Tensor f = Tensor::zeros(DType::F32, {batch, cfg.cvae, hw, hw});
      Rng rng{seed + 17};
      for (int64_t i = 0; i < f.numel(); ++i) f.mutable_data<float>()[i] = 2.0f * rng.next();
      vae.decode(f);  // warm-up: buffers, page faults, BLAS thread start
      std::vector<double> times;
      for (int r = 0; r < reps; ++r) {
        const auto s = std::chrono::steady_clock::now();
        const Tensor img = vae.decode(f);
        times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count());
        if (!std::isfinite(img.data<float>()[0])) amskv::fail("non-finite image");
      }
      double sum = 0;
      for (double x : times) sum += x;
      results.push_back({hw * cfg.upsample_factor(), batch, reps, *std::min_element(times.begin(), times.end()),
                         sum / reps, decode_gflop(tensors, cfg, hw)});
    }

    const char* coretype = std::getenv("OPENBLAS_CORETYPE");
    std::printf("{\n  \"benchmark\": \"vqvae_decode\",\n  \"config\": \"%s\",\n", cfg.summary().c_str());
    std::printf("  \"blas_core\": \"%s\",\n  \"openblas_coretype_env\": \"%s\",\n  \"threads\": %d,\n",
                openblas_get_corename(), coretype ? coretype : "", omp_get_max_threads());
    std::printf("  \"results\": [\n");
    for (size_t i = 0; i < results.size(); ++i) {
      const Result& r = results[i];
      const double per_image = r.best_s / static_cast<double>(r.batch);
      std::printf(
          "    {\"px\": %lld, \"batch\": %lld, \"reps\": %d, \"best_s\": %.4f, \"mean_s\": %.4f, "
          "\"s_per_image\": %.4f, \"gflop_per_image\": %.1f, \"gflops\": %.1f}%s\n",
          static_cast<long long>(r.px), static_cast<long long>(r.batch), r.reps, r.best_s, r.mean_s, per_image,
          r.gflop_per_image, r.gflop_per_image / per_image, i + 1 < results.size() ? "," : "");
    }
    std::printf("  ]\n}\n\n");
    std::printf("OpenBLAS kernels: %s, %d threads\n\n", openblas_get_corename(), omp_get_max_threads());
    std::printf("| image | batch | s / image (best of %d) | mean s / batch | GFLOP / image | GFLOP/s |\n", reps);
    std::printf("|---|---|---|---|---|---|\n");
    for (const Result& r : results) {
      const double per_image = r.best_s / static_cast<double>(r.batch);
      std::printf("| %lldpx | %lld | %.3f | %.3f | %.0f | %.0f |\n", static_cast<long long>(r.px),
                  static_cast<long long>(r.batch), per_image, r.mean_s, r.gflop_per_image,
                  r.gflop_per_image / per_image);
    }
  } catch (const amskv::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
