// The --report JSON of a generation (spec: kv memory numbers beside the reference, and timings) and its
// short table for the terminal.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "engine/generator.h"
#include "model/var_config.h"

namespace amskv::cli {

nlohmann::json generation_report(const engine::GenerateResult& result, const model::VarConfig& config,
                                 int64_t rows_per_batch, int64_t images);
std::string generation_report_table(const nlohmann::json& report);
void write_json_file(const std::string& path, const nlohmann::json& j);

}  // namespace amskv::cli
