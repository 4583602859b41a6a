#include "backend/cuda/step_graphs.h"

#include "backend/cuda/cuda_check.h"

namespace amskv::backend::cuda {

StepGraphs::~StepGraphs() {
  for (auto* m : {&execs_, &kept_})
    for (auto& [key, exec] : *m) cudaGraphExecDestroy(exec);  // errors at teardown are not actionable
}

void StepGraphs::begin(cudaStream_t stream) {
  AMSKV_CHECK(!recording_, "cuda backend: a step is already being recorded");
  // Relaxed: the caching allocator may still cudaMalloc a block the step needs; the graph runs right after
  // the capture, so the block it was given is the one it uses.
  AMSKV_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
  recording_ = true;
}

void StepGraphs::end(cudaStream_t stream, uint64_t key, bool keep) {
  AMSKV_CHECK(recording_, "cuda backend: end_step without begin_step");
  recording_ = false;
  cudaGraph_t graph = nullptr;
  AMSKV_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  struct GraphGuard {
    cudaGraph_t g;
    ~GraphGuard() { cudaGraphDestroy(g); }
  } guard{graph};
  if (keep) {  // launched again as recorded: instantiated (and uploaded) once
    drop(stream, key);
    cudaGraphExec_t exec = nullptr;
    AMSKV_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    kept_.emplace(key, exec);
    ++instantiated_;
    AMSKV_CUDA_CHECK(cudaGraphLaunch(exec, stream));
    return;
  }
  auto it = execs_.find(key);
  if (it != execs_.end()) {
    cudaGraphExecUpdateResultInfo info{};
    if (cudaGraphExecUpdate(it->second, graph, &info) == cudaSuccess) {
      ++updated_;
    } else {
      (void)cudaGetLastError();  // a different sequence of operations: make this key's graph anew
      cudaGraphExecDestroy(it->second);
      execs_.erase(it);
      it = execs_.end();
    }
  }
  if (it == execs_.end()) {
    if (execs_.size() >= kMaxKept) {
      for (auto& [k, exec] : execs_) cudaGraphExecDestroy(exec);
      execs_.clear();
    }
    cudaGraphExec_t exec = nullptr;
    AMSKV_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    it = execs_.emplace(key, exec).first;
    ++instantiated_;
  }
  AMSKV_CUDA_CHECK(cudaGraphLaunch(it->second, stream));
}

bool StepGraphs::replay(cudaStream_t stream, uint64_t key) {
  AMSKV_CHECK(!recording_, "cuda backend: a kept step replayed while a step is being recorded");
  const auto it = kept_.find(key);
  if (it == kept_.end()) return false;
  AMSKV_CUDA_CHECK(cudaGraphLaunch(it->second, stream));
  return true;
}

void StepGraphs::drop(cudaStream_t stream, uint64_t key) noexcept {
  const auto it = kept_.find(key);
  if (it == kept_.end()) return;
  (void)cudaStreamSynchronize(stream);
  (void)cudaGraphExecDestroy(it->second);
  (void)cudaGetLastError();
  kept_.erase(it);
}

void StepGraphs::abort(cudaStream_t stream) noexcept {
  if (!recording_) return;
  recording_ = false;
  cudaGraph_t graph = nullptr;
  if (cudaStreamEndCapture(stream, &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
  (void)cudaGetLastError();
}

}  // namespace amskv::backend::cuda
