// Named tensors read from one file, remembering which file for error messages.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace amskv::io {

class TensorMap {
 public:
  TensorMap() = default;
  explicit TensorMap(std::string source) : source_(std::move(source)) {}

  const std::string& source() const { return source_; }
  bool contains(const std::string& key) const { return tensors_.count(key) != 0; }
  size_t size() const { return tensors_.size(); }
  const std::map<std::string, Tensor>& all() const { return tensors_; }

  // Throws "<file>: missing key <key>".
  const Tensor& at(const std::string& key) const;
  // Throws "<file>: key <key> has shape [..], expected [..]" (entries < 0 in `expected` match anything).
  const Tensor& at(const std::string& key, const Shape& expected) const;
  // A model weight: at(key, expected), and floating point ("... has dtype I64, expected floating point").
  const Tensor& weight(const std::string& key, const Shape& expected) const;
  // at(key) as float32: the tensor itself when it is F32, else a converted copy. Running out of memory
  // becomes "<file>: out of memory while converting <key> to float32 (N bytes needed)" instead of a bare
  // std::bad_alloc, which names nothing. Models converting fp16/bf16 checkpoints should use this.
  Tensor f32(const std::string& key) const;
  void insert(const std::string& key, Tensor t) { tensors_[key] = std::move(t); }

  // Free-form string metadata (safetensors __metadata__).
  std::map<std::string, std::string> metadata;

 private:
  std::string source_;
  std::map<std::string, Tensor> tensors_;
};

}  // namespace amskv::io
