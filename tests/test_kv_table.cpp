// KV tables (--kv table): read once, checked early, linear in their size, and errors that name the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "io_test_util.h"
#include "kv/policies/recency_policy.h"
#include "kv/policy_factory.h"

namespace amskv::kv {
namespace {

using io_test::expect_error;
using io_test::ScratchDir;

void write_text(const std::string& path, const std::string& text) {
  io_test::write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

ScheduleInfo schedule(int depth) {
  ScheduleInfo s;
  s.tokens = {1, 4, 9, 16};
  s.depth = depth;
  return s;
}

TEST(KvTable, LayerBeyondTheModelNamesTheFile) {
  ScratchDir dir;
  const std::string path = dir.path("t.json");
  write_text(path, R"({"layers": {"1": {"full": true}, "40": {"window": 2}}})");
  auto policy = load_table_policy(path);
  expect_error([&] { policy->begin(schedule(30)); }, {path, "layers.40", "30 layers (0..29)"});
  policy->begin(schedule(41));
}

TEST(KvTable, ImplausibleLayerIndexIsRefusedWhileReading) {
  // Before anything else is read, so that a huge table cannot keep us busy before the error.
  ScratchDir dir;
  const std::string path = dir.path("t.json");
  write_text(path, R"({"layers": {"5000": {"full": true}}})");
  expect_error([&] { load_table_policy(path); }, {path, "layers.5000", "at most 1024 layers"});
  expect_error([&] { make_table_policy_from_json(nlohmann::json::parse(R"({"layers": {"1024": {}}})"), "x.json"); },
               {"x.json", "layers.1024"});
  EXPECT_NO_THROW(make_table_policy_from_json(nlohmann::json::parse(R"({"layers": {"1023": {}}})"), "x.json"));
}

TEST(KvTable, SameLayerSpelledTwiceIsRefused) {
  expect_error(
      [] { make_table_policy_from_json(nlohmann::json::parse(R"({"layers": {"7": {}, "007": {}}})"), "x.json"); },
      {"x.json", "layer 7 has two rules"});
}

TEST(KvTable, TablesUpToTheLayerCapWork) {
  nlohmann::json table = {{"layers", nlohmann::json::object()}};
  for (int l = 0; l < 1024; ++l) table["layers"][std::to_string(l)] = {{"window", l % 3}};
  auto policy = make_table_policy_from_json(table, "big.json");
  policy->begin(schedule(1024));
  EXPECT_EQ(policy->retain(1023, 3, {0, 1, 2}), (std::vector<int>{}));
  EXPECT_EQ(policy->retain(1022, 3, {0, 1, 2}), (std::vector<int>{2, 3}));
}

TEST(KvTable, FactoryReadsTheTableOnce) {
  // The table used to be read from disk again for every batch.
  ScratchDir dir;
  const std::string path = dir.path("t.json");
  write_text(path, R"({"default": {"window": 1}, "layers": {"1": {"full": true}}})");
  PolicyOptions o;
  o.name = "table";
  o.table_path = path;
  const PolicyFactory factory(o);
  std::filesystem::remove(path);
  auto a = factory.make(), b = factory.make();
  EXPECT_NE(a.get(), b.get());  // a fresh policy per batch
  a->begin(schedule(2));
  EXPECT_EQ(a->retain(1, 2, {0, 1}), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(a->retain(0, 2, {0, 1}), (std::vector<int>{2}));
  factory.check_depth(2);
  expect_error([&] { factory.check_depth(1); }, {path, "layer 1", "the model has 1 layers"});
  expect_error([&] { make_policy(o); }, {path, "cannot open"});  // the one-shot form reads the file
}

TEST(KvTable, ParsedFromBytesLikeFromAFile) {
  const RecencyTable t = RecencyTable::from_text(R"({"layers": {"3": {"condensed": 1, "window": 2}}})", "mem.json");
  EXPECT_EQ(t.layers().at(3).window, 2);
  expect_error([] { RecencyTable::from_text(R"({"layers": {}, "layers": {}})", "mem.json"); }, {"mem.json", "twice"});
}

}  // namespace
}  // namespace amskv::kv
