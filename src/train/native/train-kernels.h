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

// Per-row Llama ops (twins in ../elementwise.ts); gradients are added to dx/dw/dgate/dup/dlogits.
void rmsnorm_forward(const float* x, const float* w, float* y, float* inv, int64_t n, int64_t e, double eps, int threads);
void rmsnorm_backward(const float* x, const float* w, const float* inv, const float* dy, float* dx, float* dw, int64_t n, int64_t e, int threads);
void rope_apply(const float* x, float* y, const float* cos, const float* sin, int64_t n, int64_t features, int64_t head_dim, int64_t seq, float sign, bool add, int threads);
void swiglu_forward(const float* gate, const float* up, float* y, float* sig, int64_t count, int threads);
void swiglu_backward(const float* gate, const float* up, const float* sig, const float* dy, float* dgate, float* dup, int64_t count, int threads);
void cross_entropy(const float* logits, const int32_t* targets, const uint8_t* mask, double* row_loss, float* dlogits, double scale, int64_t n, int64_t v, int threads);

// Runs body(task) for task in [0, tasks) on up to `threads` threads (the caller's thread included).
template <class F>
void parallel_tasks(int64_t tasks, int threads, F body);

}  // namespace evotrain

#include "parallel.h"
