// Flags that used to be accepted silently (ignored, wrapped, saturated or skipped) are refused with an error
// naming the flag, and --help shows every default.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "cli_fixture.h"
#include "io/png_reader.h"

namespace amskv::cli_test {
namespace {

TEST(CliFlags, AKnobOfAnotherPolicyIsRefused) {
  TempDir tmp;
  std::ofstream(tmp / "bad_table.json") << "{ not json";
  std::ofstream(tmp / "bad_profile.json") << "[1, 2";
  const std::string g = "generate " + mini_args() + " --no-images";
  // A malformed file that the chosen policy would never read is not silently accepted.
  expect_cli_error(g + " --kv-table " + (tmp / "bad_table.json"), {"--kv-table applies to --kv table, not to full"});
  expect_cli_error(g + " --kv window --ams-profile " + (tmp / "bad_profile.json"),
                   {"--ams-profile applies to --kv ams, not to window"});
  expect_cli_error(g + " --kv ams --kv-budget 10", {"--kv-budget applies to --kv uniform or --kv h2o, not to ams"});
  expect_cli_error(g + " --kv ams --kv-window 2", {"--kv-window applies to --kv window or --kv sink, not to ams"});
  expect_cli_error(g + " --kv uniform --ams-cmin 10", {"--ams-cmin applies to --kv ams, not to uniform"});
  expect_cli_error(g + " --kv uniform --h2o-recent 0.5", {"--h2o-recent applies to --kv h2o, not to uniform"});
  expect_cli_error(g + " --kv full --ams-condensed 1", {"--ams-condensed applies to --kv ams or --kv uniform"});
  expect_cli_error(g + " --kv ams --ams-theta 0.2 --ams-demanding-fraction 0.3",
                   {"--ams-theta and --ams-demanding-fraction are two ways"});
  expect_cli_error("plan --shape tiny --kv window --ams-cmax 5", {"--ams-cmax applies to --kv ams, not to window"});
  expect_cli_error("bench --shapes tiny --policies full,ams --kv-budget 5",
                   {"--kv-budget applies to --kv uniform or --kv h2o, not to any of full, ams"});
  expect_cli_error("eval " + mini_args() + " --kv window --kv-budget 5", {"--kv-budget applies to --kv uniform"});
  // The knob of the chosen policy is fine.
  const auto r = run_cli(g + " --kv uniform --kv-budget 5 --ams-condensed 1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(CliFlags, NumbersOutOfRangeAreRefusedNotWrappedOrSaturated) {
  const std::string g = "generate " + mini_args() + " --no-images";
  expect_cli_error(g + " --seed -1", {"--seed", "'-1' is not an integer in [0, 2^64-1]"});
  expect_cli_error(g + " --seed 18446744073709551616", {"--seed", "'18446744073709551616'"});
  expect_cli_error(g + " --top-k 99999999999999999999", {"--top-k", "not an integer in [0, 2^63-1]"});
  expect_cli_error(g + " --top-k -3", {"--top-k"});
  expect_cli_error(g + " --cfg 1e99", {"--cfg", "'1e99' is not a finite number in [0, 1000]"});
  expect_cli_error(g + " --cfg -2", {"--cfg"});
  expect_cli_error(g + " --batch 99999999999999999999", {"--batch"});
  expect_cli_error(g + " --kv window --kv-window 3000000000", {"--kv-window", "[0, 1000]"});
  expect_cli_error(g + " --kv ams --ams-cmin 1e3", {"--ams-cmin", "'1e3' is not an integer"});
  expect_cli_error(g + " --kv ams --ams-theta 7", {"--ams-theta", "[-1, 1]"});
  expect_cli_error(g + " --threads 0x10", {"--threads"});
  expect_cli_error("plan --batch 4611686018427387903", {"--batch"});
  expect_cli_error("bench --vae-ch -5", {"--vae-ch"});
  expect_cli_error("random-model --seed -1", {"--seed"});
  expect_cli_error("random-model --vae-ch 100000", {"--vae-ch"});
  expect_cli_error("random-model --shape tiny --vae-ch 64", {"--vae-ch is ignored with --shape tiny"});
}

TEST(CliFlags, LeadingZerosAreDecimalAndTheLargestSeedWorks) {
  TempDir tmp;
  // CLI11 alone reads "010" as octal 8.
  const auto r = run_cli("generate " + mini_args() + " --labels 4 --seed 18446744073709551615 --threads 010 --out " +
                         (tmp / "o"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto png = io::read_png(tmp / "o/000000.png", false);
  const auto record = nlohmann::json::parse(png.text.at("amskv"));
  EXPECT_EQ(record["seed"].get<uint64_t>(), 18446744073709551615ull);
}

// --graphs replays the first batch's recording on a backend that records; anywhere it must not change an image.
TEST(CliFlags, GraphsLeaveTheImagesAsTheyAre) {
  TempDir tmp;
  for (const std::string out : {"plain", "graphs"}) {
    const auto r = run_cli("generate " + mini_args() + " --labels 4,1,3 --batch 1 --no-grid --out " + (tmp / out) +
                           (out == "graphs" ? " --graphs" : ""));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  for (const std::string name : {"000000.png", "000001.png", "000002.png"})
    EXPECT_EQ(io::read_png(tmp / ("plain/" + name)).rgb, io::read_png(tmp / ("graphs/" + name)).rgb) << name;
}

TEST(CliFlags, EightBitKvStoreRunsWholeScalePoliciesOnly) {
  TempDir tmp;
  const auto r = run_cli("generate " + mini_args() + " --labels 4,1 --kv ams --kv-dtype int8 --no-grid --out " +
                         (tmp / "o"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(tmp / "o/000001.png"));
  const std::string g = "generate " + mini_args() + " --no-images";
  expect_cli_error(g + " --kv h2o --kv-dtype int8",
                   {"--kv-dtype int8 stores whole scales, and the h2o policy keeps single tokens"});
  expect_cli_error(g + " --kv-dtype int4", {"--kv-dtype"});
}

TEST(CliFlags, ListsWithEmptyItemsAreRefusedNamingTheFlag) {
  const std::string g = "generate " + mini_args() + " --no-images";
  expect_cli_error(g + " --labels 1,2,", {"--labels: empty item in '1,2,'"});
  expect_cli_error(g + " --labels 1,,2", {"--labels: empty item"});
  expect_cli_error(g + " --labels ,1", {"--labels: empty item"});
  expect_cli_error(g + " --labels +1", {"--labels: '+1' is not an integer"});
  expect_cli_error(g + " --labels 99999999999999999999", {"--labels: '99999999999999999999' is out of range"});
  expect_cli_error(g + " --patch-nums 1,2,3,", {"--patch-nums: empty item"});
  expect_cli_error(g + " --patch-nums 1,3,2", {"--patch-nums: scale sides must increase"});
  expect_cli_error("bench --batches 1,", {"--batches: empty item"});
  expect_cli_error("bench --shapes d16,,tiny", {"--shapes: empty item"});
  expect_cli_error("bench --policies full,bogus", {"--policies: unknown policy 'bogus'"});
}

TEST(CliFlags, FlagsThatWouldBeIgnoredAreRefused) {
  TempDir tmp;
  const std::string g = "generate " + mini_args();
  expect_cli_error(g + " --dump-logits", {"--dump-logits needs --dump"});
  expect_cli_error(g + " --no-images --out " + (tmp / "o"), {"--out is ignored with --no-images"});
  expect_cli_error("generate --var " + mini_var(), {"--var and --vae go together"});
  expect_cli_error("generate --from x.png --seed 3", {"--from regenerates the image", "--seed cannot be given"});
  expect_cli_error("plan --var " + mini_var() + " --shape d16", {"--shape is ignored with --var"});
}

// Every option that takes a value shows its default in --help ("--cfg FLOAT:in [0, 1000]=1.5"), except those
// whose absence means "not done" (files to read or write).
TEST(CliHelp, EveryOptionShowsItsDefault) {
  const std::set<std::string> no_default = {"--dump",   "--report", "--force-tokens", "--kv-table", "--ams-profile",
                                            "--from",   "--json",   "--sweep-budgets", "--markdown", "--replot"};
  const std::map<std::string, std::set<std::string>> also = {{"plan", {"--var"}}, {"bench", {"--var", "--vae"}}};
  for (const std::string cmd :
       {"generate", "profile", "eval", "demo", "plan", "bench", "inspect", "convert", "random-model"}) {
    const auto r = run_cli(cmd + " --help");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::istringstream in(r.output);
    std::string line;
    int options = 0;
    const std::regex option(R"(^  (?:-\w,)?(--[\w-]+) ([A-Z]+)(.*)$)");
    while (std::getline(in, line)) {
      std::smatch m;
      if (!std::regex_match(line, m, option)) continue;
      const std::string name = m[1];
      ++options;
      if (no_default.count(name) || (also.count(cmd) && also.at(cmd).count(name))) continue;
      const std::string rest = m[3];
      EXPECT_NE(rest.substr(0, rest.find("  ")).find('='), std::string::npos) << cmd << " " << name << ": " << line;
    }
    if (cmd != "inspect" && cmd != "convert") EXPECT_GT(options, 0) << cmd;  // those two take files only
  }
  const auto r = run_cli("generate --help");
  for (const char* shown : {"--cfg FLOAT:in [0, 1000]=1.5", "--top-k INT:in [0, 2^63-1]=0", "--top-p FLOAT:in [0, 1]=0",
                            "--seed UINT:in [0, 2^64-1]=0", "=full", "--labels TEXT=0"})
    EXPECT_NE(r.output.find(shown), std::string::npos) << shown << "\n" << r.output;
}

}  // namespace
}  // namespace amskv::cli_test
