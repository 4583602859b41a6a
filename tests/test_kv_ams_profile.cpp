// AMS profiles (--ams-profile): values read from a profile are blamed on the profile, key by key.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "io_test_util.h"
#include "kv/policies/ams_policy.h"
#include "kv/policy_factory.h"

namespace amskv::kv {
namespace {

using io_test::expect_error;
using io_test::ScratchDir;

void write_text(const std::string& path, const std::string& text) {
  io_test::write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

ScheduleInfo schedule_256(int depth) {
  ScheduleInfo s;
  for (int64_t x : {1, 2, 3, 4, 5, 6, 8, 10, 13, 16}) s.tokens.push_back(x * x);
  s.depth = depth;
  return s;
}

// Similarities for 2 layers of the 256px schedule.
const char* kSimilarity =
    R"("similarity": [[0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5], [0.9,0.9,0.9,0.9,0.9,0.9,0.9,0.9,0.9]])";

void expect_begin_error(const std::string& profile_path, const AmsOptions& base,
                        const std::vector<std::string>& parts) {
  AmsOptions o = base;
  o.merge_profile_file(profile_path);
  expect_error([&] { AmsPolicy(o, false).begin(schedule_256(2)); }, parts);
}

TEST(AmsProfile, ValuesFromTheProfileNameTheProfileAndKey) {
  ScratchDir dir;
  const std::string path = dir.path("p.json");
  write_text(path, std::string(R"({"ams": {"condensed": 12}, )") + kSimilarity + "}");
  expect_begin_error(path, {}, {path, "ams.condensed", "12", "exceeds the 10 scales"});
  write_text(path, std::string(R"({"ams": {"cmin": 300, "cmax": 200}, )") + kSimilarity + "}");
  expect_begin_error(path, {}, {path, "ams.cmax", "ams.cmin"});
  write_text(path, std::string(R"({"ams": {"cmin": 3}, )") + kSimilarity + "}");
  expect_begin_error(path, {}, {path, "ams.cmin", "cannot hold the 2 condensed scales"});
  // The command line wins over the profile, and is then blamed as the flag.
  AmsOptions flags;
  flags.cmin = 4;
  expect_begin_error(path, flags, {"--ams-cmin"});
  // Knobs at the top level (no "ams" object) are named as such.
  write_text(path, std::string(R"({"condensed": 11, )") + kSimilarity + "}");
  expect_begin_error(path, {}, {path, ": condensed", "exceeds the 10 scales"});
}

TEST(AmsProfile, MalformedKnobsNameTheKey) {
  ScratchDir dir;
  const std::string path = dir.path("p.json");
  write_text(path, std::string(R"({"ams": {"theta": "low"}, )") + kSimilarity + "}");
  AmsOptions o;
  expect_error([&] { o.merge_profile_file(path); }, {path, "ams.theta must be a number"});
  write_text(path, std::string(R"({"ams": {"cmax": -1}, )") + kSimilarity + "}");
  expect_error([&] { o.merge_profile_file(path); }, {path, "ams.cmax = -1 is out of range"});
}

TEST(AmsProfile, ParsedFromBytesLikeFromAFile) {
  AmsOptions o;
  o.merge_profile_text(std::string(R"({"ams": {"cmin": 100, "cmax": 200}, )") + kSimilarity + "}", "mem.json");
  EXPECT_EQ(o.cmin, 100);
  EXPECT_EQ(o.profile_similarity.size(), 2u);
  EXPECT_EQ(o.profile_source, "mem.json");
  expect_error([&] { o.merge_profile_text("{\"similarity\": 1}", "mem.json"); }, {"mem.json", "similarity"});
}

TEST(AmsProfile, FactoryReadsTheProfileOnce) {
  ScratchDir dir;
  const std::string path = dir.path("p.json");
  write_text(path,
             std::string(R"({"ams": {"cmin": 100, "cmax": 200, "demanding_fraction": 0.5}, )") + kSimilarity + "}");
  PolicyOptions o;
  o.name = "ams";
  o.ams_profile = path;
  const PolicyFactory factory(o);
  std::filesystem::remove(path);  // later batches must not need the file
  for (int batch = 0; batch < 2; ++batch) {
    auto policy = factory.make();
    policy->begin(schedule_256(2));
    EXPECT_EQ(static_cast<AmsPolicy&>(*policy).demanding_layers(), (std::vector<int>{0}));
  }
  // A mistake in the profile surfaces when the factory is made, before any model is loaded.
  write_text(path, std::string(R"({"ams": {"cmin": 300, "cmax": 200}, )") + kSimilarity + "}");
  o.ams.cmin.reset();
  expect_error([&] { PolicyFactory{o}; }, {path, "ams.cmax"});
}

}  // namespace
}  // namespace amskv::kv
