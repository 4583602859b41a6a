// What a generated PNG says about how it was made: an iTXt chunk "amskv" holding JSON (format 1) with the
// engine version, the checkpoints (path, size, XXH64 of the whole file), the image's label, seed and index in
// the random stream, the batch that computed it (its first index, labels and execution plan), the sampling
// settings, the scale schedule, the KV policy (its options, and the describe() of that batch: budgets and the
// layer classes it decided), the device and the dtype. grid.png carries the run's part (no per-image fields).
//
// `amskv inspect IMAGE.png` prints it; `amskv generate --from IMAGE.png` turns it back into a job that
// regenerates the image exactly: its whole batch again, with the same first_image_index (so every image's
// random stream is the same), the same labels and the same execution plan. The batch, not the image alone,
// because results depend on it in the last bits: the CPU's matrix products round differently for another
// number of rows, a sampled token can flip on that, and the online AMS decision averages over the batch. An
// AMS decision taken from a profile is fixed to the layer classes recorded, so no profile file is needed.
#pragma once
#include <cstdint>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/generation_job.h"
#include "kv/policy_factory.h"

namespace amskv::cli {

constexpr const char* kPngKey = "amskv";

// A checkpoint as recorded: {"path": absolute, "name", "bytes", "hash": "xxh64:<16 hex>"}.
nlohmann::json checkpoint_record(const std::string& path);

// The run's part: engine, checkpoints, sampling, schedule, policy options, device and dtype.
nlohmann::json run_record(const engine::GenerationJob& job, const kv::PolicyOptions& policy);
// The batch that computed images [first_image_index, + labels.size()) under `exec`.
nlohmann::json batch_record(uint64_t first_image_index, const std::vector<int64_t>& labels,
                            const engine::ExecutionPlan& exec);
// One image's: the run's plus its label, its index, its batch and the batch's policy decisions.
nlohmann::json image_record(const nlohmann::json& run, int64_t label, uint64_t image_index, const nlohmann::json& batch,
                            const nlohmann::json& policy_describe);

// The record of a PNG; throws "<png>: no amskv settings (not written by amskv generate)" when it has none, or
// naming the PNG when the chunk is not a JSON object of format 1.
nlohmann::json read_record(const std::string& png_path);

struct Regeneration {
  engine::JobOptions job;  // the image's whole batch
  kv::PolicyOptions policy;
  uint64_t image_index = 0;  // the one to write
};
// The job that regenerates the image a record describes. `var_path`/`vae_path` replace the recorded paths when
// not empty; every checkpoint (and forced-token file) is checked against the recorded size and hash, with an
// error naming the file and the PNG on a mismatch. `device` is the command line's device options; those in
// `given` (--device, --dtype, --gpu) override the recorded ones, --threads always applies.
Regeneration regeneration(const nlohmann::json& record, const std::string& png_path, const std::string& var_path,
                          const std::string& vae_path, const backend::BackendOptions& device,
                          const std::set<std::string>& given);

}  // namespace amskv::cli
