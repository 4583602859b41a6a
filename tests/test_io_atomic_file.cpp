// Output files: written under a temporary name that nobody can plant a symlink at, then renamed into place.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "io_test_util.h"

namespace amskv::io {
namespace {

using io_test::read_bytes;
using io_test::ScratchDir;
using io_test::write_bytes;

TEST(IoAtomicFile, SymlinkPlantedAtTheOldTempNameIsNotFollowed) {
  // The temporary used to be `<path>.tmp-<pid>`, opened with fopen("wb"): a symlink planted there made us
  // overwrite its target.
  ScratchDir dir;
  const std::string out = dir.path("out.safetensors"), victim = dir.path("victim");
  write_bytes(victim, {'k', 'e', 'e', 'p'});
  ASSERT_EQ(::symlink(victim.c_str(), (out + ".tmp-" + std::to_string(::getpid())).c_str()), 0);
  save_safetensors(out, {{"x", Tensor::from_vector<float>({2}, {1.0f, 2.0f})}});
  EXPECT_EQ(read_bytes(victim), (std::vector<uint8_t>{'k', 'e', 'e', 'p'}));
  EXPECT_EQ(load_safetensors(out).at("x").data<float>()[1], 2.0f);
}

TEST(IoAtomicFile, TemporaryNamesDifferAndAreCleanedUp) {
  ScratchDir dir;
  const std::string out = dir.path("o.bin");
  {
    AtomicFile a(out), b(out);  // two writers of one path in one process
    EXPECT_NE(a.temp_path(), b.temp_path());
    a.write("a", 1);
    b.write("bb", 2);
    b.commit();
    a.commit();
  }
  EXPECT_EQ(read_bytes(out), (std::vector<uint8_t>{'a'}));
  { AtomicFile abandoned(out); }
  EXPECT_EQ(dir.files(), std::vector<std::string>{"o.bin"});
}

TEST(IoAtomicFile, OpenNewFileRefusesAnythingAlreadyThere) {
  ScratchDir dir;
  const std::string victim = dir.path("victim"), link = dir.path("link"), fresh = dir.path("fresh");
  write_bytes(victim, {'k'});
  ASSERT_EQ(::symlink(victim.c_str(), link.c_str()), 0);
  EXPECT_EQ(open_new_file(link), nullptr);
  EXPECT_EQ(errno, EEXIST);
  EXPECT_EQ(open_new_file(victim), nullptr);
  EXPECT_EQ(read_bytes(victim), (std::vector<uint8_t>{'k'}));
  FILE* f = open_new_file(fresh);
  ASSERT_NE(f, nullptr);
  std::fclose(f);
}

}  // namespace
}  // namespace amskv::io
