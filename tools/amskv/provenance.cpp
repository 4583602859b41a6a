#include "provenance.h"

#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "app.h"
#include "core/dtype.h"
#include "io/file_hash.h"
#include "io/png_reader.h"

namespace amskv::cli {

namespace {

constexpr int kFormat = 1;

nlohmann::json optional_json(const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }

std::string dtype_text(DType d) { return d == DType::BF16 ? "bf16" : d == DType::F16 ? "f16" : "f32"; }

nlohmann::json policy_record(const kv::PolicyOptions& o) {
  nlohmann::json j = {{"policy", o.name}};
  if (o.name == "window" || o.name == "sink") {
    j["window"] = o.window;
    j["sink_condensed"] = o.sink_condensed;
  } else if (o.name == "uniform") {
    j["budget"] = o.budget;
    j["condensed"] = optional_json(o.ams.condensed);
  } else if (o.name == "ams") {
    j["condensed"] = optional_json(o.ams.condensed);
    j["cmin"] = optional_json(o.ams.cmin);
    j["cmax"] = optional_json(o.ams.cmax);
    j["theta"] = optional_json(o.ams.theta);
    j["demanding_fraction"] = optional_json(o.ams.demanding_fraction);
    if (!o.ams_profile.empty()) j["profile"] = o.ams_profile;  // for the reader; the decision is in "describe"
  }
  return j;
}

// Typed access to a record read from a file: every missing or mistyped field is an error naming the PNG.
class Reader {
 public:
  Reader(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {}
  const nlohmann::json& at(const std::string& key) const {
    AMSKV_CHECK(j_.is_object() && j_.contains(key), where_, ": '", key, "' is missing");
    return j_.at(key);
  }
  Reader sub(const std::string& key) const {
    AMSKV_CHECK(at(key).is_object(), where_, ": '", key, "' is not an object");
    return Reader(at(key), where_ + ": " + key);
  }
  std::string str(const std::string& key) const {
    AMSKV_CHECK(at(key).is_string(), where_, ": '", key, "' is not a string");
    return at(key).get<std::string>();
  }
  int64_t integer(const std::string& key, int64_t lo, int64_t hi) const {
    const auto& v = at(key);
    bool ok = v.is_number_integer();
    int64_t x = 0;
    if (v.is_number_unsigned()) {
      ok = v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      x = static_cast<int64_t>(v.get<uint64_t>());
    } else if (ok) {
      x = v.get<int64_t>();
    }
    AMSKV_CHECK(ok && x >= lo && x <= hi, where_, ": '", key, "' is not an integer in [", lo, ", ", hi, "]");
    return x;
  }
  uint64_t unsigned_integer(const std::string& key) const {
    const auto& v = at(key);
    AMSKV_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0), where_, ": '", key,
                "' is not an unsigned integer");
    return v.get<uint64_t>();
  }
  double number(const std::string& key, double lo, double hi) const {
    const auto& v = at(key);
    AMSKV_CHECK(v.is_number() && std::isfinite(v.get<double>()) && v.get<double>() >= lo && v.get<double>() <= hi,
                where_, ": '", key, "' is not a number in [", lo, ", ", hi, "]");
    return v.get<double>();
  }
  bool boolean(const std::string& key) const {
    AMSKV_CHECK(at(key).is_boolean(), where_, ": '", key, "' is not true or false");
    return at(key).get<bool>();
  }
  template <class T>
  std::optional<T> maybe(const std::string& key, double lo, double hi) const {
    if (!j_.contains(key) || j_.at(key).is_null()) return std::nullopt;
    if constexpr (std::is_integral_v<T>)
      return static_cast<T>(integer(key, static_cast<int64_t>(lo), static_cast<int64_t>(hi)));
    else
      return number(key, lo, hi);
  }
  const std::string& where() const { return where_; }

 private:
  const nlohmann::json& j_;
  std::string where_;
};

// The checkpoint at `path` (the recorded one unless overridden), checked against its record.
std::string verified_file(const Reader& rec, const std::string& override_path, const std::string& png,
                          const std::string& flag) {
  const std::string path = override_path.empty() ? rec.str("path") : override_path;
  const int64_t bytes = rec.integer("bytes", 0, std::numeric_limits<int64_t>::max());
  const std::string hash = rec.str("hash");
  struct stat st {};
  AMSKV_CHECK(::stat(path.c_str(), &st) == 0, path, ": cannot open it (", png, " was made from this ", flag,
              " file; give ", flag, " where it is now)");
  const std::string actual = S_ISREG(st.st_mode) ? io::xxh64_hex(io::file_xxh64(path)) : std::string("not a file");
  AMSKV_CHECK(st.st_size == bytes && actual == hash, path, ": has ", st.st_size, " bytes and ", actual, ", but ", png,
              " was made from ", bytes, " bytes with ", hash, " (", rec.str("path"),
              "); give the checkpoint it was made from with ", flag);
  return path;
}

kv::PolicyOptions policy_from(const Reader& kv, const std::string& png, int num_scales) {
  kv::PolicyOptions o;
  o.name = kv.str("policy");
  bool known = false;
  for (const std::string& n : kv::policy_names()) known = known || n == o.name;
  AMSKV_CHECK(known, kv.where(), ": unknown policy '", o.name, "'");
  const Reader describe = kv.sub("describe");
  if (o.name == "window" || o.name == "sink") {
    o.window = static_cast<int>(kv.integer("window", 0, 1000));
    o.sink_condensed = static_cast<int>(kv.integer("sink_condensed", 0, 1000));
  } else if (o.name == "uniform") {
    o.budget = kv.integer("budget", -1, kMaxTokens);
    o.ams.condensed = kv.maybe<int>("condensed", 0, 64);
  } else if (o.name == "ams") {
    o.ams.condensed = kv.maybe<int>("condensed", 0, 64);
    o.ams.cmin = kv.maybe<int64_t>("cmin", 0, double(kMaxTokens));
    o.ams.cmax = kv.maybe<int64_t>("cmax", 0, double(kMaxTokens));
    o.ams.theta = kv.maybe<double>("theta", -1e9, 1e9);
    o.ams.demanding_fraction = kv.maybe<double>("demanding_fraction", 0, 1);
    // Decided from a profile: the layer classes recorded, given back as a profile whose mean per layer is
    // exactly the recorded value (one measured scale, the others unmeasured), so the same layers are demanding.
    // (An online decision is simply taken again: the batch is the same.)
    const std::string basis = describe.str("decision_basis");
    if (basis.rfind("profile ", 0) != 0) return o;
    const auto& sims = describe.at("layer_similarity");
    AMSKV_CHECK(sims.is_array(), describe.where(), ": 'layer_similarity' is not a list");
    for (const auto& v : sims) {
      AMSKV_CHECK(v.is_null() || (v.is_number() && std::isfinite(v.get<double>())), describe.where(),
                  ": 'layer_similarity' holds something other than numbers");
      std::vector<double> row(static_cast<size_t>(std::max(num_scales - 1, 1)), std::nan(""));
      if (v.is_number()) row[0] = v.get<double>();
      o.ams.profile_similarity.push_back(std::move(row));
    }
    o.ams.profile_source = png + " (the layer classes it records)";
  } else if (o.name == "table") {
    // A table policy's describe() is its table: {"policy": "table", "default": rule, "layers": {...}}.
    nlohmann::json table = kv.at("describe");
    table.erase("policy");
    o.table = std::move(table);
    o.table_path = png + ": kv.describe";
  }
  return o;
}

}  // namespace

nlohmann::json checkpoint_record(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path abs = std::filesystem::absolute(path, ec);
  const std::filesystem::path p = ec ? std::filesystem::path(path) : abs.lexically_normal();
  struct stat st {};
  AMSKV_CHECK(::stat(path.c_str(), &st) == 0, path, ": cannot stat it");
  return {{"path", p.string()},
          {"name", p.filename().string()},
          {"bytes", static_cast<int64_t>(st.st_size)},
          {"hash", io::xxh64_hex(io::file_xxh64(path))}};
}

nlohmann::json run_record(const engine::GenerationJob& job, const kv::PolicyOptions& policy) {
  const engine::JobOptions& o = job.options();
  nlohmann::json j = {
      {"format", kFormat},
      {"engine", version_string()},
      {"var", checkpoint_record(o.var_path)},
      {"vae", checkpoint_record(o.vae_path)},
      {"seed", o.sampling.seed},
      {"sampling",
       {{"cfg", o.sampling.cfg}, {"top_k", o.sampling.top_k}, {"top_p", o.sampling.top_p},
        {"more_smooth", o.sampling.more_smooth}}},
      {"schedule", job.var().config().schedule.patch_nums},
      {"kv", policy_record(policy)},
      {"device", o.backend.device},
      {"gpu", o.backend.gpu},
      {"dtype", dtype_text(job.backend().compute_dtype())},
      {"kv_dtype", job.backend().kv_dtype() == DType::I8 ? "int8" : "auto"},
      {"backend", job.backend().name()},
  };
  if (!o.force_tokens.empty()) j["force_tokens"] = checkpoint_record(o.force_tokens);
  return j;
}

nlohmann::json batch_record(uint64_t first_image_index, const std::vector<int64_t>& labels,
                            const engine::ExecutionPlan& exec) {
  return {{"first_image_index", first_image_index},
          {"labels", labels},
          {"chunk_rows", exec.chunk_rows},
          {"head_images", exec.head_images}};
}

nlohmann::json image_record(const nlohmann::json& run, int64_t label, uint64_t image_index, const nlohmann::json& batch,
                            const nlohmann::json& policy_describe) {
  nlohmann::json j = run;
  j["label"] = label;
  j["image_index"] = image_index;
  j["batch"] = batch;
  j["kv"]["describe"] = policy_describe;
  return j;
}

nlohmann::json read_record(const std::string& png_path) {
  const io::PngImage png = io::read_png(png_path, /*pixels=*/false);
  const auto it = png.text.find(kPngKey);
  AMSKV_CHECK(it != png.text.end(), png_path, ": no amskv settings (not written by amskv generate)");
  nlohmann::json j = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  AMSKV_CHECK(j.is_object(), png_path, ": its amskv settings are not a JSON object");
  AMSKV_CHECK(j.contains("format") && j["format"] == kFormat, png_path, ": amskv settings of format ",
              j.contains("format") ? j["format"].dump() : "(none)", ", this amskv reads format ", kFormat);
  return j;
}

Regeneration regeneration(const nlohmann::json& record, const std::string& png, const std::string& var_path,
                          const std::string& vae_path, const backend::BackendOptions& device,
                          const std::set<std::string>& given) {
  const Reader r(record, png + ": amskv settings");
  AMSKV_CHECK(record.contains("label") || record.contains("image_index") || !record.contains("labels"), png,
              ": these are the settings of a whole run (grid.png), not of one image: give one of its images");
  Regeneration g;
  engine::JobOptions& j = g.job;
  j.var_path = verified_file(r.sub("var"), var_path, png, "--var");
  j.vae_path = verified_file(r.sub("vae"), vae_path, png, "--vae");
  if (record.contains("force_tokens")) j.force_tokens = verified_file(r.sub("force_tokens"), "", png, "--force-tokens");
  const int64_t label = r.integer("label", -1, std::numeric_limits<int32_t>::max());
  g.image_index = r.unsigned_integer("image_index");
  const Reader batch = r.sub("batch");
  j.first_image_index = batch.unsigned_integer("first_image_index");
  const auto& labels = batch.at("labels");
  AMSKV_CHECK(labels.is_array() && !labels.empty() && labels.size() <= size_t{1} << 20, batch.where(),
              ": 'labels' is not a list of labels");
  for (const auto& l : labels) {
    AMSKV_CHECK(l.is_number_integer() && l.get<int64_t>() >= -1 && l.get<int64_t>() <= INT32_MAX, batch.where(),
                ": 'labels' is not a list of labels");
    j.labels.push_back(l.get<int64_t>());
  }
  AMSKV_CHECK(j.first_image_index <= (uint64_t{1} << 62) && g.image_index >= j.first_image_index &&
                  g.image_index - j.first_image_index < j.labels.size() &&
                  j.labels[g.image_index - j.first_image_index] == label,
              r.where(), ": image ", g.image_index, " with label ", label, " is not in its batch");
  j.exec_plan = engine::ExecutionPlan{batch.integer("chunk_rows", 0, kMaxBatch * 2),
                                      batch.integer("head_images", 0, kMaxBatch)};
  j.sampling.seed = r.unsigned_integer("seed");
  const Reader s = r.sub("sampling");
  j.sampling.cfg = s.number("cfg", 0, kMaxCfg);
  j.sampling.top_k = s.integer("top_k", 0, std::numeric_limits<int64_t>::max());
  j.sampling.top_p = s.number("top_p", 0, 1);
  j.sampling.more_smooth = s.boolean("more_smooth");
  const auto& schedule = r.at("schedule");
  AMSKV_CHECK(schedule.is_array() && !schedule.empty() && schedule.size() <= 64, r.where(),
              ": 'schedule' is not a list of scale sides");
  for (const auto& side : schedule) {
    AMSKV_CHECK(side.is_number_integer() && side.get<int64_t>() > 0 && side.get<int64_t>() <= 4096, r.where(),
                ": 'schedule' is not a list of scale sides");
    j.patch_nums.push_back(side.get<int64_t>());
  }
  j.backend = device;
  if (!given.count("--device")) j.backend.device = r.str("device");
  if (!given.count("--gpu")) j.backend.gpu = static_cast<int>(r.integer("gpu", 0, 64));
  // The recorded dtype on the recorded device; another device starts from its own default.
  if (!given.count("--dtype")) j.backend.dtype = given.count("--device") ? "auto" : r.str("dtype");
  // The K/V storage changes the image like the dtype does (records before 8-bit stores have none: "auto").
  if (!given.count("--kv-dtype") && record.contains("kv_dtype")) {
    j.backend.kv_dtype = r.str("kv_dtype");
    AMSKV_CHECK(j.backend.kv_dtype == "auto" || j.backend.kv_dtype == "int8", r.where(), ": 'kv_dtype' is ",
                j.backend.kv_dtype, ", not auto or int8");
  }
  g.policy = policy_from(r.sub("kv"), png, static_cast<int>(j.patch_nums.size()));
  return g;
}

}  // namespace amskv::cli
