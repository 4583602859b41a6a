// Hopper warpgroup matrix products (wgmma) for the implicit-GEMM convolution and the flash attention: the
// shared-memory matrix descriptors (64- and 128-byte swizzles), the m64n160k16 product with both operands in
// shared memory (a convolution block's 160 output channels in one instruction), the m64n64k16 product with
// A in registers (attention's queries and probabilities), the fences and waits around them, and the bulk
// copies that take a block's output from shared memory to global memory. The
// instructions exist only in sm_90a code: the products and fences compile to nothing elsewhere (AMSKV_WGMMA
// is 0), and the host launches a wgmma kernel only on a 9.0 device of a build that has sm_90a code
// (sm90a_kernels_available()).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "backend/cuda/kernels_common.cuh"

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define AMSKV_WGMMA 1
#else
#define AMSKV_WGMMA 0
#endif

namespace amskv::backend::cuda {

// A wgmma shared-memory matrix descriptor: the start address, leading offset 1 (unused by the layouts here),
// `stride_bytes` between 8-row groups, base offset 0, the swizzle `layout` (1: 128 bytes, 2: 64 bytes).
__device__ __forceinline__ uint64_t smem_descriptor(const void* smem, uint32_t stride_bytes, uint64_t layout) {
  const uint32_t a = shared_address(smem);
  return (uint64_t{(a >> 4) & 0x3FFFu}) | (uint64_t{1} << 16) | (uint64_t{stride_bytes >> 4} << 32) | (layout << 62);
}

// A K-major operand in the 64-byte swizzle: rows of 64 bytes (32 elements), 16-byte chunk c of row r stored
// at chunk c ^ ((r / 2) % 4) of a 512-byte-aligned atom of 8 rows; sbo = 512 between 8-row groups, lbo unused,
// base offset 0. The hardware swizzles the addresses it computes, so an operand may start at any row of the
// atoms (the convolution's taps) and 32 bytes into a row (the second 16-channel k step): not spelled out by
// the PTX manual for row starts, checked on the H200 by the conformance tests (taps 1 and 2, both k steps, the
// second output row's operand at row 130, and the 64-wide planes' rows at 66, 132 and 198: every row of an atom).
__device__ __forceinline__ uint64_t smem_descriptor_sw64(const void* smem) {
  return smem_descriptor(smem, 512, 2);
}
// An operand in the 128-byte swizzle: rows of 128 bytes (64 16-bit elements), 16-byte chunk c of row r stored
// at chunk c ^ (r % 8) of a 1024-byte-aligned atom of 8 rows; sbo = 1024 between 8-row groups. K-major (the
// rows run along K) it serves a k step of 16 from 32·step bytes into the rows; MN-major (the rows run along
// M or N, transposed by the instruction) a k step of 16 rows is two atoms, and the leading offset between
// 64-element spans along M or N is unused where the operand is 64 wide.
__device__ __forceinline__ uint64_t smem_descriptor_sw128(const void* smem) {
  return smem_descriptor(smem, 1024, 1);
}
// Byte offset of chunk c (16 bytes) of row r in the 128-byte swizzle.
__device__ __forceinline__ int swizzled128(int row, int c) { return row * 128 + ((c ^ (row & 7)) << 4); }

// Shared memory written by ordinary stores or cp.async, then read by wgmma or the bulk copies (the async
// proxy).
__device__ __forceinline__ void fence_proxy_async() {
#if AMSKV_WGMMA
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
// Bulk copies from shared to global memory by the copy engine (the async proxy): `bytes` (a multiple of 16,
// both addresses 16-byte aligned) stored, or with `add` added onto the values there (the add happens in L2;
// for float32, as the PTX manual says of it, it flushes subnormal inputs and results to zero, which the CPU
// and the mma.sync kernel do not; 16-bit values are added with .noftz, which keeps them, in their own
// precision, as the reference's half-precision residual sums are). The issuing thread commits its copies as one group and waits only until they have read
// shared memory: the writes drain while the SM goes on, and the kernel's end makes them visible to later
// kernels. That is enough only because nothing in the kernel reads the destination afterwards.
template <class Y>
__device__ __forceinline__ void bulk_copy_out(Y* dst, const Y* src, uint32_t bytes, bool add) {
#if AMSKV_WGMMA
  const uint32_t from = shared_address(src);
  if (!add)
    asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\n" ::"l"(dst), "r"(from), "r"(bytes)
                 : "memory");
  else if constexpr (sizeof(Y) == 4)
    asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\n" ::"l"(dst),
                 "r"(from), "r"(bytes)
                 : "memory");
  else if constexpr (std::is_same_v<Y, __nv_bfloat16>)
    asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.noftz.bf16 [%0], [%1], %2;\n" ::"l"(dst),
                 "r"(from), "r"(bytes)
                 : "memory");
  else
    asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.noftz.f16 [%0], [%1], %2;\n" ::"l"(dst),
                 "r"(from), "r"(bytes)
                 : "memory");
#endif
}
__device__ __forceinline__ void bulk_commit_and_wait_read() {
#if AMSKV_WGMMA
  asm volatile("cp.async.bulk.commit_group;\ncp.async.bulk.wait_group.read 0;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_fence() {
#if AMSKV_WGMMA
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#if AMSKV_WGMMA
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
#if AMSKV_WGMMA
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// Keeps the compiler from moving reads or writes of accumulator registers across an in-flight wgmma.
template <int N>
__device__ __forceinline__ void wgmma_fence_registers(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
// The same for A operands in registers: written (by ordinary instructions) before the wgmma.fence after it.
template <int M, int N>
__device__ __forceinline__ void wgmma_fence_registers(uint32_t (&a)[M][N]) {
#pragma unroll
  for (int i = 0; i < M; ++i)
#pragma unroll
    for (int j = 0; j < N; ++j) asm volatile("" : "+r"(a[i][j])::"memory");
}

// Whether this build and the current device run the sm_90a kernels with `shared_bytes` of shared memory per
// block: a build whose 9.0 code is sm_90a only (AMSKV_CUDA_SM90A, set by CMake), a compute capability 9.0
// device. Asked of the device current at the call (callers keep the answer).
inline bool sm90a_kernels_available(int shared_bytes) {
#if defined(AMSKV_CUDA_SM90A)
  int major = 0, minor = 0, optin = 0;
  return current_device_attribute(cudaDevAttrComputeCapabilityMajor, major) &&
         current_device_attribute(cudaDevAttrComputeCapabilityMinor, minor) &&
         current_device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, optin) && major == 9 && minor == 0 &&
         optin >= shared_bytes;
#else
  (void)shared_bytes;
  return false;
#endif
}

// The instruction for the element type AB ("bf16" or "f16"): 80 fp32 accumulators, scale-d 1 (accumulate),
// both operands K-major (no transpose), unit scales.
#define AMSKV_WGMMA_M64N160K16(AB, d, desc_a, desc_b)                                      \
    asm volatile(                                                                          \
        "{\n.reg .pred p;\nsetp.ne.b32 p, %82, 0;\n"                                     \
        "wgmma.mma_async.sync.aligned.m64n160k16.f32." AB "." AB " {"                      \
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, " \
        "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79" \
        "}, %80, %81, p, 1, 1, 0, 0;\n}\n"                                               \
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), \
          "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), \
          "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]) \
        : "l"(desc_a), "l"(desc_b), "r"(1))

// d[64×160] += A[64×16] · B[160×16]ᵀ, both K-major in shared memory. Thread layout of d (per warp w of the
// warpgroup, lane = 4g + t): d[4j + e] is row 16w + g + 8·(e / 2), column 8j + 2t + e % 2.
template <class T>
struct Wgmma160;

template <>
struct Wgmma160<__nv_bfloat16> {
  static __device__ __forceinline__ void run(float (&d)[80], uint64_t desc_a, uint64_t desc_b) {
#if AMSKV_WGMMA
    AMSKV_WGMMA_M64N160K16("bf16", d, desc_a, desc_b);
#endif
  }
};

template <>
struct Wgmma160<__half> {
  static __device__ __forceinline__ void run(float (&d)[80], uint64_t desc_a, uint64_t desc_b) {
#if AMSKV_WGMMA
    AMSKV_WGMMA_M64N160K16("f16", d, desc_a, desc_b);
#endif
  }
};

// d[64×64] (+)= A[64×16] · B[64×16]ᵀ with A in registers (the mma.sync m16n8k16 A layout per warp: warp w
// of the warpgroup holds rows 16w..16w + 15) and B in shared memory, K-major (kTransB 0) or MN-major (1).
// Thread layout of d as for Wgmma160: d[4j + e] is row 16w + g + 8·(e / 2), column 8j + 2t + e % 2.
// OUT is "+f" (accumulate onto d) or "=f" (d = A·Bᵀ, scale-d false: d's old values are not read, so
// nothing has to keep them, or copy them, while other products run).
#define AMSKV_WGMMA_M64N64K16_RS(AB, OUT, SCALE_D, d, a, desc_b, trans_b)                           \
    asm volatile(                                                                                   \
        "{\n.reg .pred p;\nsetp.ne.b32 p, " SCALE_D ", 0;\n"                                      \
        "wgmma.mma_async.sync.aligned.m64n64k16.f32." AB "." AB " {"                                \
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "                    \
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"            \
        "}, {%32, %33, %34, %35}, %36, p, 1, 1, %37;\n}\n"                                         \
        : OUT(d[0]), OUT(d[1]), OUT(d[2]), OUT(d[3]), OUT(d[4]), OUT(d[5]), OUT(d[6]), OUT(d[7]),   \
          OUT(d[8]), OUT(d[9]), OUT(d[10]), OUT(d[11]), OUT(d[12]), OUT(d[13]), OUT(d[14]), OUT(d[15]), \
          OUT(d[16]), OUT(d[17]), OUT(d[18]), OUT(d[19]), OUT(d[20]), OUT(d[21]), OUT(d[22]), OUT(d[23]), \
          OUT(d[24]), OUT(d[25]), OUT(d[26]), OUT(d[27]), OUT(d[28]), OUT(d[29]), OUT(d[30]), OUT(d[31]) \
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "n"(trans_b))

// The instruction for element type T, accumulating onto d or overwriting it.
template <class T, int kTransB, bool kAccumulate>
__device__ __forceinline__ void wgmma_m64n64k16_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b) {
#if AMSKV_WGMMA
  constexpr bool bf16 = std::is_same_v<T, __nv_bfloat16>;
  if constexpr (kAccumulate && bf16)
    AMSKV_WGMMA_M64N64K16_RS("bf16", "+f", "1", d, a, desc_b, kTransB);
  else if constexpr (kAccumulate)
    AMSKV_WGMMA_M64N64K16_RS("f16", "+f", "1", d, a, desc_b, kTransB);
  else if constexpr (bf16)
    AMSKV_WGMMA_M64N64K16_RS("bf16", "=f", "0", d, a, desc_b, kTransB);
  else
    AMSKV_WGMMA_M64N64K16_RS("f16", "=f", "0", d, a, desc_b, kTransB);
#endif
}

template <class T, int kTransB>
struct Wgmma64Rs {
  // d += A·Bᵀ
  static __device__ __forceinline__ void accumulate(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b) {
    wgmma_m64n64k16_rs<T, kTransB, true>(d, a, desc_b);
  }
  // d = A·Bᵀ
  static __device__ __forceinline__ void overwrite(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b) {
    wgmma_m64n64k16_rs<T, kTransB, false>(d, a, desc_b);
  }
};

}  // namespace amskv::backend::cuda
