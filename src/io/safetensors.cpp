#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/byte_util.h"
#include "io/json_parse.h"
#include "io/load_budget.h"
#include "io/mapped_file.h"

namespace amskv::io {

namespace {
// The reference implementation refuses headers above 100 MB; so do we, before parsing anything.
constexpr uint64_t kMaxHeader = 100'000'000;
constexpr size_t kMaxDims = 64;

using nlohmann::json;

// A header fragment for an error message, cut short: hostile headers can be large. (Nesting is bounded by
// parse_json, so dump() cannot recurse deeply.)
std::string brief(const json& v) {
  if (v.is_array() && v.size() > 16) return cat("(an array of ", v.size(), " values)");
  if (v.is_object() && v.size() > 16) return cat("(an object of ", v.size(), " keys)");
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

// A JSON number that is a non-negative integer, or nothing.
bool as_uint(const json& v, uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

// One tensor's header entry, checked on its own.
struct Entry {
  const std::string* key;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

Entry read_entry(const std::string& key, const json& info, uint64_t data_size, const std::string& name) {
  if (!info.is_object()) fail(name, ": tensor '", key, "' header entry is not an object");
  auto dt = info.find("dtype");
  auto sh = info.find("shape");
  auto of = info.find("data_offsets");
  if (dt == info.end() || sh == info.end() || of == info.end())
    fail(name, ": tensor '", key, "' header entry lacks dtype, shape or data_offsets");
  Entry e{&key, DType::F32, {}, 0, 0};
  if (!dt->is_string() || !dtype_from_name(dt->get_ref<const std::string&>(), e.dtype))
    fail(name, ": tensor '", key, "' has unsupported dtype ", brief(*dt));
  if (!sh->is_array() || sh->size() > kMaxDims) fail(name, ": tensor '", key, "' has a malformed shape ", brief(*sh));
  uint64_t numel = 1;
  for (const json& d : *sh) {
    uint64_t v;
    if (!as_uint(d, v) || v > static_cast<uint64_t>(INT64_MAX) || !mul_ok(numel, v, numel))
      fail(name, ": tensor '", key, "' has a malformed shape ", brief(*sh));
    e.shape.push_back(static_cast<int64_t>(v));
  }
  uint64_t nbytes;
  if (!of->is_array() || of->size() != 2 || !as_uint((*of)[0], e.begin) || !as_uint((*of)[1], e.end) ||
      e.begin > e.end)
    fail(name, ": tensor '", key, "' has malformed data_offsets ", brief(*of));
  if (!mul_ok(numel, dtype_size(e.dtype), nbytes) || nbytes > static_cast<uint64_t>(INT64_MAX))
    fail(name, ": tensor '", key, "' shape ", brief(*sh), " is too large");
  if (e.end - e.begin != nbytes)
    fail(name, ": tensor '", key, "' data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin,
         " bytes, but ", dtype_name(e.dtype), " ", shape_str(e.shape), " needs ", nbytes);
  if (e.end > data_size)
    fail(name, ": tensor '", key, "' data_offsets [", e.begin, ", ", e.end, "] are out of range (data section has ",
         data_size, " bytes; truncated file?)");
  return e;
}

// The format requires the tensors' ranges to tile the data section: sorted by offset, each begins where the
// previous one ended, and the last ends at the end of the file. Overlaps would let one byte be two weights;
// gaps and a tail hide data that no tensor accounts for.
void check_tiling(std::vector<Entry> entries, uint64_t data_size, const std::string& name) {
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t cursor = 0;
  const Entry* last = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < cursor)
      fail(name, ": tensor '", *e.key, "' data_offsets [", e.begin, ", ", e.end, "] overlap those of tensor '",
           *last->key, "' [", last->begin, ", ", last->end, "]");
    if (e.begin > cursor)
      fail(name, ": ", e.begin - cursor, " unused bytes before tensor '", *e.key, "' (data_offsets [", e.begin,
           ", ", e.end, "]); the tensors' data must be contiguous");
    cursor = e.end;
    last = &e;
  }
  if (cursor != data_size)
    fail(name, ": ", data_size - cursor, " bytes after the last tensor's data belong to no tensor");
}

Tensor make_tensor(const Entry& e, const uint8_t* data, LoadBudget& budget, const std::shared_ptr<const void>& owner) {
  const uint8_t* p = data + e.begin;
  if (reinterpret_cast<uintptr_t>(p) % dtype_size(e.dtype) == 0) return Tensor::view(e.dtype, e.shape, p, owner);
  Tensor copy = budget.allocate(e.dtype, e.shape, *e.key);  // misaligned: typed loads from it would be undefined
  std::memcpy(const_cast<void*>(copy.raw()), p, e.end - e.begin);
  return copy;
}

TensorMap load(const uint8_t* data, size_t size, const std::string& name, const std::shared_ptr<const void>& owner) {
  if (size < 8) fail(name, ": not a safetensors file (", size, " bytes, too short for the header length)");
  const uint64_t header_len = load_le<uint64_t>(data);
  if (header_len > size - 8)
    fail(name, ": safetensors header length ", header_len, " exceeds the file size ", size, " (truncated file?)");
  if (header_len > kMaxHeader) fail(name, ": safetensors header of ", header_len, " bytes is too large");
  const json header = parse_json({reinterpret_cast<const char*>(data + 8), static_cast<size_t>(header_len)}, name,
                                 "safetensors header");
  if (!header.is_object()) fail(name, ": safetensors header is not a JSON object");

  TensorMap out(name);
  const uint8_t* body = data + 8 + header_len;
  const uint64_t body_size = size - 8 - header_len;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail(name, ": safetensors __metadata__ is not an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) fail(name, ": safetensors __metadata__ value for '", mk, "' is not a string");
        out.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    entries.push_back(read_entry(key, value, body_size, name));
  }
  check_tiling(entries, body_size, name);
  LoadBudget budget(name, size);
  for (const Entry& e : entries) out.insert(*e.key, make_tensor(e, body, budget, owner));
  return out;
}
}  // namespace

TensorMap load_safetensors_from_memory(const uint8_t* data, size_t size, const std::string& name,
                                       std::shared_ptr<const void> owner) {
  return naming_out_of_memory(name, [&] { return load(data, size, name, owner); });
}

TensorMap load_safetensors(const std::string& path) {
  MappedFile f = map_file(path);
  return load_safetensors_from_memory(f.data, f.size, path, f.owner);
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::set<std::string_view> keys;
  for (const auto& [key, t] : tensors) {
    if (key == "__metadata__") fail(path, ": cannot save a tensor named __metadata__");
    if (!keys.insert(key).second) fail(path, ": cannot save: key '", key, "' appears twice");
    if (!t.defined()) fail(path, ": cannot save: tensor '", key, "' has no data");
  }
  std::vector<const std::pair<std::string, Tensor>*> order;
  for (const auto& kv : tensors) order.push_back(&kv);
  std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) {
    return dtype_size(a->second.dtype()) > dtype_size(b->second.dtype());
  });

  json header = json::object();
  uint64_t offset = 0;
  for (const auto* kv : order) {
    const Tensor& t = kv->second;
    header[kv->first] = {{"dtype", std::string(dtype_name(t.dtype()))},
                         {"shape", t.shape()},
                         {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {  // e.g. a key that is not valid UTF-8
    fail(path, ": cannot write the safetensors header: ", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned

  AtomicFile file(path);
  uint8_t len[8];
  store_le<uint64_t>(len, text.size());
  file.write(len, sizeof len);
  file.write(text.data(), text.size());
  for (const auto* kv : order) file.write(kv->second.raw(), kv->second.nbytes());
  file.commit();
}

}  // namespace amskv::io
