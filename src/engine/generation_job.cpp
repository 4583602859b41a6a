#include "engine/generation_job.h"

#include <algorithm>
#include <new>

#include "io/non_finite.h"
#include "io/tensor_file.h"

namespace amskv::engine {

namespace {
// An 8-bit store keeps whole scales; a token-level policy rewrites single tokens of its store every scale.
void check_kv_storage(const backend::Backend& be, const kv::PolicyFactory& factory) {
  if (be.kv_dtype() != DType::I8) return;
  const auto policy = factory.make();
  AMSKV_CHECK(!policy->token_level(), "--kv-dtype int8 stores whole scales, and the ", policy->name(),
              " policy keeps single tokens: run it with --kv-dtype auto");
}

// Forwards per-scale progress of one batch to the job's callback; wants no tensors.
class ProgressObserver final : public GenerationObserver {
 public:
  ProgressObserver(const ProgressFn& fn, int64_t first, int64_t count, int64_t total)
      : fn_(fn), first_(first), count_(count), total_(total) {}
  bool wants_tensors() const override { return false; }
  bool wants_tokens() const override { return false; }
  void on_scale_done(int k, int num_scales, double seconds) override { fn_(first_, count_, total_, k, num_scales, seconds); }

 private:
  const ProgressFn& fn_;
  int64_t first_, count_, total_;
};

// A checkpoint's tensors, refused when a weight is NaN or infinite (`skip`: keys the model never reads).
io::TensorMap load_finite(const std::string& path, const char* what,
                          const std::function<bool(std::string_view)>& skip) {
  io::TensorMap t = io::load_tensor_file(path);
  if (const auto bad = io::find_non_finite(t, skip)) {
    fail(path, ": tensor ", bad->key, " holds ", bad->count, " NaN/Inf value", bad->count == 1 ? "" : "s",
         " (first at flat index ", bad->first_index, ")",
         bad->tensors > 1 ? cat("; ", bad->total, " in ", bad->tensors, " tensors in all") : std::string(),
         ": the ", what, " checkpoint is damaged");
  }
  return t;
}

bool var_unused_key(std::string_view key) { return key == "attn_bias_for_masking"; }  // the causal mask: -inf

}  // namespace

PlanShapes LoadedModels::plan_shapes() const {
  PlanShapes s;
  s.var = var->config();
  const int64_t hw = s.var.schedule.last_side();
  s.decoder_bytes_per_image = model::decoder_bytes_per_image(vae->config(), hw, *backend);
  s.image_side = hw * vae->config().upsample_factor();
  return s;
}

LoadedModels load_models(const std::string& var_path, const std::string& vae_path,
                         const std::vector<int64_t>& patch_nums, const backend::BackendOptions& backend_options) {
  LoadedModels m;
  m.var_path = var_path;
  m.vae_path = vae_path;
  m.backend = backend::make_backend(backend_options);
  try {
    m.var = std::make_unique<model::VarModel>(*m.backend, load_finite(var_path, "transformer", var_unused_key),
                                              patch_nums);
  } catch (const std::bad_alloc&) {
    fail(var_path, ": out of memory while loading the transformer onto ", m.backend->name());
  }
  try {
    m.vae = std::make_unique<model::Vqvae>(*m.backend, load_finite(vae_path, "VQVAE", nullptr));
  } catch (const std::bad_alloc&) {
    fail(vae_path, ": out of memory while loading the VQVAE onto ", m.backend->name());
  }
  check_compatible(m.var->config(), var_path, m.vae->config(), vae_path);
  return m;
}

GenerationJob::GenerationJob(JobOptions options, const kv::PolicyOptions& policy)
    : opt_(std::move(options)),
      policy_(policy),
      models_(load_models(opt_.var_path, opt_.vae_path, opt_.patch_nums, opt_.backend)) {
  const model::VarConfig& cfg = models_.var->config();
  policy_.check_depth(static_cast<int>(cfg.depth));
  AMSKV_CHECK(!opt_.labels.empty(), "no labels given");
  for (int64_t l : opt_.labels) class_rows_for({l}, cfg.num_classes);  // every label checked before any work
  const int64_t total = images();
  AMSKV_CHECK(opt_.first_image_index <= (uint64_t{1} << 62), "first image index ", opt_.first_image_index,
              " is out of range");
  const int64_t rows_needed = static_cast<int64_t>(opt_.first_image_index) + total;
  if (!opt_.force_tokens.empty()) {
    forced_ = io::load_tensor_file(opt_.force_tokens);
    has_forced_ = true;
    // Every scale's tokens must cover every image, checked now rather than at the batch that runs short.
    for (int k = 0; k < cfg.schedule.num_scales(); ++k) {
      const std::string key = cat("forced_idx.", k);
      const Tensor& t = forced_.at(key);
      AMSKV_CHECK(t.ndim() == 2 && t.dim(0) >= rows_needed && t.dim(1) == cfg.schedule.tokens(k), opt_.force_tokens,
                  ": ", key, " has shape ", shape_str(t.shape()), ", expected [", rows_needed, ", ",
                  cfg.schedule.tokens(k), "] (one row per label",
                  opt_.first_image_index ? cat(", from row ", opt_.first_image_index) : std::string(), ")");
    }
  }
  backend::Backend& be = *models_.backend;
  check_kv_storage(be, policy_);
  const PlanShapes shapes = models_.plan_shapes();
  const int64_t available = usable_memory(be.memory().free_bytes);
  const int64_t per_pass = be.decoder_images_per_pass(shapes.decoder_bytes_per_image);
  if (opt_.exec_plan) {
    plan_ = plan_batch(shapes, policy_, be.compute_dtype(), be.kv_dtype(), total, *opt_.exec_plan, per_pass);
    AMSKV_CHECK(plan_.total_bytes() <= available, "the execution plan to repeat needs ", plan_.summary(), " and ",
                gib(available), " are free on ", be.name());
    return;
  }
  const int64_t wanted = opt_.batch > 0 ? std::min(opt_.batch, total) : total;
  plan_ = fit_batch(shapes, policy_, be.compute_dtype(), be.kv_dtype(), wanted, available, per_pass);
  if (plan_.batch == 0) {
    const int64_t fits = largest_batch(shapes, policy_, be.compute_dtype(), be.kv_dtype(), available, per_pass, wanted);
    const MemoryPlan one = plan_batch(shapes, policy_, be.compute_dtype(), be.kv_dtype(), 1, {}, per_pass);
    AMSKV_CHECK(fits > 0, "not even one image fits on ", be.name(), ": it needs ", one.summary(), " and ", gib(available),
                " are free");
    AMSKV_CHECK(opt_.batch == 0, "--batch ", opt_.batch, " does not fit on ", be.name(), ": ", gib(available),
                " are free, and the largest batch that fits is ", fits, " (", policy.name, " KV cache, ",
                fit_batch(shapes, policy_, be.compute_dtype(), be.kv_dtype(), fits, available, per_pass).summary(), ")");
    plan_ = fit_batch(shapes, policy_, be.compute_dtype(), be.kv_dtype(), fits, available, per_pass);
  }
}

void GenerationJob::run_batches(const RunSettings& settings, const BatchCallback& on_batch,
                                const ProgressFn& progress) const {
  run_batches(policy_, settings, on_batch, progress);
}

void GenerationJob::run_batches(const kv::PolicyFactory& policy_factory, const RunSettings& settings,
                                const BatchCallback& on_batch, const ProgressFn& progress) const {
  const int64_t total = images(), batch = plan_.batch;
  Generator generator(*models_.var, *models_.vae);
  for (int64_t first = 0; first < total; first += batch) {
    const int64_t count = std::min(batch, total - first);
    GenerateOptions go;
    go.labels.assign(opt_.labels.begin() + first, opt_.labels.begin() + first + count);
    go.sampling = opt_.sampling;
    go.first_image_index = opt_.first_image_index + static_cast<uint64_t>(first);
    go.forced_tokens = has_forced_ ? &forced_ : nullptr;
    go.forced_offset = static_cast<int64_t>(opt_.first_image_index) + first;
    go.keep_logits = settings.keep_logits;
    go.decode_images = settings.decode;
    go.analysis = settings.analysis;
    go.plan = plan_.exec;
    // Only a full batch that another full batch follows or precedes is worth recording whole.
    go.record_steps = settings.record_steps && count == batch && total > batch;
    auto policy = policy_factory.make();
    std::unique_ptr<ProgressObserver> observer;
    if (progress) observer = std::make_unique<ProgressObserver>(progress, first, count, total);
    on_batch(generator.generate(*policy, go, observer.get()), first);
  }
}

GenerateResult GenerationJob::run(const RunSettings& settings, const ProgressFn& progress) const {
  return run(policy_, settings, progress);
}

GenerateResult GenerationJob::run(const kv::PolicyFactory& policy, const RunSettings& settings,
                                  const ProgressFn& progress) const {
  BatchMerger merger(/*keep_tensors=*/true);
  run_batches(policy, settings, [&](GenerateResult&& r, int64_t) { merger.add(std::move(r)); }, progress);
  return merger.finish();
}

GenerateResult GenerationJob::run(const kv::PolicyOptions& policy, const RunSettings& settings,
                                  const ProgressFn& progress) const {
  const kv::PolicyFactory factory(policy);
  factory.check_depth(static_cast<int>(models_.var->config().depth));
  check_kv_storage(*models_.backend, factory);
  return run(factory, settings, progress);
}

}  // namespace amskv::engine
