// Hopper's (sm_90a) PTX primitives that the cluster recurrent kernel builds on: shared-memory
// addresses, thread-block cluster barriers and ranks, mbarriers counting bytes, 4-byte cp.async, and
// bulk copies multicast to a cluster. Device code for sm_90a only (defined where it is compiled).
#pragma once

#include <cstdint>

namespace ds2rt::detail::cuda::hopper {

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ unsigned sharedAddress(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void clusterSync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}

__device__ __forceinline__ unsigned clusterRank() {
  unsigned rank;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
  return rank;
}

// Arms this step's phase of `bar` for `bytes` (its peers' copies may land before it: the phase
// cannot complete before this arrival, whatever the byte count did meanwhile).
__device__ __forceinline__ void expectBytes(uint64_t* bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(sharedAddress(bar)), "r"(bytes) : "memory");
}

// 4 bytes from global into shared memory, asynchronously (cp.async.wait_all waits for them).
__device__ __forceinline__ void copyWordAsync(float* shared_dst, const float* global_src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(sharedAddress(shared_dst)), "l"(global_src) : "memory");
}

__device__ __forceinline__ void waitPhase(uint64_t* bar, unsigned parity) {
  unsigned done = 0;
  while (!done)
    asm volatile(
        "{\n\t.reg .pred p;\n\tmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n\tselp.u32 %0, 1, 0, p;\n\t}"
        : "=r"(done)
        : "r"(sharedAddress(bar)), "r"(parity)
        : "memory");
}

// `bytes` from global memory to the same shared offset in every block of `mask` (this cluster's
// ranks), counted on each one's `bar`.
__device__ __forceinline__ void copyToCluster(void* shared_dst, const void* global_src, unsigned bytes, uint64_t* bar,
                                              unsigned short mask) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1], %2, [%3], %4;"
      ::"r"(sharedAddress(shared_dst)), "l"(global_src), "r"(bytes), "r"(sharedAddress(bar)), "h"(mask)
      : "memory");
}
#endif

}  // namespace ds2rt::detail::cuda::hopper
