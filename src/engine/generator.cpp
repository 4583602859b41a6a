#include "engine/generator.h"

#include <chrono>

#include "backend/cpu/gemm.h"

namespace amskv::engine {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

std::vector<int64_t> class_rows_for(const std::vector<int64_t>& labels, int64_t num_classes) {
  std::vector<int64_t> rows;
  for (int64_t label : labels) {
    AMSKV_CHECK(label >= -1 && label <= num_classes, "label ", label, " is out of range: the model has ",
                num_classes, " classes (0..", num_classes - 1, "; -1 or ", num_classes, " = unconditional)");
    rows.push_back(label < 0 ? num_classes : label);
  }
  for (size_t i = 0; i < labels.size(); ++i) rows.push_back(num_classes);  // the unconditional half
  return rows;
}

void check_compatible(const model::VarConfig& var, const std::string& var_file, const model::VqvaeConfig& vae,
                      const std::string& vae_file) {
  AMSKV_CHECK(var.vocab == vae.vocab, var_file, " predicts ", var.vocab, " codes but ", vae_file, " has a codebook of ",
              vae.vocab);
  AMSKV_CHECK(var.cvae == vae.cvae, var_file, " embeds ", var.cvae, "-channel latents but ", vae_file, " has ",
              vae.cvae, " latent channels");
}

GenerateResult generate(const model::VarModel& var, const model::Vqvae& vae, kv::CachePolicy& policy,
                        const GenerateOptions& opt, GenerationObserver* observer) {
  const auto t_start = Clock::now();
  const model::VarConfig& cfg = var.config();
  const auto& sched = cfg.schedule;
  const int K = sched.num_scales();
  const int64_t B = static_cast<int64_t>(opt.labels.size());
  const int64_t R = 2 * B, C = cfg.width, V = cfg.vocab, Cv = cfg.cvae, HW = sched.last_side();
  AMSKV_CHECK(B > 0, "generate: no labels given");
  AMSKV_CHECK(vae.config().vocab == V && vae.config().cvae == Cv, "generate: the VQVAE does not fit the transformer");

  GenerateResult res;
  const model::Conditioning cond = var.condition(class_rows_for(opt.labels, cfg.num_classes));
  kv::ScheduleInfo info;
  for (int k = 0; k < K; ++k) info.tokens.push_back(sched.tokens(k));
  info.depth = static_cast<int>(cfg.depth);
  kv::KvCache cache(policy, info, sched.patch_nums, R, cfg.heads, cfg.head_dim, opt.analysis);
  model::Workspace ws(cfg, R);

  int64_t n_max = 0;
  for (int k = 0; k < K; ++k) n_max = std::max(n_max, sched.tokens(k));
  std::vector<float> x(static_cast<size_t>(R * n_max * C));
  std::vector<float> logits(static_cast<size_t>(R * n_max * V));
  std::vector<float> guided(static_cast<size_t>(B * n_max * V));
  std::vector<float> next(static_cast<size_t>(B * Cv * HW * HW));
  std::vector<float> soft, embedded;
  res.fhat = Tensor::zeros(DType::F32, {B, Cv, HW, HW});
  float* fhat = res.fhat.mutable_data<float>();

  var.first_input(cond, x.data());
  for (int k = 0; k < K; ++k) {
    const auto t_scale = Clock::now();
    const int64_t n = sched.tokens(k);
    if (observer) observer->on_scale_input(k, x.data(), R, n, C);

    auto t0 = Clock::now();
    cache.begin_scale(k);
    var.forward_blocks(k, x.data(), cond, cache, ws);
    var.head(x.data(), n, cond, ws, logits.data());
    res.time.transformer_s += since(t0);
    if (observer) observer->on_logits_raw(k, logits.data(), R, n, V);

    // Classifier-free guidance with the reference's linear ramp: t = cfg * k / (K - 1).
    t0 = Clock::now();
    const double ratio = K > 1 ? static_cast<double>(k) / (K - 1) : 0.0;
    const auto t = static_cast<float>(opt.sampling.cfg * ratio);
    const float* cond_logits = logits.data();
    const float* uncond_logits = logits.data() + B * n * V;
    for (int64_t i = 0; i < B * n * V; ++i) guided[i] = (1.0f + t) * cond_logits[i] - t * uncond_logits[i];
    if (observer) observer->on_logits_cfg(k, guided.data(), B, n, V);
    if (opt.keep_logits) {
      Tensor lg = Tensor::zeros(DType::F32, {B, n, V});
      std::copy(guided.begin(), guided.begin() + B * n * V, lg.mutable_data<float>());
      res.logits_cfg.push_back(std::move(lg));
    }

    Tensor tok = Tensor::zeros(DType::I64, {B, n});
    int64_t* idx = tok.mutable_data<int64_t>();
    const bool smooth = opt.sampling.more_smooth && !opt.forced_tokens;
    if (opt.forced_tokens) {
      const std::string key = cat("forced_idx.", k);
      const Tensor& forced = opt.forced_tokens->at(key);
      AMSKV_CHECK(forced.ndim() == 2 && forced.dim(1) == n && forced.dim(0) >= opt.forced_offset + B,
                  opt.forced_tokens->source(), ": ", key, " has shape ", shape_str(forced.shape()), ", expected [",
                  opt.forced_offset + B, ", ", n, "]");
      const DType d = forced.dtype();
      AMSKV_CHECK(d == DType::I64 || d == DType::I32 || d == DType::I16 || d == DType::I8 || d == DType::U8,
                  opt.forced_tokens->source(), ": ", key, " has dtype ", dtype_name(d), ", expected integer tokens");
      const auto values = forced.to_f64_vector();
      for (int64_t i = 0; i < B * n; ++i) {
        const double v = values[static_cast<size_t>(opt.forced_offset * n + i)];
        AMSKV_CHECK(v >= 0 && v < V, opt.forced_tokens->source(), ": ", key, " holds token ", v,
                    " outside the vocabulary of ", V);
        idx[i] = static_cast<int64_t>(v);
      }
    } else {
      model::mask_top_k_top_p(guided.data(), B * n, V, opt.sampling.top_k, opt.sampling.top_p);
#pragma omp parallel for schedule(dynamic)
      for (int64_t b = 0; b < B; ++b)
        model::sample_tokens(guided.data() + b * n * V, n, V, opt.sampling.seed, opt.first_image_index + b, k,
                             idx + b * n);
    }
    if (observer) observer->on_tokens(k, idx, B, n);
    res.time.sampling_s += since(t0);

    // Tokens -> latent: f_hat += phi(up(codebook[idx])), then the next scale's input map.
    t0 = Clock::now();
    if (smooth) {
      soft.resize(static_cast<size_t>(n * V));
      embedded.resize(static_cast<size_t>(B * Cv * n));
      std::vector<float> h(static_cast<size_t>(n * Cv));
      for (int64_t b = 0; b < B; ++b) {
        model::gumbel_soft_weights(guided.data() + b * n * V, n, V, ratio, opt.sampling.seed,
                                   opt.first_image_index + b, k, soft.data());
        cpu::gemm(false, false, n, Cv, V, 1.0f, soft.data(), V, vae.codebook(), Cv, 0.0f, h.data(), Cv);
        for (int64_t tkn = 0; tkn < n; ++tkn)
          for (int64_t c = 0; c < Cv; ++c) embedded[(b * Cv + c) * n + tkn] = h[tkn * Cv + c];
      }
      vae.accumulate_embedded(sched.patch_nums, k, embedded.data(), B, fhat);
    } else {
      vae.accumulate_scale(sched.patch_nums, k, idx, B, fhat);
    }
    res.tokens.push_back(std::move(tok));
    if (observer) observer->on_fhat(k, fhat, B, Cv, HW);
    if (k + 1 < K) {
      const int64_t pn = sched.patch_nums[k + 1];
      vae.next_map(fhat, B, HW, pn, next.data());
      if (observer) observer->on_next_map(k, next.data(), B, Cv, pn);
      var.scale_input(k + 1, next.data(), B, x.data());
    }
    res.time.latent_s += since(t0);
    res.time.per_scale_s.push_back(since(t_scale));
    if (observer) observer->on_scale_done(k, K, res.time.per_scale_s.back());
  }
  res.time.attention_s = ws.attention_seconds;
  res.kv = cache.stats();
  res.policy = policy.describe();
  res.similarity = cache.similarity().sim;
  if (opt.analysis.density) res.density = cache.density();

  if (opt.decode_images) {
    const auto t0 = Clock::now();
    res.images = vae.decode(res.fhat);
    res.time.decode_s = since(t0);
  }
  res.time.total_s = since(t_start);
  return res;
}

}  // namespace amskv::engine
