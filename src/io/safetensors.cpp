#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/byte_util.h"
#include "io/mapped_file.h"

namespace amskv::io {

namespace {
// The reference implementation refuses headers above 100 MB; so do we, before parsing anything.
constexpr uint64_t kMaxHeader = 100'000'000;
constexpr size_t kMaxDims = 64;

using nlohmann::json;

// A header fragment for an error message, cut short: hostile headers can be large.
std::string brief(const json& v) {
  std::string s = v.dump();
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

Tensor read_entry(const std::string& key, const json& info, const uint8_t* data, uint64_t data_size,
                  const std::string& name, const std::shared_ptr<const void>& owner) {
  if (!info.is_object()) fail(name, ": tensor '", key, "' header entry is not an object");
  auto dt = info.find("dtype");
  auto sh = info.find("shape");
  auto of = info.find("data_offsets");
  if (dt == info.end() || sh == info.end() || of == info.end())
    fail(name, ": tensor '", key, "' header entry lacks dtype, shape or data_offsets");
  DType dtype;
  if (!dt->is_string() || !dtype_from_name(dt->get_ref<const std::string&>(), dtype))
    fail(name, ": tensor '", key, "' has unsupported dtype ", brief(*dt));
  if (!sh->is_array() || sh->size() > kMaxDims) fail(name, ": tensor '", key, "' has a malformed shape ", brief(*sh));
  Shape shape;
  uint64_t numel = 1;
  for (const json& d : *sh) {
    uint64_t v;
    if (!as_uint(d, v) || v > static_cast<uint64_t>(INT64_MAX) || !mul_ok(numel, v, numel))
      fail(name, ": tensor '", key, "' has a malformed shape ", brief(*sh));
    shape.push_back(static_cast<int64_t>(v));
  }
  uint64_t begin, end, nbytes;
  if (!of->is_array() || of->size() != 2 || !as_uint((*of)[0], begin) || !as_uint((*of)[1], end) || begin > end)
    fail(name, ": tensor '", key, "' has malformed data_offsets ", brief(*of));
  if (!mul_ok(numel, dtype_size(dtype), nbytes) || nbytes > static_cast<uint64_t>(INT64_MAX))
    fail(name, ": tensor '", key, "' shape ", brief(*sh), " is too large");
  if (end - begin != nbytes)
    fail(name, ": tensor '", key, "' data_offsets [", begin, ", ", end, "] hold ", end - begin, " bytes, but ",
         dtype_name(dtype), " ", shape_str(shape), " needs ", nbytes);
  if (end > data_size)
    fail(name, ": tensor '", key, "' data_offsets [", begin, ", ", end, "] are out of range (data section has ",
         data_size, " bytes; truncated file?)");
  const uint8_t* p = data + begin;
  if (reinterpret_cast<uintptr_t>(p) % dtype_size(dtype) == 0) return Tensor::view(dtype, shape, p, owner);
  Tensor copy = Tensor::zeros(dtype, shape);  // misaligned: typed loads from it would be undefined
  std::memcpy(const_cast<void*>(copy.raw()), p, nbytes);
  return copy;
}
}  // namespace

TensorMap load_safetensors_from_memory(const uint8_t* data, size_t size, const std::string& name,
                                       std::shared_ptr<const void> owner) {
  if (size < 8) fail(name, ": not a safetensors file (", size, " bytes, too short for the header length)");
  const uint64_t header_len = load_le<uint64_t>(data);
  if (header_len > size - 8)
    fail(name, ": safetensors header length ", header_len, " exceeds the file size ", size, " (truncated file?)");
  if (header_len > kMaxHeader) fail(name, ": safetensors header of ", header_len, " bytes is too large");
  const json header = json::parse(data + 8, data + 8 + header_len, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) fail(name, ": safetensors header is not valid JSON");
  if (!header.is_object()) fail(name, ": safetensors header is not a JSON object");

  TensorMap out(name);
  const uint8_t* body = data + 8 + header_len;
  const uint64_t body_size = size - 8 - header_len;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail(name, ": safetensors __metadata__ is not an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) fail(name, ": safetensors __metadata__ value for '", mk, "' is not a string");
        out.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    out.insert(key, read_entry(key, value, body, body_size, name, owner));
  }
  return out;
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
