// CUDA graphs for recorded steps (Backend::begin_step / end_step): the stream's work between the two is
// captured, then launched through an executable graph kept per key. A step that enqueued the same
// operations as the last one of its key (only pointers, sizes or scalars differ) updates that graph in
// place, which costs far less than instantiating it; any other change instantiates it anew. A kept step's
// graph is launched again as it is by replay() until drop().
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <map>

namespace amskv::backend::cuda {

class StepGraphs {
 public:
  StepGraphs() = default;
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;
  ~StepGraphs();

  bool recording() const { return recording_; }
  void begin(cudaStream_t stream);
  // Ends the capture and launches the step's graph on the stream; a kept step's graph stays for replay().
  void end(cudaStream_t stream, uint64_t key, bool keep);
  // Launches the kept graph of `key`; false when there is none.
  bool replay(cudaStream_t stream, uint64_t key);
  // Forgets the kept graph of `key` once the stream has finished with it. Never throws (it runs from
  // destructors and error paths): a failed wait or destruction leaves nothing more to do.
  void drop(cudaStream_t stream, uint64_t key) noexcept;
  // Ends the capture and drops what it recorded (never throws: it runs while an error unwinds).
  void abort(cudaStream_t stream) noexcept;

  int64_t instantiated() const { return instantiated_; }
  int64_t updated() const { return updated_; }

 private:
  // Updated graphs (execs_) kept at most; past it they are all dropped (a long-lived process that runs many
  // shapes). Kept steps (kept_) live until drop().
  static constexpr size_t kMaxKept = 256;
  std::map<uint64_t, cudaGraphExec_t> execs_, kept_;
  bool recording_ = false;
  int64_t instantiated_ = 0, updated_ = 0;
};

}  // namespace amskv::backend::cuda
