// The --patch-nums text of a scale schedule, parsed and checked without a checkpoint (header-only, so that the
// command line's parse-only checks have it without the model library).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/parse.h"

namespace amskv::model {

// Parses "1,2,3,4" (also "256" / "512" shorthands of the official schedules): at most 64 increasing sides,
// each in [1, 4096] (what ScaleSchedule accepts); errors name --patch-nums.
inline std::vector<int64_t> parse_patch_nums(const std::string& text) {
  if (text == "256") return {1, 2, 3, 4, 5, 6, 8, 10, 13, 16};
  if (text == "512") return {1, 2, 3, 4, 6, 9, 13, 18, 24, 32};
  auto out = parse_int_list(text, "--patch-nums");
  AMSKV_CHECK(out.size() <= 64, "--patch-nums: ", out.size(), " scales, at most 64");
  for (size_t i = 0; i < out.size(); ++i) {
    AMSKV_CHECK(out[i] > 0 && out[i] <= 4096, "--patch-nums: ", out[i], " is not a scale side in [1, 4096]");
    AMSKV_CHECK(i == 0 || out[i] > out[i - 1], "--patch-nums: scale sides must increase (", out[i - 1], " then ",
                out[i], ")");
  }
  return out;
}

}  // namespace amskv::model
