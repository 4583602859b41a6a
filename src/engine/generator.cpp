#include "engine/generator.h"

#include <algorithm>
#include <atomic>
#include <chrono>

namespace amskv::engine {

using backend::DeviceBuffer;
using backend::DeviceSpan;
using backend::OpTimer;

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// A host copy of device values, for observers and results.
std::vector<float> download_floats(backend::Backend& be, DeviceSpan span) {
  std::vector<float> host(static_cast<size_t>(span.size()));
  be.download(span, host.data());
  return host;
}

// The tokens of scale k from a --force-tokens file, checked (dtype, shape, vocabulary) on the host.
std::vector<int64_t> forced_tokens(const io::TensorMap& file, int k, int64_t offset, int64_t batch, int64_t n,
                                   int64_t vocab) {
  const std::string key = cat("forced_idx.", k);
  const Tensor& forced = file.at(key);
  AMSKV_CHECK(forced.ndim() == 2 && forced.dim(1) == n && forced.dim(0) >= offset + batch, file.source(), ": ", key,
              " has shape ", shape_str(forced.shape()), ", expected [", offset + batch, ", ", n, "]");
  const DType d = forced.dtype();
  AMSKV_CHECK(d == DType::I64 || d == DType::I32 || d == DType::I16 || d == DType::I8 || d == DType::U8, file.source(),
              ": ", key, " has dtype ", dtype_name(d), ", expected integer tokens");
  const auto values = forced.to_f64_vector();
  std::vector<int64_t> out(static_cast<size_t>(batch * n));
  for (int64_t i = 0; i < batch * n; ++i) {
    const double v = values[static_cast<size_t>(offset * n + i)];
    AMSKV_CHECK(v >= 0 && v < vocab, file.source(), ": ", key, " holds token ", v, " outside the vocabulary of ", vocab);
    out[static_cast<size_t>(i)] = static_cast<int64_t>(v);
  }
  return out;
}

// Whether nothing needs to look inside a scale, so the backend may record each scale's work
// (GenerateOptions::record_steps).
bool may_record(const backend::Backend& be, const GenerateOptions& o, const GenerationObserver* observer,
                const kv::CachePolicy& policy) {
  return o.record_steps && be.can_record_steps() && !o.time_ops && !o.forced_tokens && !o.keep_logits &&
         !o.sampling.more_smooth && !o.analysis.density && !policy.token_level() &&
         !(observer && (observer->wants_tensors() || observer->wants_tokens()));
}

// Whether the whole request may be recorded once and replayed for later batches: also nothing read back from
// the device in the middle (AMS-KV's similarity-driven budgets, the similarity analysis) decides what runs.
bool may_keep(const backend::Backend& be, const GenerateOptions& o, const GenerationObserver* observer,
              const kv::CachePolicy& policy) {
  return may_record(be, o, observer, policy) && !policy.wants_similarity() && !o.analysis.similarity;
}

// What a kept request's recording depends on besides its buffers: everything but the labels and the first
// image's number, which are uploaded before each replay (and the backend's K/V storage, which a test may switch).
std::string replay_signature(const backend::Backend& be, const kv::CachePolicy& policy, const GenerateOptions& o) {
  const auto& s = o.sampling;
  return nlohmann::json{{"policy", policy.describe()}, {"kv_dtype", dtype_name(be.kv_dtype())},
                        {"batch", o.labels.size()}, {"cfg", s.cfg},
                        {"top_k", s.top_k}, {"top_p", s.top_p}, {"seed", s.seed}, {"decode", o.decode_images},
                        {"chunk_rows", o.plan.chunk_rows}, {"head_images", o.plan.head_images}}
      .dump();
}

}  // namespace

// One request, as named steps that each backend runs in its own memory: condition, transformer, choose the
// tokens (head, guidance, sampling), update the latent, decode. A kept generation (Generator) records all of
// it as one step on its first run and replays that step on later runs of the same shape: its buffers stay
// in place, and the labels and the first image's number are uploaded into them before each replay.
class Generation {
 public:
  Generation(const model::VarModel& var, const model::Vqvae& vae, kv::CachePolicy& policy, const GenerateOptions& o,
             bool keep)
      : var_(var),
        vae_(vae),
        be_(var.backend()),
        cfg_(var.config()),
        K_(cfg_.schedule.num_scales()),
        B_(static_cast<int64_t>(o.labels.size())),
        R_(2 * B_),
        keep_(keep),
        cond_(var.conditioning_for(R_)),
        cache_(be_, policy, model::kv_schedule(cfg_), cfg_.schedule.patch_nums, R_, cfg_.heads, cfg_.head_dim,
               o.analysis),
        head_images_(o.plan.head_images > 0 ? std::min(o.plan.head_images, B_) : B_),
        ws_(be_, cfg_, R_, std::max(o.plan.chunk_rows > 0 ? o.plan.chunk_rows : R_, head_images_), o.time_ops) {
    int64_t n_max = 0;
    for (int k = 0; k < K_; ++k) n_max = std::max(n_max, cfg_.schedule.tokens(k));
    const int64_t HW = cfg_.schedule.last_side(), V = cfg_.vocab, Cv = cfg_.cvae;
    class_ids_ = be_.alloc(DType::I64, R_);
    image_base_ = be_.alloc(DType::I64, 1);
    logits_ = be_.alloc(DType::F32, 2 * head_images_ * n_max * V);
    guided_ = be_.alloc(DType::F32, head_images_ * n_max * V);
    tokens_ = be_.alloc(DType::I64, B_ * cfg_.schedule.total_tokens);  // every scale's, read back once at the end
    fhat_ = be_.alloc(DType::F32, B_ * Cv * HW * HW);
    next_ = be_.alloc(DType::F32, B_ * Cv * HW * HW);
    if (o.sampling.more_smooth && !o.forced_tokens) soft_ = be_.alloc(DType::F32, B_ * n_max * Cv);
    if (keep_) kept_key_ = static_cast<uint64_t>(Step::Kept) << 56 | next_kept_id();
  }
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;
  ~Generation() {
    if (recorded_) be_.drop_step(kept_key_);
  }

  // The scales are enqueued back to back: nothing waits for the device until the results are read (unless an
  // observer wants each scale's tokens or tensors), so the host prepares the next launches while the device
  // works, which is what keeps small batches from being launch-bound. Phases are timed on the device.
  GenerateResult run(kv::CachePolicy& policy, const GenerateOptions& o, GenerationObserver* observer) {
    AMSKV_CHECK(static_cast<int64_t>(o.labels.size()) == B_, "generate: ", o.labels.size(), " labels for a batch of ",
                B_);
    opt_ = &o;
    obs_ = observer && observer->wants_tensors() ? observer : nullptr;
    progress_ = observer;
    res_ = GenerateResult{};
    record_ = may_record(be_, o, observer, policy);
    AMSKV_CHECK(!keep_ || record_, "generate: a kept generation run in a way that cannot be recorded");
    // Phase timers would put events inside a recorded scale; recorded runs time whole scales only (kept
    // ones only the whole request).
    for (auto* t : {&transformer_timer_, &sampling_timer_, &latent_timer_})
      *t = record_ ? std::make_unique<backend::NullTimer>() : be_.make_timer();
    scale_timers_.clear();
    if (!keep_)
      for (int k = 0; k < K_; ++k) scale_timers_.push_back(be_.make_timer());
    const auto t_start = Clock::now();
    const auto rows = class_rows_for(o.labels, cfg_.num_classes);
    be_.upload(class_ids_, rows.data(), DType::I64);
    const auto first_image = static_cast<int64_t>(o.first_image_index);
    be_.upload(image_base_, &first_image, DType::I64);
    if (keep_ && recorded_) {
      // Nothing on the host runs: cache_ (whose policy reference is the recording request's, gone by now)
      // and the policy passed here are not asked; the recording's host results stand for this request's.
      AMSKV_CHECK(be_.replay_step(kept_key_), "generate: the backend lost a kept generation's recording");
      res_.time.enqueue_s = since(t_start);
      results_from(recorded_host_);
      res_.replayed = true;
    } else {
      backend::RecordedStep whole(be_, keep_, kept_key_, /*keep=*/true);
      enqueue_scales();
      if (keep_ && o.decode_images) images_ = decode_into_buffer();
      whole.finish();
      recorded_ = keep_;
      res_.time.enqueue_s = since(t_start);
      HostResults host;
      host.kv = cache_.stats();
      host.policy = policy.describe();
      host.similarity = cache_.similarity().sim;
      if (o.analysis.density) host.density = cache_.density();
      results_from(host);
      if (keep_) recorded_host_ = std::move(host);
    }
    for (auto& t : scale_timers_) res_.time.per_scale_s.push_back(t->seconds());
    res_.time.transformer_s = transformer_timer_->seconds();
    res_.time.sampling_s = sampling_timer_->seconds();
    res_.time.latent_s = latent_timer_->seconds();
    res_.time.attention_s = ws_.attention_timer->seconds();
    res_.time.matmul_s = ws_.matmul_timer->seconds();
    read_tokens();
    res_.fhat = Tensor::zeros(DType::F32, {B_, cfg_.cvae, cfg_.schedule.last_side(), cfg_.schedule.last_side()});
    be_.download(fhat_, res_.fhat.mutable_data<float>());
    if (o.decode_images) {
      if (keep_) {
        download_images(images_);
      } else {
        const auto t0 = Clock::now();
        backend::RecordedStep step(be_, record_, step_key(Step::Decode, 0));
        const DeviceBuffer images = decode_into_buffer();
        step.finish();
        download_images(images);
        res_.time.decode_s = since(t0);
      }
    }
    res_.time.total_s = since(t_start);
    if (keep_ && progress_) progress_->on_scale_done(K_ - 1, K_, res_.time.total_s);
    res_.steps_recorded = record_;
    return std::move(res_);
  }

 private:
  // What the host learns while the work is enqueued; a replay returns the recording's.
  struct HostResults {
    kv::KvStats kv;
    nlohmann::json policy;
    std::vector<std::vector<double>> similarity;
    std::vector<std::vector<std::vector<double>>> density;
  };
  void results_from(const HostResults& h) {
    res_.kv = h.kv;
    res_.policy = h.policy;
    res_.similarity = h.similarity;
    res_.density = h.density;
  }

  // Conditioning, then every scale: transformer, tokens, latent.
  void enqueue_scales() {
    var_.condition_into(class_ids_, cond_);
    be_.fill_zero(fhat_);
    var_.first_input(cond_, ws_);
    for (int k = 0; k < K_; ++k) {
      OpTimer* scale = keep_ ? nullptr : scale_timers_[static_cast<size_t>(k)].get();
      if (scale) scale->start();
      cache_.begin_scale(k);  // reads back the last scale's measurements and plans: before any recording
      backend::RecordedStep step(be_, record_ && !keep_, step_key(Step::Scale, k));
      run_transformer(k);
      choose_tokens(k);
      update_latent(k);
      step.finish();
      if (!scale) continue;
      scale->stop();
      if (progress_) progress_->on_scale_done(k, K_, scale->seconds());
    }
  }

  void run_transformer(int k) {
    transformer_timer_->start();
    const int64_t n = cfg_.schedule.tokens(k);
    if (obs_) obs_->on_scale_input(k, download_floats(be_, ws_.x.slice(0, R_ * n * cfg_.width)).data(), R_, n, cfg_.width);
    var_.forward_blocks(k, cond_, cache_, ws_);
    transformer_timer_->stop();
  }

  DeviceSpan scale_tokens(int k) const {
    return tokens_.slice(B_ * cfg_.schedule.starts[static_cast<size_t>(k)], B_ * cfg_.schedule.tokens(k));
  }

  // Every scale's tokens, [B, n_k] each, in one download.
  void read_tokens() {
    std::vector<int64_t> all(static_cast<size_t>(B_ * cfg_.schedule.total_tokens));
    be_.download(tokens_, all.data());
    for (int k = 0; k < K_; ++k) {
      Tensor tok = Tensor::zeros(DType::I64, {B_, cfg_.schedule.tokens(k)});
      const auto first = all.begin() + B_ * cfg_.schedule.starts[static_cast<size_t>(k)];
      std::copy(first, first + tok.numel(), tok.mutable_data<int64_t>());
      res_.tokens.push_back(std::move(tok));
    }
  }

  // Head and guidance for images [b0, b0 + count): the conditional rows' logits, then the unconditional ones,
  // blended with the reference's linear ramp t = cfg · k / (K − 1).
  DeviceSpan guide(int k, int64_t b0, int64_t count, std::vector<float>* raw_host, std::vector<float>* cfg_host) {
    const int64_t n = cfg_.schedule.tokens(k), V = cfg_.vocab, per = count * n * V;
    const DeviceSpan logits = logits_.slice(0, 2 * per), guided = guided_.slice(0, per);
    var_.head(n, cond_, ws_, b0, count, logits.slice(0, per));
    var_.head(n, cond_, ws_, B_ + b0, count, logits.slice(per, per));
    const double ratio = K_ > 1 ? static_cast<double>(k) / (K_ - 1) : 0.0;
    be_.cfg_blend(logits, static_cast<float>(opt_->sampling.cfg * ratio), guided);
    if (raw_host) {  // [2B, n, V]: conditional rows first
      const auto both = download_floats(be_, logits);
      std::copy(both.begin(), both.begin() + per, raw_host->begin() + b0 * n * V);
      std::copy(both.begin() + per, both.end(), raw_host->begin() + (B_ + b0) * n * V);
    }
    if (cfg_host) {
      const auto g = download_floats(be_, guided);
      std::copy(g.begin(), g.end(), cfg_host->begin() + b0 * n * V);
    }
    return guided;
  }

  void choose_tokens(int k) {
    sampling_timer_->start();
    const int64_t n = cfg_.schedule.tokens(k), V = cfg_.vocab;
    const bool keep = opt_->keep_logits || obs_;
    std::vector<float> raw, guided_host;
    if (obs_) raw.resize(static_cast<size_t>(R_ * n * V));
    if (keep) guided_host.resize(static_cast<size_t>(B_ * n * V));
    const DeviceSpan tokens = scale_tokens(k);
    if (opt_->forced_tokens) {
      const auto forced = forced_tokens(*opt_->forced_tokens, k, opt_->forced_offset, B_, n, V);
      be_.upload(tokens, forced.data(), DType::I64);
    }
    // The first image's number is read from image_base_, so a replay draws for the images it is given.
    const backend::TokenSampling sampling{opt_->sampling.top_k, opt_->sampling.top_p, opt_->sampling.seed, image_base_};
    const double ratio = K_ > 1 ? static_cast<double>(k) / (K_ - 1) : 0.0;
    for (int64_t b0 = 0; b0 < B_; b0 += head_images_) {
      const int64_t count = std::min(head_images_, B_ - b0);
      const DeviceSpan guided = guide(k, b0, count, obs_ ? &raw : nullptr, keep ? &guided_host : nullptr);
      if (opt_->forced_tokens) continue;
      const DeviceSpan chunk_tokens = tokens.slice(b0 * n, count * n);
      be_.sample_tokens(guided, count, n, V, sampling, static_cast<uint64_t>(b0), k, chunk_tokens);
      if (soft_.allocated())  // more_smooth: soft codebook mixtures from the masked logits
        be_.soft_token_embedding(guided, count, n, V, ratio, opt_->sampling.seed,
                                 opt_->first_image_index + static_cast<uint64_t>(b0), k, vae_.codebook(), cfg_.cvae,
                                 soft_.slice(b0 * n * cfg_.cvae, count * n * cfg_.cvae));
    }
    if (obs_) obs_->on_logits_raw(k, raw.data(), R_, n, V);
    if (obs_) obs_->on_logits_cfg(k, guided_host.data(), B_, n, V);
    if (opt_->keep_logits) res_.logits_cfg.push_back(Tensor::from_vector<float>({B_, n, V}, guided_host));
    if (progress_ && progress_->wants_tokens()) {
      std::vector<int64_t> tok(static_cast<size_t>(B_ * n));
      be_.download(tokens, tok.data());
      progress_->on_tokens(k, tok.data(), B_, n);
    }
    sampling_timer_->stop();
  }

  // Tokens -> latent: f_hat += φ(up(codebook[idx])), then the next scale's input map.
  void update_latent(int k) {
    latent_timer_->start();
    const int64_t n = cfg_.schedule.tokens(k), Cv = cfg_.cvae, HW = cfg_.schedule.last_side();
    const auto& sides = cfg_.schedule.patch_nums;
    if (soft_.allocated()) {
      DeviceBuffer h = be_.alloc(DType::F32, B_ * Cv * n);
      be_.transpose(soft_.slice(0, B_ * n * Cv), B_, n, Cv, h);
      vae_.accumulate_embedded(sides, k, h, B_, fhat_);
    } else {
      vae_.accumulate_scale(sides, k, scale_tokens(k), B_, fhat_);
    }
    if (obs_) obs_->on_fhat(k, download_floats(be_, fhat_).data(), B_, Cv, HW);
    if (k + 1 < K_) {
      const int64_t pn = sides[static_cast<size_t>(k + 1)];
      const DeviceSpan next = next_.slice(0, B_ * Cv * pn * pn);
      vae_.next_map(fhat_, B_, HW, pn, next);
      if (obs_) obs_->on_next_map(k, download_floats(be_, next).data(), B_, Cv, pn);
      var_.scale_input(k + 1, next, B_, ws_);
    }
    latent_timer_->stop();
  }

  DeviceBuffer decode_into_buffer() { return vae_.decode(fhat_, B_, cfg_.schedule.last_side()); }
  void download_images(DeviceSpan images) {
    const int64_t side = cfg_.schedule.last_side() * vae_.config().upsample_factor();
    res_.images = Tensor::zeros(DType::F32, {B_, 3, side, side});
    be_.download(images, res_.images.mutable_data<float>());
  }

  // Recorded steps are kept per (what, scale, batch size): the same key then usually enqueues the same
  // operations and only updates the recorded unit's arguments. A kept generation's step has a key of its own.
  enum class Step : uint64_t { Scale = 1, Decode = 2, Kept = 3 };
  uint64_t step_key(Step what, int k) const {
    return static_cast<uint64_t>(what) << 56 | static_cast<uint64_t>(k) << 40 | static_cast<uint64_t>(B_);
  }
  static uint64_t next_kept_id() {
    static std::atomic<uint64_t> next{1};
    return next++ & ((uint64_t{1} << 56) - 1);
  }

  const model::VarModel& var_;
  const model::Vqvae& vae_;
  backend::Backend& be_;
  const model::VarConfig& cfg_;
  const int K_;
  const int64_t B_, R_;
  const bool keep_;               // recorded whole on the first run, replayed on later ones
  uint64_t kept_key_ = 0;
  bool recorded_ = false;         // the kept step exists
  HostResults recorded_host_;     // what the recording run learnt on the host
  const GenerateOptions* opt_ = nullptr;   // the current run's
  GenerationObserver* obs_ = nullptr;      // tensor hooks (null when none are wanted)
  GenerationObserver* progress_ = nullptr; // per-scale hooks
  model::Conditioning cond_;
  kv::KvCache cache_;
  const int64_t head_images_;
  model::Workspace ws_;
  DeviceBuffer class_ids_, image_base_, logits_, guided_, tokens_, fhat_, next_, soft_, images_;
  bool record_ = false;
  std::unique_ptr<OpTimer> transformer_timer_, sampling_timer_, latent_timer_;
  std::vector<std::unique_ptr<OpTimer>> scale_timers_;
  GenerateResult res_;
};

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

namespace {
void check_request(const model::VarModel& var, const model::Vqvae& vae, const GenerateOptions& options) {
  AMSKV_CHECK(!options.labels.empty(), "generate: no labels given");
  AMSKV_CHECK(&var.backend() == &vae.backend(), "generate: the transformer and the VQVAE live on different backends");
  AMSKV_CHECK(vae.config().vocab == var.config().vocab && vae.config().cvae == var.config().cvae,
              "generate: the VQVAE does not fit the transformer");
}
}  // namespace

GenerateResult generate(const model::VarModel& var, const model::Vqvae& vae, kv::CachePolicy& policy,
                        const GenerateOptions& options, GenerationObserver* observer) {
  check_request(var, vae, options);
  Generation g(var, vae, policy, options, /*keep=*/false);
  return g.run(policy, options, observer);
}

Generator::Generator(const model::VarModel& var, const model::Vqvae& vae) : var_(var), vae_(vae) {}
Generator::~Generator() = default;

GenerateResult Generator::generate(kv::CachePolicy& policy, const GenerateOptions& options,
                                   GenerationObserver* observer) {
  check_request(var_, vae_, options);
  // What a policy wants and how it describes itself are settled by begin(): AMS-KV's budgets, and whether
  // a profile already decided its layers (the cache begins it again; begin() starts afresh).
  policy.begin(model::kv_schedule(var_.config()));
  if (!may_keep(var_.backend(), options, observer, policy)) {
    kept_.reset();  // its buffers go before this request's are allocated
    // Launched, not recorded per scale: recording a scale costs the host as much as launching it, and a
    // policy that reads the device between scales then waits on each recording (H200, d16 batch 1 with
    // AMS-KV: 22.3 ms recorded per scale, 15.5 launched).
    GenerateOptions launched = options;
    launched.record_steps = false;
    Generation g(var_, vae_, policy, launched, /*keep=*/false);
    return g.run(policy, launched, observer);
  }
  std::string signature = replay_signature(var_.backend(), policy, options);
  if (!kept_ || signature != kept_signature_) {
    kept_.reset();
    kept_ = std::make_unique<Generation>(var_, vae_, policy, options, /*keep=*/true);
    kept_signature_ = std::move(signature);
  }
  try {
    return kept_->run(policy, options, observer);
  } catch (...) {
    kept_.reset();  // a recording or replay that failed is not kept
    throw;
  }
}

}  // namespace amskv::engine
