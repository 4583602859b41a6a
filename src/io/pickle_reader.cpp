#include "io/pickle_reader.h"

#include <bit>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "io/byte_util.h"

namespace amskv::io {

namespace {

// Hostile input must not exhaust memory: a real state dict needs a few thousand objects (the VQVAE's
// _metadata is the largest part), so these limits are generous yet keep a fuzzed pickle to ~100 MB.
constexpr size_t kMaxObjects = size_t{1} << 20;
constexpr size_t kMaxStack = size_t{1} << 20;
constexpr size_t kMaxMarks = size_t{1} << 16;
constexpr size_t kMaxMemo = size_t{1} << 20;
constexpr int kMaxDims = 64;

enum class Kind : uint8_t { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Global: return "global";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
  }
  return "?";
}

// The callables and classes that GLOBAL may name.
enum class Callable : uint8_t { OrderedDict, RebuildTensorV2, RebuildTensor, RebuildParameter, StorageType };

// Values live in an arena owned by the unpickler and refer to each other by raw pointer, so shared and
// even cyclic references (a list appended to itself) cost nothing and are freed without recursion.
// Everything the arena and the results hold is charged to the file's LoadBudget.
struct Value {
  Kind kind = Kind::None;
  int64_t i = 0;     // Int/Bool value; index into storages_/tensors_ for Storage/Tensor; Callable for Global
  double f = 0;      // Float
  std::string s;     // Str; for Global "module.name"
  std::vector<Value*> items;  // Tuple/List elements; Dict keys and values interleaved
};

class Unpickler {
 public:
  Unpickler(std::span<const uint8_t> bytes, const std::string& file, LoadBudget& budget)
      : p_(bytes), file_(file), budget_(budget) {}

  PickledStateDict run();

 private:
  template <class... Parts>
  [[noreturn]] void bad(const Parts&... parts) const {
    fail(file_, ": corrupt data.pkl at byte ", op_pos_, ": ", parts...);
  }

  const uint8_t* need(size_t n) {
    if (n > p_.size() - pos_) bad("truncated (", n, " bytes needed, ", p_.size() - pos_, " left)");
    const uint8_t* out = p_.data() + pos_;
    pos_ += n;
    return out;
  }
  uint8_t u8() { return *need(1); }
  template <class T>
  T le() {
    return load_le<T>(need(sizeof(T)));
  }
  std::string_view line() {
    const size_t start = pos_;
    while (pos_ < p_.size() && p_[pos_] != '\n') ++pos_;
    if (pos_ == p_.size()) bad("truncated (unterminated line)");
    ++pos_;
    return {reinterpret_cast<const char*>(p_.data() + start), pos_ - 1 - start};
  }

  // Bytes an object of the arena costs beyond its contents (the Value, its pointer, the allocator's header).
  static constexpr uint64_t kObjectBytes = sizeof(Value) + sizeof(void*) + 16;

  Value* make(Kind k) {
    if (arena_.size() >= kMaxObjects) bad("more than ", kMaxObjects, " objects");
    budget_.charge(kObjectBytes, "the unpickled object at byte ", op_pos_, " of data.pkl");
    arena_.push_back(std::make_unique<Value>());
    arena_.back()->kind = k;
    return arena_.back().get();
  }
  Value* make_int(int64_t v) {
    Value* x = make(Kind::Int);
    x->i = v;
    return x;
  }
  Value* make_str(const uint8_t* b, uint64_t n) {
    Value* x = make(Kind::Str);
    budget_.charge(n, "the string at byte ", op_pos_, " of data.pkl");
    x->s.assign(reinterpret_cast<const char*>(b), static_cast<size_t>(n));
    return x;
  }
  Value* read_str(uint64_t n) { return make_str(need(n), n); }

  void push(Value* v) {
    if (stack_.size() >= kMaxStack) bad("stack deeper than ", kMaxStack);
    stack_.push_back(v);
  }
  Value* pop() {
    if (stack_.size() <= floor()) bad("stack underflow");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top() {
    if (stack_.size() <= floor()) bad("stack underflow");
    return stack_.back();
  }
  // Items above the innermost MARK may be popped; below it they belong to the enclosing frame.
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  std::vector<Value*> pop_mark() {
    if (marks_.empty()) bad("no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  void memo_put(uint64_t index, Value* v) {
    auto [it, fresh] = memo_.try_emplace(index, v);
    if (!fresh) {
      it->second = v;
      return;
    }
    if (memo_.size() > kMaxMemo) bad("memo larger than ", kMaxMemo);
    budget_.charge(kMemoEntryBytes, "the memo entry at byte ", op_pos_, " of data.pkl");
  }
  static constexpr uint64_t kMemoEntryBytes = 48;  // an unordered_map node
  Value* memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) bad("memo key ", index, " used before it was stored");
    return it->second;
  }

  // Item lists (tuples, lists, dicts) cost a pointer per item.
  void charge_items(size_t n) { budget_.charge(n * sizeof(Value*), "the container at byte ", op_pos_, " of data.pkl"); }

  Value* tuple_of(std::vector<Value*> items) {
    charge_items(items.size());
    Value* t = make(Kind::Tuple);
    t->items = std::move(items);
    return t;
  }
  Value* tuple_n(size_t n) {
    if (stack_.size() - floor() < n) bad("stack underflow");
    std::vector<Value*> items(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
    stack_.resize(stack_.size() - n);
    return tuple_of(std::move(items));
  }
  Value* expect(Value* v, Kind k, const char* what) {
    if (v->kind != k) bad(what, " should be a ", kind_name(k), ", found ", kind_name(v->kind));
    return v;
  }
  void set_items(Value* dict, const std::vector<Value*>& kv) {
    expect(dict, Kind::Dict, "SETITEM target");
    if (kv.size() % 2) bad("odd number of items for SETITEMS");
    charge_items(kv.size());
    dict->items.insert(dict->items.end(), kv.begin(), kv.end());
  }
  void append_items(Value* list, const std::vector<Value*>& items) {
    expect(list, Kind::List, "APPEND target");
    charge_items(items.size());
    list->items.insert(list->items.end(), items.begin(), items.end());
  }

  Value* global(std::string_view module, std::string_view name);
  Value* reduce(Value* callable, Value* args);
  Value* persistent_load(Value* pid);
  Shape int_tuple(Value* v, const char* what);
  const std::string& storage_string(Value* v, const char* what);
  template <class... Where>
  void charge_tensor(const PickledTensor& t, const Where&... where) {
    budget_.charge(sizeof(PickledTensor) + t.key.size() + (t.size.size() + t.stride.size()) * sizeof(int64_t),
                   where...);
  }
  PickledStateDict state_dict(Value* root);

  std::span<const uint8_t> p_;
  const std::string& file_;
  LoadBudget& budget_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  std::vector<std::unique_ptr<Value>> arena_;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
  std::vector<PickledStorage> storages_;
  std::unordered_map<std::string, size_t> storage_index_;  // storage key -> position in storages_
  std::vector<PickledTensor> tensors_;  // key left empty until placed in the dict
};

Value* Unpickler::global(std::string_view module, std::string_view name) {
  static const std::string_view kStorages[] = {
      "FloatStorage", "HalfStorage",  "BFloat16Storage", "DoubleStorage", "LongStorage",
      "IntStorage",   "ShortStorage", "CharStorage",     "ByteStorage",   "BoolStorage"};
  Callable c = Callable::OrderedDict;
  bool ok = false;
  if (module == "collections" && name == "OrderedDict") {
    c = Callable::OrderedDict, ok = true;
  } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
    c = Callable::RebuildTensorV2, ok = true;
  } else if (module == "torch._utils" && name == "_rebuild_tensor") {
    c = Callable::RebuildTensor, ok = true;
  } else if (module == "torch._utils" && name == "_rebuild_parameter") {
    c = Callable::RebuildParameter, ok = true;
  } else if (module == "torch") {
    for (auto s : kStorages) {
      if (name == s) c = Callable::StorageType, ok = true;
    }
  }
  if (!ok) {
    fail(file_, ": pickle refers to global '", module, ".", name, "', which a state dict never needs");
  }
  Value* g = make(Kind::Global);
  g->i = static_cast<int64_t>(c);
  g->s = std::string(module) + "." + std::string(name);
  return g;
}

Shape Unpickler::int_tuple(Value* v, const char* what) {
  if (v->kind != Kind::Tuple) bad(what, " should be a tuple, found ", kind_name(v->kind));
  if (v->items.size() > kMaxDims) bad(what, " has ", v->items.size(), " dimensions");
  Shape out;
  for (Value* x : v->items) out.push_back(expect(x, Kind::Int, what)->i);
  return out;
}

Value* Unpickler::reduce(Value* callable, Value* args) {
  expect(callable, Kind::Global, "REDUCE callable");
  expect(args, Kind::Tuple, "REDUCE arguments");
  const auto& a = args->items;
  switch (static_cast<Callable>(callable->i)) {
    case Callable::OrderedDict:
      // torch pickles OrderedDict() with no arguments and fills it with SETITEMS.
      if (!a.empty()) bad("OrderedDict called with arguments");
      return make(Kind::Dict);
    case Callable::RebuildTensorV2:
    case Callable::RebuildTensor: {
      // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
      const bool v2 = static_cast<Callable>(callable->i) == Callable::RebuildTensorV2;
      if (v2 ? (a.size() != 6 && a.size() != 7) : a.size() != 4)
        bad(callable->s, " called with ", a.size(), " arguments");
      expect(a[0], Kind::Storage, "tensor storage");
      PickledTensor t;
      t.storage = static_cast<size_t>(a[0]->i);
      t.storage_offset = expect(a[1], Kind::Int, "storage offset")->i;
      t.size = int_tuple(a[2], "tensor size");
      t.stride = int_tuple(a[3], "tensor stride");
      if (t.size.size() != t.stride.size())
        bad("tensor size ", shape_str(t.size), " and stride ", shape_str(t.stride), " differ in rank");
      charge_tensor(t, "the tensor rebuilt at byte ", op_pos_, " of data.pkl");
      Value* v = make(Kind::Tensor);
      v->i = static_cast<int64_t>(tensors_.size());
      tensors_.push_back(std::move(t));
      return v;
    }
    case Callable::RebuildParameter:
      // (data, requires_grad, backward_hooks): a Parameter is just its tensor here.
      if (a.size() != 3) bad("_rebuild_parameter called with ", a.size(), " arguments");
      return expect(a[0], Kind::Tensor, "parameter data");
    case Callable::StorageType:
      break;
  }
  bad("'", callable->s, "' is not callable in a state dict");
}

const std::string& Unpickler::storage_string(Value* v, const char* what) {
  const std::string& s = expect(v, Kind::Str, what)->s;
  if (s.size() > kMaxStorageString)
    bad(what, " of ", s.size(), " bytes is longer than the ", kMaxStorageString, " bytes allowed (torch writes a few)");
  return s;
}

Value* Unpickler::persistent_load(Value* pid) {
  // torch: ('storage', <storage class>, key, location, numel)
  if (pid->kind != Kind::Tuple || pid->items.size() != 5 || pid->items[0]->kind != Kind::Str ||
      pid->items[0]->s != "storage")
    bad("persistent id is not a ('storage', type, key, location, numel) tuple");
  const auto& a = pid->items;
  Value* type = expect(a[1], Kind::Global, "storage type");
  if (static_cast<Callable>(type->i) != Callable::StorageType) bad("'", type->s, "' is not a storage type");
  const std::string_view type_name = std::string_view(type->s).substr(type->s.find('.') + 1);
  const std::string& key = storage_string(a[2], "storage key");
  const std::string& location = storage_string(a[3], "storage location");
  const int64_t numel = expect(a[4], Kind::Int, "storage size")->i;
  if (numel < 0) bad("negative storage size ", numel);
  // torch writes the persistent id again for every tensor of a storage: keep one record per key.
  Value* v = make(Kind::Storage);
  auto it = storage_index_.find(key);
  if (it != storage_index_.end()) {
    const PickledStorage& s = storages_[it->second];
    if (s.type != type_name || s.numel != numel)
      bad("storage '", key, "' is declared as ", s.numel, " elements of ", s.type, " and as ", numel, " of ",
          type_name);
    v->i = static_cast<int64_t>(it->second);
    return v;
  }
  budget_.charge(sizeof(PickledStorage) + 2 * key.size() + location.size() + type_name.size() + kMemoEntryBytes,
                 "the storage declared at byte ", op_pos_, " of data.pkl");
  PickledStorage s;
  s.type = std::string(type_name);
  s.key = key;
  s.location = location;
  s.numel = numel;
  v->i = static_cast<int64_t>(storages_.size());
  storages_.push_back(std::move(s));
  storage_index_.emplace(key, storages_.size() - 1);
  return v;
}

PickledStateDict Unpickler::state_dict(Value* root) {
  if (root->kind != Kind::Dict)
    fail(file_, ": data.pkl holds a ", kind_name(root->kind), ", not a state dict (an OrderedDict of tensors)");
  PickledStateDict out;
  std::unordered_set<std::string_view> seen;
  for (size_t j = 0; j + 1 < root->items.size(); j += 2) {
    Value* k = root->items[j];
    Value* v = root->items[j + 1];
    if (k->kind != Kind::Str) fail(file_, ": state dict has a key of type ", kind_name(k->kind));
    if (v->kind != Kind::Tensor)
      fail(file_, ": state dict entry '", k->s, "' is a ", kind_name(v->kind),
           ", not a tensor (a training checkpoint rather than a plain state dict?)");
    // Python's dict keeps the last value of a repeated key; a file that says two things about one weight
    // is more likely damaged or crafted than meant.
    if (!seen.insert(k->s).second) fail(file_, ": state dict has the key '", k->s, "' twice");
  }
  out.tensors.reserve(seen.size());
  for (size_t j = 0; j + 1 < root->items.size(); j += 2) {
    PickledTensor t = tensors_[static_cast<size_t>(root->items[j + 1]->i)];
    t.key = root->items[j]->s;
    charge_tensor(t, "state dict entry '", t.key, "'");
    out.tensors.push_back(std::move(t));
  }
  out.storages = std::move(storages_);
  return out;
}

PickledStateDict Unpickler::run() {
  for (;;) {
    op_pos_ = pos_;
    const uint8_t op = u8();
    switch (op) {
      case 0x80: {  // PROTO
        const uint8_t proto = u8();
        if (proto > 5) bad("unsupported pickle protocol ", int{proto});
        break;
      }
      case 0x95:  // FRAME: only a read-ahead hint
        le<uint64_t>();
        break;
      case '.': {  // STOP
        Value* root = pop();
        return state_dict(root);
      }
      case '(':  // MARK
        if (marks_.size() >= kMaxMarks) bad("MARKs nested deeper than ", kMaxMarks);
        marks_.push_back(stack_.size());
        break;
      case '0':  // POP
        if (stack_.size() > floor()) {
          stack_.pop_back();
        } else {
          pop_mark();  // Python pops a mark when the stack above it is empty
        }
        break;
      case '1':  // POP_MARK
        pop_mark();
        break;
      case '2':  // DUP
        push(top());
        break;
      case 'N': push(make(Kind::None)); break;
      case 0x88:  // NEWTRUE
      case 0x89: {  // NEWFALSE
        Value* b = make(Kind::Bool);
        b->i = op == 0x88;
        push(b);
        break;
      }
      case 'J': push(make_int(le<int32_t>())); break;   // BININT
      case 'K': push(make_int(u8())); break;            // BININT1
      case 'M': push(make_int(le<uint16_t>())); break;  // BININT2
      case 0x8a:    // LONG1
      case 0x8b: {  // LONG4
        const uint64_t n = op == 0x8a ? u8() : le<uint32_t>();
        if (n > 8) bad("integer of ", n, " bytes does not fit in 64 bits");
        const uint8_t* b = need(n);
        uint64_t u = 0;
        for (uint64_t j = 0; j < n; ++j) u |= uint64_t{b[j]} << (8 * j);
        if (n > 0 && n < 8 && (b[n - 1] & 0x80)) u |= ~uint64_t{0} << (8 * n);  // sign-extend
        push(make_int(static_cast<int64_t>(u)));
        break;
      }
      case 'G': {  // BINFLOAT: big-endian double
        const uint8_t* b = need(8);
        uint64_t u = 0;
        for (int j = 0; j < 8; ++j) u = (u << 8) | b[j];
        Value* x = make(Kind::Float);
        x->f = std::bit_cast<double>(u);
        push(x);
        break;
      }
      case 'X': push(read_str(le<uint32_t>())); break;  // BINUNICODE
      case 0x8c: push(read_str(u8())); break;           // SHORT_BINUNICODE
      case 0x8d: push(read_str(le<uint64_t>())); break; // BINUNICODE8
      case 'T': push(read_str(le<uint32_t>())); break;  // BINSTRING (Python 2)
      case 'U': push(read_str(u8())); break;            // SHORT_BINSTRING
      case 'B': push(read_str(le<uint32_t>())); break;  // BINBYTES
      case 'C': push(read_str(u8())); break;            // SHORT_BINBYTES
      case 0x8e: push(read_str(le<uint64_t>())); break; // BINBYTES8
      case ')': push(tuple_of({})); break;               // EMPTY_TUPLE
      case 0x85: push(tuple_n(1)); break;                // TUPLE1
      case 0x86: push(tuple_n(2)); break;                // TUPLE2
      case 0x87: push(tuple_n(3)); break;                // TUPLE3
      case 't': push(tuple_of(pop_mark())); break;       // TUPLE
      case ']': push(make(Kind::List)); break;           // EMPTY_LIST
      case 'l': {                                        // LIST
        Value* l = make(Kind::List);
        l->items = pop_mark();
        push(l);
        break;
      }
      case '}': push(make(Kind::Dict)); break;  // EMPTY_DICT
      case 'd': {                               // DICT
        auto kv = pop_mark();
        Value* d = make(Kind::Dict);
        set_items(d, kv);
        push(d);
        break;
      }
      case 'a': {  // APPEND
        Value* v = pop();
        append_items(top(), {v});
        break;
      }
      case 'e': {  // APPENDS
        auto items = pop_mark();
        append_items(top(), items);
        break;
      }
      case 's': {  // SETITEM
        Value* v = pop();
        Value* k = pop();
        set_items(top(), {k, v});
        break;
      }
      case 'u': {  // SETITEMS
        auto kv = pop_mark();
        set_items(top(), kv);
        break;
      }
      case 'q': memo_put(u8(), top()); break;                // BINPUT
      case 'r': memo_put(le<uint32_t>(), top()); break;      // LONG_BINPUT
      case 0x94: memo_put(memo_.size(), top()); break;       // MEMOIZE
      case 'h': push(memo_get(u8())); break;                 // BINGET
      case 'j': push(memo_get(le<uint32_t>())); break;       // LONG_BINGET
      case 'c': {                                            // GLOBAL
        const std::string module(line());
        const std::string name(line());
        push(global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        Value* name = expect(pop(), Kind::Str, "STACK_GLOBAL name");
        Value* module = expect(pop(), Kind::Str, "STACK_GLOBAL module");
        push(global(module->s, name->s));
        break;
      }
      case 'R': {  // REDUCE
        Value* args = pop();
        Value* callable = pop();
        push(reduce(callable, args));
        break;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args); only OrderedDict is a class we know
        Value* args = expect(pop(), Kind::Tuple, "NEWOBJ arguments");
        Value* cls = expect(pop(), Kind::Global, "NEWOBJ class");
        if (static_cast<Callable>(cls->i) != Callable::OrderedDict || !args->items.empty())
          bad("NEWOBJ of '", cls->s, "' is not supported");
        push(make(Kind::Dict));
        break;
      }
      case 'b': {  // BUILD: only the OrderedDict's _metadata (per-module versions), which we ignore
        pop();
        if (top()->kind != Kind::Dict) bad("BUILD on a ", kind_name(top()->kind), " is not supported");
        break;
      }
      case 'Q': {  // BINPERSID
        Value* pid = pop();
        push(persistent_load(pid));
        break;
      }
      default:
        bad("unsupported pickle opcode 0x", "0123456789abcdef"[op >> 4], "0123456789abcdef"[op & 15]);
    }
  }
}

}  // namespace

PickledStateDict read_state_dict_pickle(std::span<const uint8_t> pickle, const std::string& file, LoadBudget& budget) {
  Unpickler u(pickle, file, budget);
  return u.run();
}

}  // namespace amskv::io
