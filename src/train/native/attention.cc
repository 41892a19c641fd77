// Causal attention for training, one (row, head) pair per task forwards and one (row, kv head)
// pair backwards, so that the k/v gradients shared by a group of heads are summed by one thread in
// a fixed order. Sums run over d or j in ascending order, as in attention.ts.
#include <cmath>
#include <vector>

#include "train-kernels.h"

namespace evotrain {

void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v, float* o, float* p, int threads) {
  const int64_t T = s.seq, H = s.heads, D = s.head_dim, group = s.heads / s.kv_heads;
  const int64_t qs = H * D, ks = s.kv_heads * D;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  parallel_tasks(s.batch * H, threads, [&](int64_t task) {
    const int64_t b = task / H, h = task % H, kvh = h / group;
    float* pb = p + task * T * T;
    for (int64_t i = 0; i < T; ++i) {
      const float* qi = q + (b * T + i) * qs + h * D;
      float* pi = pb + i * T;
      float max = -INFINITY;
      for (int64_t j = 0; j <= i; ++j) {
        const float* kj = k + (b * T + j) * ks + kvh * D;
        float dot = 0.0f;
        for (int64_t d = 0; d < D; ++d) dot += qi[d] * kj[d];
        pi[j] = dot * scale;
        if (pi[j] > max) max = pi[j];
      }
      float sum = 0.0f;
      for (int64_t j = 0; j <= i; ++j) {
        pi[j] = std::exp(pi[j] - max);
        sum += pi[j];
      }
      const float inv = 1.0f / sum;
      for (int64_t j = 0; j <= i; ++j) pi[j] *= inv;
      for (int64_t j = i + 1; j < T; ++j) pi[j] = 0.0f;
      float* oi = o + (b * T + i) * qs + h * D;
      for (int64_t d = 0; d < D; ++d) oi[d] = 0.0f;
      for (int64_t j = 0; j <= i; ++j) {
        const float* vj = v + (b * T + j) * ks + kvh * D;
        const float pj = pi[j];
        for (int64_t d = 0; d < D; ++d) oi[d] += pj * vj[d];
      }
    }
  });
}

void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v, const float* p, const float* dout,
                        float* dq, float* dk, float* dv, int threads) {
  const int64_t T = s.seq, H = s.heads, KV = s.kv_heads, D = s.head_dim, group = s.heads / s.kv_heads;
  const int64_t qs = H * D, ks = KV * D;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  parallel_tasks(s.batch * KV, threads, [&](int64_t task) {
    const int64_t b = task / KV, kvh = task % KV;
    std::vector<float> ds(T);
    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
      const float* pb = p + (b * H + h) * T * T;
      for (int64_t i = 0; i < T; ++i) {
        const float* pi = pb + i * T;
        const float* doi = dout + (b * T + i) * qs + h * D;
        float rowdot = 0.0f;
        for (int64_t j = 0; j <= i; ++j) {
          const float* vj = v + (b * T + j) * ks + kvh * D;
          float dp = 0.0f;
          for (int64_t d = 0; d < D; ++d) dp += doi[d] * vj[d];
          ds[j] = dp;
          rowdot += pi[j] * dp;
        }
        for (int64_t j = 0; j <= i; ++j) ds[j] = pi[j] * (ds[j] - rowdot) * scale;
        const float* qi = q + (b * T + i) * qs + h * D;
        float* dqi = dq + (b * T + i) * qs + h * D;
        for (int64_t d = 0; d < D; ++d) {
          float acc = 0.0f;
          for (int64_t j = 0; j <= i; ++j) acc += ds[j] * k[(b * T + j) * ks + kvh * D + d];
          dqi[d] += acc;
        }
        for (int64_t j = 0; j <= i; ++j) {
          float* dkj = dk + (b * T + j) * ks + kvh * D;
          float* dvj = dv + (b * T + j) * ks + kvh * D;
          const float dsj = ds[j], pj = pi[j];
          for (int64_t d = 0; d < D; ++d) {
            dkj[d] += dsj * qi[d];
            dvj[d] += pj * doi[d];
          }
        }
      }
    }
  });
}

}  // namespace evotrain
