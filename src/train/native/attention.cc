// Causal attention for training, one (row, head) pair per task forwards and one (row, kv head)
// pair backwards, so that the k/v gradients shared by a group of heads are summed by one thread in
// a fixed order. Every sum over d or j runs in ascending order, as in attention.ts; keys and
// values are transposed into per-task scratch so that the inner loops run along j (or d) and
// vectorise without reordering any element's sum.
#include <cmath>
#include <vector>

#include "train-kernels.h"

namespace evotrain {
namespace {

// kv[(b·T + j)·stride + kvh·D + d] → out[d·T + j]
void transpose_head(const float* kv, int64_t b, int64_t kvh, int64_t T, int64_t D, int64_t stride, float* out) {
  for (int64_t j = 0; j < T; ++j) {
    const float* src = kv + (b * T + j) * stride + kvh * D;
    for (int64_t d = 0; d < D; ++d) out[d * T + j] = src[d];
  }
}

}  // namespace

void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v, float* o, float* p, int threads) {
  const int64_t T = s.seq, H = s.heads, D = s.head_dim, group = s.heads / s.kv_heads;
  const int64_t qs = H * D, ks = s.kv_heads * D;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  parallel_tasks(s.batch * H, threads, [&](int64_t task) {
    const int64_t b = task / H, h = task % H, kvh = h / group;
    std::vector<float> kt(D * T);
    transpose_head(k, b, kvh, T, D, ks, kt.data());
    float* pb = p + task * T * T;
    for (int64_t i = 0; i < T; ++i) {
      const float* qi = q + (b * T + i) * qs + h * D;
      float* pi = pb + i * T;
      const int64_t len = i + 1;
      for (int64_t j = 0; j < len; ++j) pi[j] = 0.0f;
      for (int64_t d = 0; d < D; ++d) {
        const float qd = qi[d];
        const float* kd = kt.data() + d * T;
        for (int64_t j = 0; j < len; ++j) pi[j] += qd * kd[j];
      }
      float max = -INFINITY;
      for (int64_t j = 0; j < len; ++j) {
        pi[j] = pi[j] * scale;
        if (pi[j] > max) max = pi[j];
      }
      float sum = 0.0f;
      for (int64_t j = 0; j < len; ++j) {
        pi[j] = std::exp(pi[j] - max);
        sum += pi[j];
      }
      const float inv = 1.0f / sum;
      for (int64_t j = 0; j < len; ++j) pi[j] *= inv;
      for (int64_t j = len; j < T; ++j) pi[j] = 0.0f;
      float* oi = o + (b * T + i) * qs + h * D;
      for (int64_t d = 0; d < D; ++d) oi[d] = 0.0f;
      for (int64_t j = 0; j < len; ++j) {
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
    std::vector<float> ds(T), vt(D * T), acc(D);
    transpose_head(v, b, kvh, T, D, ks, vt.data());
    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
      const float* pb = p + (b * H + h) * T * T;
      for (int64_t i = 0; i < T; ++i) {
        const float* pi = pb + i * T;
        const float* doi = dout + (b * T + i) * qs + h * D;
        const int64_t len = i + 1;
        for (int64_t j = 0; j < len; ++j) ds[j] = 0.0f;
        for (int64_t d = 0; d < D; ++d) {
          const float g = doi[d];
          const float* vd = vt.data() + d * T;
          for (int64_t j = 0; j < len; ++j) ds[j] += g * vd[j];
        }
        float rowdot = 0.0f;
        for (int64_t j = 0; j < len; ++j) rowdot += pi[j] * ds[j];
        for (int64_t j = 0; j < len; ++j) ds[j] = pi[j] * (ds[j] - rowdot) * scale;
        const float* qi = q + (b * T + i) * qs + h * D;
        float* dqi = dq + (b * T + i) * qs + h * D;
        for (int64_t d = 0; d < D; ++d) acc[d] = 0.0f;
        for (int64_t j = 0; j < len; ++j) {
          const float dsj = ds[j];
          const float* kj = k + (b * T + j) * ks + kvh * D;
          for (int64_t d = 0; d < D; ++d) acc[d] += dsj * kj[d];
        }
        for (int64_t d = 0; d < D; ++d) dqi[d] += acc[d];
        for (int64_t j = 0; j < len; ++j) {
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
