// The training kernels' C++ side (twins: ../gemm.ts, ../attention.ts). Each kernel fixes the order
// of every floating-point sum, and threads only split independent outputs, so results are the same
// bytes for any thread count.
#pragma once
#include <cstdint>

namespace evotrain {

struct GemmParams {
  const float* a;  // A[m, k] at a[m * sam + k * sak]
  int64_t sam, sak;
  const float* b;  // B[k, n] at b[k * ldb + n]
  int64_t ldb;
  float* c;        // C[m, n] at c[m * ldc + n]
  int64_t ldc;
  int64_t m, n, k;
  bool accumulate;  // C += A·B instead of C = A·B
};

// C = (accumulate ? C : 0) + Σ_k A[:, k] ⊗ B[k, :], summed k = 0, 1, … with each product rounded
// to f32 before it is added.
void gemm(const GemmParams& p, int threads);

struct AttentionShape {
  int64_t batch, seq, heads, kv_heads, head_dim;
};

// Causal softmax attention over each row of `seq` tokens. q: [batch·seq, heads·head_dim],
// k, v: [batch·seq, kv_heads·head_dim] (head h reads kv head h / (heads / kv_heads)).
// Writes o (like q) and the probabilities p: [batch, heads, seq, seq] (zero above the diagonal).
void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v, float* o, float* p, int threads);

// Adds the gradients of q, k and v given the output gradient `dout` and the saved p.
void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v, const float* p, const float* dout,
                        float* dq, float* dk, float* dv, int threads);

// Runs body(task) for task in [0, tasks) on up to `threads` threads (the caller's thread included).
template <class F>
void parallel_tasks(int64_t tasks, int threads, F body);

}  // namespace evotrain

#include "parallel.h"
