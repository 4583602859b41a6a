#include "engine/batch_merger.h"

#include <cmath>
#include <cstring>

namespace amskv::engine {

namespace {

// Concatenates along the first dimension; every part has the same trailing shape and dtype.
Tensor concat_first_dim(const std::vector<const Tensor*>& parts) {
  if (parts.empty() || !parts[0]->defined() || parts[0]->numel() == 0) return {};
  if (parts.size() == 1) return *parts[0];
  Shape shape = parts[0]->shape();
  shape[0] = 0;
  for (const Tensor* t : parts) shape[0] += t->dim(0);
  Tensor out = Tensor::zeros(parts[0]->dtype(), shape);
  auto* dst = static_cast<unsigned char*>(const_cast<void*>(out.raw()));
  for (const Tensor* t : parts) {
    std::memcpy(dst, t->raw(), t->nbytes());
    dst += t->nbytes();
  }
  return out;
}

}  // namespace

void BatchMerger::add(GenerateResult&& r) {
  const int64_t n = r.tokens.empty() ? 0 : r.tokens[0].dim(0);
  const auto w = static_cast<double>(n);
  if (images_ == 0) {
    merged_.kv = r.kv;
    merged_.policy = r.policy;
    merged_.time = r.time;
    merged_.density = r.density;
    for (auto& layer : merged_.density)
      for (auto& row : layer)
        for (double& v : row) v *= w;
    sim_sum_.assign(r.similarity.size(), {});
    sim_weight_.assign(r.similarity.size(), {});
    for (size_t l = 0; l < r.similarity.size(); ++l) {
      sim_sum_[l].assign(r.similarity[l].size(), 0.0);
      sim_weight_[l].assign(r.similarity[l].size(), 0.0);
    }
  } else {
    auto& t = merged_.time;
    t.total_s += r.time.total_s, t.transformer_s += r.time.transformer_s, t.attention_s += r.time.attention_s;
    t.matmul_s += r.time.matmul_s;
    t.sampling_s += r.time.sampling_s, t.latent_s += r.time.latent_s, t.decode_s += r.time.decode_s;
    for (size_t k = 0; k < r.time.per_scale_s.size() && k < t.per_scale_s.size(); ++k)
      t.per_scale_s[k] += r.time.per_scale_s[k];
    for (size_t l = 0; l < r.density.size(); ++l)
      for (size_t j = 0; j < r.density[l].size(); ++j)
        for (size_t i = 0; i < r.density[l][j].size(); ++i) merged_.density[l][j][i] += w * r.density[l][j][i];
  }
  for (size_t l = 0; l < r.similarity.size(); ++l)
    for (size_t s = 0; s < r.similarity[l].size(); ++s)
      if (std::isfinite(r.similarity[l][s])) sim_sum_[l][s] += w * r.similarity[l][s], sim_weight_[l][s] += w;
  images_ += n;
  if (keep_tensors_) parts_.push_back(std::move(r));
}

GenerateResult BatchMerger::finish() {
  GenerateResult out = std::move(merged_);
  const auto total = static_cast<double>(std::max<int64_t>(images_, 1));
  for (auto& layer : out.density)
    for (auto& row : layer)
      for (double& v : row) v /= total;
  out.similarity.assign(sim_sum_.size(), {});
  for (size_t l = 0; l < sim_sum_.size(); ++l)
    for (size_t s = 0; s < sim_sum_[l].size(); ++s)
      out.similarity[l].push_back(sim_weight_[l][s] > 0 ? sim_sum_[l][s] / sim_weight_[l][s] : std::nan(""));
  if (!parts_.empty()) {
    auto gather = [&](auto member) {
      std::vector<const Tensor*> ts;
      for (const auto& p : parts_) ts.push_back(&(p.*member));
      return concat_first_dim(ts);
    };
    out.images = gather(&GenerateResult::images);
    out.fhat = gather(&GenerateResult::fhat);
    for (size_t k = 0; k < parts_[0].tokens.size(); ++k) {
      std::vector<const Tensor*> ts;
      for (const auto& p : parts_) ts.push_back(&p.tokens[k]);
      out.tokens.push_back(concat_first_dim(ts));
    }
    for (size_t k = 0; k < parts_[0].logits_cfg.size(); ++k) {
      std::vector<const Tensor*> ts;
      for (const auto& p : parts_) ts.push_back(&p.logits_cfg[k]);
      out.logits_cfg.push_back(concat_first_dim(ts));
    }
  }
  parts_.clear();
  return out;
}

}  // namespace amskv::engine
