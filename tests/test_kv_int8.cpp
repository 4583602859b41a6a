// The 8-bit KV store (--kv-dtype int8) on the CPU: the rounding rule, the store's bookkeeping of scales
// through eviction, compaction and growth, attention over 8-bit segments, the memory planner's bytes, and
// forced golden runs (whose tokens cannot drift) against the reference and the float32 store.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/kv_int8_ops.h"
#include "core/error.h"
#include "engine/memory_planner.h"
#include "golden_case.h"
#include "kv/kv_store.h"
#include "kv/memory_plan.h"
#include "kv/memory_report.h"
#include "kv/policies/recency_policy.h"
#include "kv/policy_factory.h"
#include "model/random_model.h"
#include "model/var_model.h"

namespace amskv {
namespace {

std::vector<float> random_values(int64_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

backend::DeviceBuffer uploaded(backend::Backend& b, const std::vector<float>& v) {
  backend::DeviceBuffer buf = b.alloc(DType::F32, static_cast<int64_t>(v.size()));
  b.upload(buf, v.data(), DType::F32);
  return buf;
}

TEST(KvInt8, RoundingKeepsEveryValueWithinHalfAStep) {
  backend::CpuBackend cpu;
  const int64_t blocks = 5, tokens = 7, width = 64, capacity = 9;
  auto v = random_values(blocks * tokens * width, 1, -3.0f, 3.0f);
  for (int64_t d = 0; d < width; ++d) v[static_cast<size_t>((2 * tokens + 3) * width + d)] = 0.0f;
  const auto src = uploaded(cpu, v);
  backend::DeviceBuffer q = cpu.alloc(DType::I8, blocks * capacity * width);
  backend::DeviceBuffer scales = cpu.alloc(DType::F32, blocks * capacity);
  cpu.quantize_blocks(q, capacity * width, scales, capacity, src, tokens * width, tokens, width, blocks);
  const auto* qs = static_cast<const int8_t*>(q.span().raw());
  const auto* ss = static_cast<const float*>(scales.span().raw());
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t t = 0; t < tokens; ++t) {
      const float* x = v.data() + (b * tokens + t) * width;
      float m = 0.0f;
      for (int64_t d = 0; d < width; ++d) m = std::max(m, std::fabs(x[d]));
      const float scale = ss[b * capacity + t];
      EXPECT_FLOAT_EQ(scale, m / 127.0f);
      int largest = 0;
      for (int64_t d = 0; d < width; ++d) {
        const int8_t qd = qs[(b * capacity + t) * width + d];
        largest = std::max(largest, std::abs(static_cast<int>(qd)));
        EXPECT_LE(std::fabs(qd * scale - x[d]), m / 254.0f * (1.0f + 1e-5f) + 1e-7f) << b << " " << t << " " << d;
      }
      EXPECT_EQ(largest, m > 0.0f ? 127 : 0) << "block " << b << " token " << t;
    }
}

// A NaN (a broken checkpoint's) gets a defined value rather than an undefined conversion, alike everywhere.
TEST(KvInt8, NanValuesGetADefinedInteger) {
  backend::CpuBackend cpu;
  std::vector<float> v(8, 0.5f);
  v[3] = std::nanf("");
  const auto src = uploaded(cpu, v);
  backend::DeviceBuffer q = cpu.alloc(DType::I8, 8), scale = cpu.alloc(DType::F32, 1);
  cpu.quantize_blocks(q, 8, scale, 1, src, 8, 1, 8, 1);
  const auto* qs = static_cast<const int8_t*>(q.span().raw());
  EXPECT_EQ(qs[3], -127);
  EXPECT_EQ(qs[0], 127);
  EXPECT_FLOAT_EQ(*static_cast<const float*>(scale.span().raw()), 0.5f / 127.0f);
}

// Scale s's vectors hold values that name the scale, so a segment that ends up at the wrong offset, or with
// another scale's per-token scales, shows.
struct ScaleValues {
  std::vector<float> k, v;  // [blocks][n][dim]
};
ScaleValues values_of_scale(int s, int64_t blocks, int64_t n, int64_t dim) {
  ScaleValues sv{random_values(blocks * n * dim, 100 + s), random_values(blocks * n * dim, 200 + s)};
  for (int64_t i = 0; i < blocks * n; ++i) {
    sv.k[static_cast<size_t>(i * dim)] = 1.0f + s;  // every vector's largest value: its scale is (1 + s) / 127
    sv.v[static_cast<size_t>(i * dim)] = -(2.0f + s);
  }
  return sv;
}

TEST(KvInt8, StoreKeepsValuesThroughEvictionCompactionAndGrowth) {
  backend::CpuBackend cpu;
  cpu.set_kv_int8(true);
  const int64_t rows = 2, heads = 3, dim = 8, blocks = rows * heads;
  kv::KvStore store(cpu, /*depth=*/1, rows, heads, dim);
  ASSERT_TRUE(store.quantized());
  EXPECT_EQ(store.bytes_per_token_row(), 2 * heads * (dim + 4));
  store.reserve(0, 10);
  const std::vector<int64_t> sizes = {2, 3, 4, 4};
  std::vector<ScaleValues> values;
  auto put = [&](int s) {
    values.push_back(values_of_scale(s, blocks, sizes[s], dim));
    const auto k = uploaded(cpu, values.back().k), v = uploaded(cpu, values.back().v);
    store.store(0, s, sizes[s], k, v);
  };
  put(0);
  put(1);
  put(2);       // 9 of 10 tokens
  store.evict(0, 1);
  put(3);       // no free range of 4: the slab is compacted first
  store.reserve(0, 20);  // growth copies integers and scales to the same offsets
  const auto segs = store.segments(0);
  const std::vector<int> kept = {0, 2, 3};
  ASSERT_EQ(segs.size(), kept.size());
  std::vector<float> scratch;
  for (size_t i = 0; i < kept.size(); ++i) {
    const int s = kept[i];
    ASSERT_EQ(segs[i].dtype, DType::I8);
    ASSERT_EQ(segs[i].tokens, sizes[s]);
    for (int64_t b = 0; b < blocks; ++b)
      for (bool is_v : {false, true}) {
        const float* got = cpu::segment_block(segs[i], is_v, b, dim, scratch);
        const std::vector<float>& want = is_v ? values[s].v : values[s].k;
        const float step = (is_v ? 2.0f + s : 1.0f + s) / 127.0f;
        for (int64_t j = 0; j < sizes[s] * dim; ++j)
          EXPECT_NEAR(got[j], want[static_cast<size_t>(b * sizes[s] * dim + j)], step / 2 + 1e-6)
              << "scale " << s << " block " << b << (is_v ? " V" : " K");
      }
  }
}

TEST(KvInt8, TokenLevelStoresAreRefused) {
  backend::CpuBackend cpu;
  cpu.set_kv_int8(true);
  kv::KvStore store(cpu, 1, 1, 1, 4);
  store.reserve(0, 8);
  const auto k = uploaded(cpu, std::vector<float>(8, 0.5f));
  try {
    store.append_tokens(0, k, k, 2);
    FAIL() << "appending single tokens to an 8-bit store was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--kv-dtype int8"), std::string::npos) << e.what();
  }
}

// Unit keys and scaled queries as the model makes them: 8-bit past keys and values move the output by
// about the rounding step, far below the bf16 tolerance.
TEST(KvInt8, AttentionOver8BitSegmentsStaysNearFloat) {
  backend::CpuBackend cpu;
  const int64_t rows = 2, heads = 3, dh = 64, n = 16, past = 30, blocks = rows * heads;
  auto unit = [&](int64_t count, float scale, uint32_t seed) {
    auto v = random_values(count * dh, seed);
    for (int64_t i = 0; i < count; ++i) {
      double s = 0;
      for (int64_t d = 0; d < dh; ++d) s += v[i * dh + d] * v[i * dh + d];
      for (int64_t d = 0; d < dh; ++d) v[i * dh + d] = static_cast<float>(v[i * dh + d] * scale / std::sqrt(s));
    }
    return v;
  };
  const auto pk = uploaded(cpu, unit(blocks * past, 1.0f, 1)), pv = uploaded(cpu, random_values(blocks * past * dh, 2));
  const auto ck = uploaded(cpu, unit(blocks * n, 1.0f, 3)), cv = uploaded(cpu, random_values(blocks * n * dh, 4));
  const auto q = uploaded(cpu, unit(blocks * n, 12.0f, 5));
  backend::DeviceBuffer qk = cpu.alloc(DType::I8, blocks * past * dh), qv = cpu.alloc(DType::I8, blocks * past * dh);
  backend::DeviceBuffer sk = cpu.alloc(DType::F32, blocks * past), sv = cpu.alloc(DType::F32, blocks * past);
  cpu.quantize_blocks(qk, past * dh, sk, past, pk, past * dh, past, dh, blocks);
  cpu.quantize_blocks(qv, past * dh, sv, past, pv, past * dh, past, dh, blocks);
  const AttentionSegment current{ck.span().raw(), cv.span().raw(), n, n * dh, DType::F32};
  const std::vector<AttentionSegment> exact = {{pk.span().raw(), pv.span().raw(), past, past * dh, DType::F32}, current};
  const std::vector<AttentionSegment> int8 = {
      {qk.span().raw(), qv.span().raw(), past, past * dh, DType::I8, static_cast<const float*>(sk.span().raw()),
       static_cast<const float*>(sv.span().raw()), past},
      current};
  backend::DeviceBuffer a = cpu.alloc(DType::F32, blocks * n * dh), b = cpu.alloc(DType::F32, blocks * n * dh);
  cpu.attention(q, rows, heads, n, dh, exact, a, nullptr, nullptr);
  cpu.attention(q, rows, heads, n, dh, int8, b, nullptr, nullptr);
  const auto* x = static_cast<const float*>(a.span().raw());
  const auto* y = static_cast<const float*>(b.span().raw());
  double err = 0.0, mag = 0.0;
  for (int64_t i = 0; i < blocks * n * dh; ++i) {
    err = std::max(err, std::fabs(static_cast<double>(x[i]) - y[i]));
    mag = std::max(mag, std::fabs(static_cast<double>(x[i])));
  }
  EXPECT_LE(err / mag, 2e-2);
  EXPECT_GT(err, 0.0);  // the 8-bit segments were read, not the float ones
}

// The planner counts past scales at the store's width and the transient scale at the compute dtype's.
TEST(KvInt8, PlannerCountsTheStoreAtItsWidth) {
  engine::PlanShapes shapes;
  shapes.var = model::var_config_of(model::official_var_spec("d30"));
  shapes.image_side = 256;
  kv::PolicyOptions po;
  po.name = "ams";
  const kv::PolicyFactory ams(po);
  const int64_t B = 64, R = 2 * B, n_max = 256;
  const auto p16 = engine::plan_batch(shapes, ams, DType::BF16, DType::BF16, B, {}, 1);
  const auto p8 = engine::plan_batch(shapes, ams, DType::BF16, DType::I8, B, {}, 1);
  const int64_t heads = shapes.var.heads, dh = shapes.var.head_dim;
  const int64_t row16 = kv::KvStore::token_row_bytes(DType::BF16, heads, dh);
  const int64_t row8 = kv::KvStore::token_row_bytes(DType::I8, heads, dh);
  EXPECT_EQ(row8, 2 * heads * (dh + 4));
  const int64_t allocated = p16.kv_bytes / (R * row16);  // every token at the bf16 width
  EXPECT_EQ(p16.kv_bytes, R * allocated * row16);
  EXPECT_EQ(p8.kv_bytes, R * ((allocated - n_max) * row8 + n_max * row16));
  EXPECT_LT(p8.kv_bytes, p16.kv_bytes * 6 / 10);
  EXPECT_EQ(p8.workspace_bytes, p16.workspace_bytes);
  // The memory report of the same footprint counts the same bytes.
  const kv::ScheduleInfo schedule = model::kv_schedule(shapes.var);
  auto policy = ams.make();
  kv::KvStats st = kv::plan_footprint(*policy, schedule, shapes.var.schedule.patch_nums);
  st.bytes_per_token = R * row8;
  st.transient_bytes_per_token = R * row16;
  EXPECT_EQ(kv::make_memory_report(st, schedule, R).policy.allocated_bytes, p8.kv_bytes);
}

// Forced tokens keep both runs on the same history: the 8-bit store moves the guided logits of the golden
// mini case only by its rounding, and the first scale (nothing stored yet) not at all.
TEST(KvInt8, ForcedGoldenRunStaysNearTheReference) {
  golden::GoldenCase g("mini");
  auto opt = g.options();
  opt.forced_tokens = &g.ref;
  opt.keep_logits = true;
  opt.decode_images = false;
  auto full = kv::make_full_policy();
  const auto exact = engine::generate(*g.var, *g.vae, *full, opt);
  g.cpu.set_kv_int8(true);
  auto full8 = kv::make_full_policy();
  const auto int8 = engine::generate(*g.var, *g.vae, *full8, opt);
  ASSERT_EQ(int8.logits_cfg.size(), exact.logits_cfg.size());
  EXPECT_LE(golden::max_rel_error(int8.logits_cfg[0].data<float>(), exact.logits_cfg[0]), 1e-6);
  double worst = 0.0;
  for (size_t k = 1; k < exact.logits_cfg.size(); ++k)
    worst = std::max(worst, golden::max_rel_error(int8.logits_cfg[k].data<float>(), exact.logits_cfg[k]));
  EXPECT_LE(worst, 2e-2);
  EXPECT_GT(worst, 0.0);
  EXPECT_EQ(int8.kv.footprint.allocated_tokens, exact.kv.footprint.allocated_tokens);
  EXPECT_LT(int8.kv.bytes_per_token, exact.kv.bytes_per_token / 3);  // float32 against 8 bits and a scale per head
  // The report counts the transient buffer at the compute width, as the planner does: the largest scale's
  // tokens; full's resident peak is at the last scale, every earlier one stored.
  EXPECT_EQ(int8.kv.transient_bytes_per_token, exact.kv.bytes_per_token);
  const kv::ScheduleInfo schedule = model::kv_schedule(g.var->config());
  const int64_t n_last = schedule.tokens.back();
  const auto& f = int8.kv.footprint;
  EXPECT_EQ(f.allocated_transient_tokens, n_last);
  EXPECT_EQ(f.resident_by_scale.back(), f.resident_tokens);
  EXPECT_EQ(f.resident_by_scale, exact.kv.footprint.resident_by_scale);
  const auto r8 = kv::make_memory_report(int8.kv, schedule, 2), r32 = kv::make_memory_report(exact.kv, schedule, 2);
  const int64_t b = int8.kv.bytes_per_token, t = int8.kv.transient_bytes_per_token;
  EXPECT_EQ(r8.policy.allocated_bytes, (f.allocated_tokens - n_last) * b + n_last * t);
  EXPECT_EQ(r8.policy.resident_bytes, (f.resident_tokens - n_last) * b + n_last * t);
  EXPECT_EQ(r32.policy.resident_bytes, f.resident_tokens * t);
  EXPECT_EQ(r8.reference.allocated_bytes, r32.reference.allocated_bytes);  // the reference at the compute width
  EXPECT_GT(r8.reduction(&kv::MemoryNumbers::allocated_bytes), r32.reduction(&kv::MemoryNumbers::allocated_bytes));
}

// A batch split into row chunks reads each chunk's rows of the 8-bit store with their own scales: the result
// is the whole batch's, up to the order of sums.
TEST(KvInt8, ChunkedBatchEqualsWholeBatch) {
  golden::GoldenCase g("mini");
  g.cpu.set_kv_int8(true);
  auto opt = g.options();
  opt.forced_tokens = &g.ref;
  opt.keep_logits = true;
  opt.decode_images = false;
  const auto [whole, chunked] = golden::run_whole_and_chunked(*g.var, *g.vae, opt);
  for (size_t k = 0; k < whole.logits_cfg.size(); ++k)
    EXPECT_LE(golden::max_rel_error(chunked.logits_cfg[k].data<float>(), whole.logits_cfg[k]), 1e-5) << "scale " << k;
}

// AMS-KV's online decision measures the similarity against the previous scale's stored keys: from an 8-bit
// store it reads them dequantized, and measures nearly the same values.
TEST(KvInt8, AmsMeasuresSimilarityFromTheStore) {
  golden::GoldenCase g("mini");
  auto opt = g.options();
  opt.forced_tokens = &g.ref;
  opt.decode_images = false;
  opt.analysis.similarity = true;
  kv::PolicyOptions po;
  po.name = "ams";
  po.ams.cmin = 10;
  po.ams.cmax = 20;
  po.ams.condensed = 1;
  auto p32 = kv::make_policy(po);
  const auto exact = engine::generate(*g.var, *g.vae, *p32, opt);
  g.cpu.set_kv_int8(true);
  auto p8 = kv::make_policy(po);
  const auto int8 = engine::generate(*g.var, *g.vae, *p8, opt);
  ASSERT_EQ(int8.similarity.size(), exact.similarity.size());
  int measured = 0;
  for (size_t l = 0; l < exact.similarity.size(); ++l)
    for (size_t s = 0; s < exact.similarity[l].size(); ++s) {
      if (std::isnan(exact.similarity[l][s])) continue;
      ++measured;
      EXPECT_NEAR(int8.similarity[l][s], exact.similarity[l][s], 2e-2) << "layer " << l << " scale " << s;
    }
  EXPECT_GT(measured, 0);
}

}  // namespace
}  // namespace amskv
