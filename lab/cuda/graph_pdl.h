#pragma once
// Programmatic dependent launch (Hopper PDL) between the kernels of a captured CUDA graph, edge by edge.
//
// Why: a prefill of few rows is a chain of ~90 short kernels, and every kernel boundary costs the launch of the next
// kernel after the previous one has drained. A programmatic edge lets the next kernel's blocks become resident
// before that: with the port cudaGraphKernelNodePortLaunchCompletion the dependent is launched as soon as every
// block of the kernel before has *started* — no trigger instruction needed in that kernel, so this also works
// after cuBLASLt's kernels, which never trigger their dependents early (measured: option prefill_pdl, which
// launched with the stream attribute, gained nothing). The dependent must then run griddepcontrol.wait
// (cudaGridDependencySynchronize) before it reads or writes anything the kernel before touches: the wait returns
// when that kernel has completed and its memory is visible. Only kernels known to do so may be made dependents.
#include <cuda_runtime.h>

#include <cstddef>
#include <functional>
#include <vector>

namespace gptbench::cuda_engine {

// The kernel function (host stub) of a graph node, or nullptr for other nodes and for kernels whose function the
// runtime cannot name (cuBLASLt's, launched through the driver API).
inline const void* graph_kernel_function(cudaGraphNode_t node) {
  cudaGraphNodeType type;
  if (cudaGraphNodeGetType(node, &type) != cudaSuccess || type != cudaGraphNodeTypeKernel) return nullptr;
  cudaKernelNodeParams params{};
  if (cudaGraphKernelNodeGetParams(node, &params) != cudaSuccess) {
    (void)cudaGetLastError();
    return nullptr;
  }
  return params.func;
}

// Rewrites every plain kernel -> kernel edge of `graph` whose target `waits_first` accepts (it is given the target
// node and its function, nullptr when unknown) as a programmatic dependency from the source's launch completion.
// Edges from or to other nodes (copies, memsets, events) stay full dependencies. Returns the number of rewritten
// edges through `rewritten`.
inline cudaError_t make_kernel_edges_programmatic(
    cudaGraph_t graph, const std::function<bool(cudaGraphNode_t, const void*)>& waits_first, int* rewritten) {
  if (rewritten) *rewritten = 0;
  std::size_t n = 0;
  cudaError_t e = cudaGraphGetEdges(graph, nullptr, nullptr, nullptr, &n);
  if (e != cudaSuccess || n == 0) return e;
  std::vector<cudaGraphNode_t> from(n), to(n);
  std::vector<cudaGraphEdgeData> data(n);
  if ((e = cudaGraphGetEdges(graph, from.data(), to.data(), data.data(), &n)) != cudaSuccess) return e;
  for (std::size_t i = 0; i < n; ++i) {
    if (data[i].type != cudaGraphDependencyTypeDefault || data[i].from_port != cudaGraphKernelNodePortDefault)
      continue;
    cudaGraphNodeType ta, tb;
    if ((e = cudaGraphNodeGetType(from[i], &ta)) != cudaSuccess || (e = cudaGraphNodeGetType(to[i], &tb)) != cudaSuccess)
      return e;
    if (ta != cudaGraphNodeTypeKernel || tb != cudaGraphNodeTypeKernel) continue;
    if (!waits_first(to[i], graph_kernel_function(to[i]))) continue;
    cudaGraphEdgeData pdl{};
    pdl.from_port = cudaGraphKernelNodePortLaunchCompletion;
    pdl.type = cudaGraphDependencyTypeProgrammatic;
    if ((e = cudaGraphRemoveDependencies(graph, &from[i], &to[i], &data[i], 1)) != cudaSuccess) return e;
    if ((e = cudaGraphAddDependencies(graph, &from[i], &to[i], &pdl, 1)) != cudaSuccess) return e;
    if (rewritten) ++*rewritten;
  }
  return cudaSuccess;
}

}  // namespace gptbench::cuda_engine
