// Blocked f32 matrix product. A 4 × 32 block of C stays in registers while k runs from 0 upwards;
// vectorising across n (never across k) keeps each element's sum in the reference order, so every
// instruction set GCC targets below gives the same bytes as gemm.ts.
#include <algorithm>

#include "train-kernels.h"

namespace evotrain {
namespace {

constexpr int64_t kMR = 4;
constexpr int64_t kNR = 32;
constexpr int64_t kKC = 128;

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define EVOTRAIN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define EVOTRAIN_CLONES
#endif

// Rows [m0, m1) of C over k in [k0, k1); `load` false starts each element from 0, else from C.
EVOTRAIN_CLONES
void gemm_rows(const GemmParams& p, int64_t m0, int64_t m1, int64_t k0, int64_t k1, bool load) {
  for (int64_t m = m0; m < m1; m += kMR) {
    const int64_t mr = std::min(kMR, m1 - m);
    for (int64_t n = 0; n < p.n; n += kNR) {
      const int64_t nr = std::min(kNR, p.n - n);
      if (mr == kMR && nr == kNR) {
        float c[kMR][kNR];
        for (int64_t r = 0; r < kMR; ++r)
          for (int64_t j = 0; j < kNR; ++j) c[r][j] = load ? p.c[(m + r) * p.ldc + n + j] : 0.0f;
        const float* a0 = p.a + m * p.sam;
        for (int64_t k = k0; k < k1; ++k) {
          const float* b = p.b + k * p.ldb + n;
          const float* a = a0 + k * p.sak;
          for (int64_t r = 0; r < kMR; ++r) {
            const float ar = a[r * p.sam];
            for (int64_t j = 0; j < kNR; ++j) c[r][j] += ar * b[j];
          }
        }
        for (int64_t r = 0; r < kMR; ++r)
          for (int64_t j = 0; j < kNR; ++j) p.c[(m + r) * p.ldc + n + j] = c[r][j];
      } else {
        for (int64_t r = 0; r < mr; ++r) {
          float c[kNR];
          for (int64_t j = 0; j < nr; ++j) c[j] = load ? p.c[(m + r) * p.ldc + n + j] : 0.0f;
          const float* a = p.a + (m + r) * p.sam;
          for (int64_t k = k0; k < k1; ++k) {
            const float ar = a[k * p.sak];
            const float* b = p.b + k * p.ldb + n;
            for (int64_t j = 0; j < nr; ++j) c[j] += ar * b[j];
          }
          for (int64_t j = 0; j < nr; ++j) p.c[(m + r) * p.ldc + n + j] = c[j];
        }
      }
    }
  }
}

}  // namespace

void gemm(const GemmParams& p, int threads) {
  if (p.m <= 0 || p.n <= 0) return;
  // Below ~1 M multiply-adds a thread costs more than it saves.
  const int64_t work = p.m * p.n * std::max<int64_t>(p.k, 1);
  const int use = work < (1 << 20) ? 1 : threads;
  const int64_t blocks = (p.m + kMR - 1) / kMR;
  const int64_t tasks = std::min<int64_t>(blocks, std::max(1, use) * 4);
  parallel_tasks(tasks, use, [&](int64_t t) {
    const int64_t b0 = blocks * t / tasks, b1 = blocks * (t + 1) / tasks;
    // k in chunks so that the A and B rows a chunk reads stay in cache across C's column blocks;
    // C carries each element's running sum between chunks (an f32 either way), so the order of
    // every sum is still k = 0, 1, ….
    for (int64_t k0 = 0; k0 < p.k || k0 == 0; k0 += kKC) {
      gemm_rows(p, b0 * kMR, std::min(p.m, b1 * kMR), k0, std::min(p.k, k0 + kKC), k0 > 0 || p.accumulate);
      if (p.k == 0) break;
    }
  });
}

}  // namespace evotrain
