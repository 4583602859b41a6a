#include "io/torch_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/byte_util.h"
#include "io/load_budget.h"
#include "io/mapped_file.h"
#include "io/pickle_reader.h"
#include "io/zip_archive.h"
#include "io/zip_writer.h"

namespace amskv::io {

namespace {

struct StorageKind {
  std::string_view name;
  DType dtype;
};
constexpr StorageKind kStorageKinds[] = {
    {"FloatStorage", DType::F32}, {"DoubleStorage", DType::F64}, {"HalfStorage", DType::F16},
    {"BFloat16Storage", DType::BF16}, {"LongStorage", DType::I64}, {"IntStorage", DType::I32},
    {"ShortStorage", DType::I16}, {"CharStorage", DType::I8},     {"ByteStorage", DType::U8},
    {"BoolStorage", DType::Bool},
};

bool dtype_of_storage(std::string_view name, DType& out) {
  for (const auto& k : kStorageKinds) {
    if (k.name == name) {
      out = k.dtype;
      return true;
    }
  }
  return false;
}

std::string_view storage_of_dtype(DType t) {
  for (const auto& k : kStorageKinds) {
    if (k.dtype == t) return k.name;
  }
  return "FloatStorage";
}

// Finds `<root>/data.pkl`. The root folder is named after the file at save time, so match by suffix.
std::string find_root(const ZipArchive& zip, const std::string& name) {
  std::string root;
  int found = 0;
  for (const ZipEntry& e : zip.entries()) {
    const std::string_view n = e.name;
    constexpr std::string_view kPkl = "data.pkl";
    if (n.size() < kPkl.size() || n.substr(n.size() - kPkl.size()) != kPkl) continue;
    const std::string_view prefix = n.substr(0, n.size() - kPkl.size());
    // Only "<root>/data.pkl" (one folder deep) or a bare "data.pkl" count.
    if (!prefix.empty() && (prefix.back() != '/' || prefix.find('/') != prefix.size() - 1)) continue;
    root = std::string(prefix);
    ++found;
  }
  if (found == 0) fail(name, ": zip archive without a data.pkl entry, so not a PyTorch checkpoint");
  if (found > 1) fail(name, ": zip archive with ", found, " data.pkl entries; expected one");
  return root;
}

// Gathers a strided tensor into `out` (contiguous, of the same dtype and size) in row-major order, a row of
// the innermost dimension at a time: rows that are contiguous (stride 1) or expanded (stride 0) are copied
// or filled in bulk.
void copy_strided(Tensor& out, const Shape& stride, const uint8_t* base) {
  const Shape& size = out.shape();
  const size_t es = dtype_size(out.dtype());
  auto* dst = static_cast<uint8_t*>(const_cast<void*>(out.raw()));
  if (out.numel() == 0) return;
  if (size.empty()) {
    std::memcpy(dst, base, es);
    return;
  }
  const int nd = static_cast<int>(size.size());
  const int64_t inner = size[nd - 1], inner_stride = stride[nd - 1];
  const size_t row_bytes = static_cast<size_t>(inner) * es;
  const int64_t rows = out.numel() / inner;
  std::vector<int64_t> idx(static_cast<size_t>(nd - 1), 0);
  int64_t src = 0;  // element offset of the row's first element in the storage
  for (int64_t r = 0; r < rows; ++r, dst += row_bytes) {
    const uint8_t* row = base + static_cast<size_t>(src) * es;
    if (inner_stride == 1) {
      std::memcpy(dst, row, row_bytes);
    } else if (inner_stride == 0) {
      std::memcpy(dst, row, es);
      for (size_t done = es; done < row_bytes; done *= 2)  // doubling what is filled
        std::memcpy(dst + done, dst, std::min(done, row_bytes - done));
    } else {
      for (int64_t j = 0; j < inner; ++j)
        std::memcpy(dst + static_cast<size_t>(j) * es, row + static_cast<size_t>(j * inner_stride) * es, es);
    }
    for (int d = nd - 2; d >= 0; --d) {  // odometer increment over the outer dimensions
      if (++idx[d] < size[d]) {
        src += stride[d];
        break;
      }
      src -= stride[d] * (size[d] - 1);
      idx[d] = 0;
    }
  }
}

// Strided or misaligned tensors are copied; every copy is charged to the file's budget, so that stride-0
// views of one element cannot expand a small file into gigabytes.
Tensor make_tensor(const PickledTensor& p, const PickledStorage& s, std::span<const uint8_t> storage,
                   const std::string& name, const std::shared_ptr<const void>& owner, LoadBudget& budget) {
  DType dtype;
  if (!dtype_of_storage(s.type, dtype))
    fail(name, ": tensor '", p.key, "' has unsupported storage type torch.", s.type);
  const uint64_t es = dtype_size(dtype);
  uint64_t storage_bytes;
  if (!mul_ok(static_cast<uint64_t>(s.numel), es, storage_bytes) || storage_bytes > storage.size())
    fail(name, ": storage of tensor '", p.key, "' declares ", s.numel, " elements of ", s.type,
         " but its record holds only ", storage.size(), " bytes");

  // Shape and extent: every element index offset + sum_d i_d * stride_d must lie inside the storage.
  uint64_t numel = 1;
  uint64_t last = static_cast<uint64_t>(p.storage_offset);
  bool ok = p.storage_offset >= 0;
  for (size_t d = 0; ok && d < p.size.size(); ++d) {
    ok = p.size[d] >= 0 && p.stride[d] >= 0 && mul_ok(numel, static_cast<uint64_t>(p.size[d]), numel);
  }
  if (!ok)
    fail(name, ": tensor '", p.key, "' has invalid shape ", shape_str(p.size), " / stride ", shape_str(p.stride),
         " / offset ", p.storage_offset);
  if (numel > static_cast<uint64_t>(INT64_MAX) / es)
    fail(name, ": tensor '", p.key, "' shape ", shape_str(p.size), " is too large");
  if (numel > 0) {
    for (size_t d = 0; ok && d < p.size.size(); ++d) {
      uint64_t span;
      ok = mul_ok(static_cast<uint64_t>(p.size[d] - 1), static_cast<uint64_t>(p.stride[d]), span) &&
           add_ok(last, span, last);
    }
    ok = ok && last < static_cast<uint64_t>(s.numel);
  } else {
    ok = last <= static_cast<uint64_t>(s.numel);
  }
  if (!ok)
    fail(name, ": tensor '", p.key, "' (shape ", shape_str(p.size), ", stride ", shape_str(p.stride), ", offset ",
         p.storage_offset, ") reaches beyond its storage of ", s.numel, " elements");

  const uint8_t* base = storage.data() + static_cast<uint64_t>(p.storage_offset) * es;
  if (numel == 0) return Tensor::view(dtype, p.size, base, owner);
  bool contiguous = true;
  int64_t expect = 1;
  for (size_t d = p.size.size(); d-- > 0;) {
    if (p.size[d] != 1 && p.stride[d] != expect) contiguous = false;
    expect *= p.size[d];
  }
  const bool aligned = reinterpret_cast<uintptr_t>(base) % es == 0;
  if (contiguous && aligned) return Tensor::view(dtype, p.size, base, owner);
  Tensor copy = budget.allocate(dtype, p.size, p.key);
  copy_strided(copy, p.stride, base);
  return copy;
}

// --- writing -------------------------------------------------------------------------------------------

// Emits the protocol-2 opcodes that torch.save produces for an OrderedDict of tensors.
class PickleWriter {
 public:
  std::vector<uint8_t> bytes;

  void op(uint8_t o) { bytes.push_back(o); }
  void raw(std::string_view s) { bytes.insert(bytes.end(), s.begin(), s.end()); }
  void str(std::string_view s) {
    op('X');  // BINUNICODE
    put_le<uint32_t>(static_cast<uint32_t>(s.size()));
    raw(s);
  }
  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      op('K');
      op(static_cast<uint8_t>(v));
    } else if (v >= 0 && v < 65536) {
      op('M');
      put_le<uint16_t>(static_cast<uint16_t>(v));
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      put_le<int32_t>(static_cast<int32_t>(v));
    } else {
      op(0x8a);  // LONG1 with 8 two's-complement bytes
      op(8);
      put_le<int64_t>(v);
    }
  }
  void tuple(const Shape& v) {
    if (v.size() > 3) op('(');
    for (int64_t x : v) integer(x);
    static const uint8_t kOps[] = {')', 0x85, 0x86, 0x87};
    op(v.size() <= 3 ? kOps[v.size()] : 't');
  }
  // GLOBAL the first time (memoised with BINPUT), BINGET afterwards.
  void global(std::string_view module, std::string_view name) {
    const std::string key = std::string(module) + "\n" + std::string(name) + "\n";
    auto it = memo_.find(key);
    if (it != memo_.end()) {
      op('h');
      op(it->second);
      return;
    }
    op('c');
    raw(key);
    const auto index = static_cast<uint8_t>(memo_.size());
    op('q');
    op(index);
    memo_.emplace(key, index);
  }

 private:
  template <class T>
  void put_le(T v) {
    uint8_t b[sizeof(T)];
    store_le(b, v);
    bytes.insert(bytes.end(), b, b + sizeof(T));
  }
  std::unordered_map<std::string, uint8_t> memo_;  // at most 12 distinct globals
};

std::vector<uint8_t> state_dict_pickle(const std::vector<std::pair<std::string, Tensor>>& tensors) {
  PickleWriter w;
  w.op(0x80);  // PROTO 2
  w.op(2);
  w.global("collections", "OrderedDict");
  w.op(')');
  w.op('R');
  w.op('(');  // MARK for SETITEMS
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i].second;
    w.str(tensors[i].first);
    w.global("torch._utils", "_rebuild_tensor_v2");
    w.op('(');  // arguments
    w.op('(');  // persistent id ('storage', type, key, location, numel)
    w.str("storage");
    w.global("torch", storage_of_dtype(t.dtype()));
    w.str(std::to_string(i));
    w.str("cpu");
    w.integer(t.numel());
    w.op('t');
    w.op('Q');  // BINPERSID
    w.integer(0);  // storage offset
    w.tuple(t.shape());
    Shape stride(t.shape().size());
    int64_t s = 1;
    for (size_t d = stride.size(); d-- > 0;) {  // torch's contiguous strides treat size 0 as 1
      stride[d] = s;
      s *= std::max<int64_t>(t.shape()[d], 1);
    }
    w.tuple(stride);
    w.op(0x89);  // requires_grad = False
    w.global("collections", "OrderedDict");  // backward_hooks = OrderedDict()
    w.op(')');
    w.op('R');
    w.op('t');
    w.op('R');
  }
  w.op('u');  // SETITEMS
  w.op('.');  // STOP
  return std::move(w.bytes);
}

}  // namespace

bool looks_like_legacy_torch(const uint8_t* data, size_t size) {
  // PROTO n, LONG1 with 10 bytes: the little-endian magic number 0x1950a86a20f9469cfc6c.
  static const uint8_t kMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  return size >= 14 && data[0] == 0x80 && data[2] == 0x8a && data[3] == 10 &&
         std::memcmp(data + 4, kMagic, sizeof kMagic) == 0;
}

TensorMap load_torch_checkpoint_from_memory(const uint8_t* data, size_t size, const std::string& name,
                                            std::shared_ptr<const void> owner) {
  if (looks_like_legacy_torch(data, size))
    fail(name, ": legacy (pre-1.6, non-zip) PyTorch checkpoint format, which is not supported; re-save it with "
               "torch>=1.6: torch.save(torch.load(f), f)");
  if (!looks_like_zip(data, size))
    fail(name, ": not a PyTorch checkpoint (a zip archive starts with PK\\x03\\x04; truncated or corrupt file?)");
  return naming_out_of_memory(name, [&] {
    ZipArchive zip(data, size, name);
    const std::string root = find_root(zip, name);
    LoadBudget budget(name, size);
    const PickledStateDict dict = read_state_dict_pickle(zip.read(*zip.find(root + "data.pkl")), name, budget);

    TensorMap out(name);
    // Each storage's zip record, found once however many tensors view it (tied weights).
    std::vector<std::optional<std::span<const uint8_t>>> records(dict.storages.size());
    for (const PickledTensor& p : dict.tensors) {
      const PickledStorage& s = dict.storages[p.storage];
      auto& record = records[p.storage];
      if (!record) {
        const std::string entry = root + "data/" + s.key;
        const ZipEntry* e = zip.find(entry);
        if (!e) fail(name, ": missing storage record '", entry, "' for tensor '", p.key, "'");
        record = zip.read(*e);
      }
      out.insert(p.key, make_tensor(p, s, *record, name, owner, budget));
    }
    return out;
  });
}

TensorMap load_torch_checkpoint(const std::string& path) {
  MappedFile f = map_file(path);
  return load_torch_checkpoint_from_memory(f.data, f.size, path, f.owner);
}

void save_torch_checkpoint(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                           const TorchSaveOptions& options) {
  std::set<std::string_view> keys;
  for (const auto& [key, t] : tensors) {
    if (!keys.insert(key).second) fail(path, ": cannot save: key '", key, "' appears twice");
    if (!t.defined()) fail(path, ": cannot save: tensor '", key, "' has no data");
  }
  std::string root = std::filesystem::path(path).stem().string();
  if (root.empty()) root = "archive";

  AtomicFile file(path);
  ZipWriter zip(file, options.force_zip64);
  const std::vector<uint8_t> pkl = state_dict_pickle(tensors);
  zip.add(root + "/data.pkl", pkl);
  static const std::string_view kByteorder = "little";
  zip.add(root + "/byteorder", {reinterpret_cast<const uint8_t*>(kByteorder.data()), kByteorder.size()});
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i].second;
    zip.add(root + "/data/" + std::to_string(i), {static_cast<const uint8_t*>(t.raw()), t.nbytes()});
  }
  static const std::string_view kVersion = "3\n";
  zip.add(root + "/version", {reinterpret_cast<const uint8_t*>(kVersion.data()), kVersion.size()});
  zip.finish();
  file.commit();
}

}  // namespace amskv::io
