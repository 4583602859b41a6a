// The JSON inputs a user names (KV tables, AMS profiles): what they must refuse, and how errors name them.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "io/json_file.h"
#include "io_test_util.h"
#include "kv/policies/ams_policy.h"
#include "kv/policies/recency_policy.h"

namespace amskv::io {
namespace {

using io_test::expect_error;
using io_test::expect_refused_without_blocking;
using io_test::ScratchDir;

void write_text(const std::string& path, const std::string& text) {
  io_test::write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

std::string nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

void load_profile(const std::string& path) {
  kv::AmsOptions o;
  o.merge_profile_file(path);
}

TEST(IoJson, DeepNestingIsRefusedWhileParsing) {
  ScratchDir dir;
  const std::string table = dir.path("table.json"), profile = dir.path("profile.json");
  write_text(table, R"({"default": )" + nested(200'000) + "}");
  expect_error([&] { kv::load_table_policy(table); }, {table, "KV table", "deeper than 32 levels", "at default"});
  write_text(profile, R"({"similarity": [)" + nested(200'000) + "]}");
  expect_error([&] { load_profile(profile); }, {profile, "AMS profile", "deeper than 32 levels", "at similarity[0]"});
  write_text(profile, nested(33));
  expect_error([&] { read_json_file(profile, "thing"); }, {profile, "thing", "deeper than 32 levels"});
  write_text(profile, nested(32));  // the deepest nesting allowed
  EXPECT_TRUE(read_json_file(profile, "thing").is_array());
}

TEST(IoJson, DuplicateKeysAreRefusedNamingKeyAndFile) {
  ScratchDir dir;
  const std::string table = dir.path("table.json"), profile = dir.path("profile.json");
  write_text(table, R"({"default": {"window": 1}, "default": {"full": true}})");
  expect_error([&] { kv::load_table_policy(table); }, {table, "'default' twice", "the top object"});
  write_text(table, R"({"layers": {"1": {"full": true, "full": false}}})");
  expect_error([&] { kv::load_table_policy(table); }, {table, "'full' twice", "in layers.1"});
  write_text(profile, R"({"similarity": [[0.5]], "ams": {"cmin": 10, "cmin": 20}})");
  expect_error([&] { load_profile(profile); }, {profile, "'cmin' twice", "in ams"});
}

TEST(IoJson, FifoAndDirectoryAreRefusedWithoutBlocking) {
  ScratchDir dir;
  const std::string fifo = dir.path("pipe.json");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_refused_without_blocking(fifo, [&] { kv::load_table_policy(fifo); }, {fifo, "not a regular file (a FIFO)"});
  expect_refused_without_blocking(fifo, [&] { load_profile(fifo); }, {fifo, "not a regular file (a FIFO)"});
  const std::string folder = dir.path("folder.json");
  std::filesystem::create_directory(folder);
  expect_error([&] { kv::load_table_policy(folder); }, {folder, "is a directory"});
  expect_error([&] { load_profile(folder); }, {folder, "is a directory"});
  expect_error([&] { read_json_file(dir.path("missing.json"), "KV table"); }, {"missing.json", "cannot open"});
}

}  // namespace
}  // namespace amskv::io
