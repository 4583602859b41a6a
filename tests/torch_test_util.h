// Hand-made torch checkpoints for the io tests: pickles with layouts our writer never produces (strides,
// offsets, shared storages, hostile strings) and zip archives around them.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "io/atomic_file.h"
#include "io/zip_writer.h"

namespace amskv::torch_test {

inline std::string pk_str(const std::string& s) {
  std::string out = "X";
  const auto n = static_cast<uint32_t>(s.size());
  out.append(reinterpret_cast<const char*>(&n), 4);
  return out + s;
}
inline std::string pk_int(int32_t v) {
  std::string out = "J";
  out.append(reinterpret_cast<const char*>(&v), 4);
  return out;
}
inline std::string pk_tuple(const std::vector<int32_t>& v) {
  std::string out = "(";
  for (int32_t x : v) out += pk_int(x);
  return out + "t";
}
inline std::string one_tensor_pickle(const std::string& storage_type, int32_t numel, int32_t offset,
                                     const std::vector<int32_t>& size, const std::vector<int32_t>& stride,
                                     const std::string& extra_global = "") {
  std::string p = "\x80\x02";
  p += "ccollections\nOrderedDict\n)R(";
  p += pk_str("t");
  p += extra_global.empty() ? "ctorch._utils\n_rebuild_tensor_v2\n" : extra_global;
  p += "((" + pk_str("storage") + "ctorch\n" + storage_type + "\n" + pk_str("0") + pk_str("cpu") + pk_int(numel);
  p += "tQ" + pk_int(offset) + pk_tuple(size) + pk_tuple(stride);
  p += "\x89";
  p += "ccollections\nOrderedDict\n)RtRu.";
  return p;
}

// A state dict whose entries `keys` all view one FloatStorage of `numel` elements, each with the given size and
// stride. The persistent id is memoised after its first use and fetched again for the others, as torch does
// for tied weights, so its strings appear once in the file however many entries share them.
inline std::string shared_storage_pickle(const std::vector<std::string>& keys, int32_t numel,
                                         const std::vector<int32_t>& size, const std::vector<int32_t>& stride,
                                         const std::string& location = "cpu", const std::string& storage_key = "0") {
  std::string p = "\x80\x02";
  p += "ccollections\nOrderedDict\n)R(";
  for (size_t i = 0; i < keys.size(); ++i) {
    p += pk_str(keys[i]);
    p += "ctorch._utils\n_rebuild_tensor_v2\n(";
    if (i == 0) {
      p += "(" + pk_str("storage") + "ctorch\nFloatStorage\n" + pk_str(storage_key) + pk_str(location) + pk_int(numel);
      p += "tQq\x01";  // BINPERSID, then BINPUT 1
    } else {
      p += "h\x01";  // BINGET 1
    }
    p += pk_int(0) + pk_tuple(size) + pk_tuple(stride) + "\x89";
    p += "ccollections\nOrderedDict\n)RtR";
  }
  return p + "u.";
}

// Writes a zip with `<root>/data.pkl` = pickle and the given data records.
inline void write_zip(const std::string& path, const std::string& pickle,
                      const std::vector<std::pair<std::string, std::vector<uint8_t>>>& records,
                      const std::string& root = "ckpt") {
  io::AtomicFile f(path);
  io::ZipWriter z(f);
  z.add(root + "/data.pkl", {reinterpret_cast<const uint8_t*>(pickle.data()), pickle.size()});
  for (const auto& [name, bytes] : records) z.add(root + "/" + name, bytes);
  z.finish();
  f.commit();
}

inline std::vector<uint8_t> float_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 4);
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

inline std::vector<float> iota_floats(int n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i);
  return v;
}

}  // namespace amskv::torch_test
