// The per-row work of the Llama ops (twins: ../elementwise.ts). Same formulas, same order of every
// sum and the same f32/f64 roundings as the TypeScript; rows split over threads, and the one sum
// across rows (the norm weight's gradient) is split over columns instead, so threads never change
// a result.
#include <cmath>

#include "train-kernels.h"

namespace evotrain {
namespace {
constexpr int64_t kRowsPerTask = 32;
int64_t row_tasks(int64_t n) { return (n + kRowsPerTask - 1) / kRowsPerTask; }
}  // namespace

void rmsnorm_forward(const float* x, const float* w, float* y, float* inv, int64_t n, int64_t e, double eps, int threads) {
  parallel_tasks(row_tasks(n), threads, [&](int64_t task) {
    for (int64_t i = task * kRowsPerTask; i < std::min(n, (task + 1) * kRowsPerTask); ++i) {
      const float* xi = x + i * e;
      double ss = 0;
      for (int64_t j = 0; j < e; ++j) ss += static_cast<double>(xi[j]) * xi[j];
      const float mean = static_cast<float>(ss / e);
      const float r = static_cast<float>(1.0 / std::sqrt(static_cast<double>(mean) + eps));
      inv[i] = r;
      for (int64_t j = 0; j < e; ++j) y[i * e + j] = (xi[j] * r) * w[j];
    }
  });
}

void rmsnorm_backward(const float* x, const float* w, const float* inv, const float* dy, float* dx, float* dw, int64_t n, int64_t e, int threads) {
  if (dx != nullptr) {
    parallel_tasks(row_tasks(n), threads, [&](int64_t task) {
      for (int64_t i = task * kRowsPerTask; i < std::min(n, (task + 1) * kRowsPerTask); ++i) {
        const double r = inv[i];
        double dot = 0;
        for (int64_t j = 0; j < e; ++j) dot += static_cast<double>(dy[i * e + j]) * w[j] * x[i * e + j];
        const double c = dot * r * r * r / static_cast<double>(e);
        for (int64_t j = 0; j < e; ++j) {
          dx[i * e + j] = static_cast<float>(dx[i * e + j] + (static_cast<double>(dy[i * e + j]) * w[j] * r - x[i * e + j] * c));
        }
      }
    });
  }
  if (dw != nullptr) {
    parallel_tasks(e, threads, [&](int64_t j) {
      double acc = 0;
      for (int64_t i = 0; i < n; ++i) acc += static_cast<double>(dy[i * e + j]) * x[i * e + j] * static_cast<double>(inv[i]);
      dw[j] = static_cast<float>(dw[j] + acc);
    });
  }
}

void rope_apply(const float* x, float* y, const float* cos, const float* sin, int64_t n, int64_t features, int64_t head_dim, int64_t seq, float sign, bool add, int threads) {
  const int64_t half = head_dim / 2, heads = features / head_dim;
  parallel_tasks(row_tasks(n), threads, [&](int64_t task) {
    for (int64_t i = task * kRowsPerTask; i < std::min(n, (task + 1) * kRowsPerTask); ++i) {
      const int64_t t = i % seq;
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t base = i * features + h * head_dim;
        for (int64_t j = 0; j < half; ++j) {
          const float c = cos[t * half + j], s = sin[t * half + j] * sign;
          const float a = x[base + j], b = x[base + j + half];
          const float ya = a * c - b * s, yb = b * c + a * s;
          y[base + j] = add ? y[base + j] + ya : ya;
          y[base + j + half] = add ? y[base + j + half] + yb : yb;
        }
      }
    }
  });
}

void swiglu_forward(const float* gate, const float* up, float* y, float* sig, int64_t count, int threads) {
  constexpr int64_t kChunk = 4096;
  parallel_tasks((count + kChunk - 1) / kChunk, threads, [&](int64_t task) {
    for (int64_t i = task * kChunk; i < std::min(count, (task + 1) * kChunk); ++i) {
      const double g = gate[i];
      sig[i] = static_cast<float>(1.0 / (1.0 + std::exp(-g)));
      y[i] = (gate[i] * sig[i]) * up[i];
    }
  });
}

void swiglu_backward(const float* gate, const float* up, const float* sig, const float* dy, float* dgate, float* dup, int64_t count, int threads) {
  constexpr int64_t kChunk = 4096;
  parallel_tasks((count + kChunk - 1) / kChunk, threads, [&](int64_t task) {
    for (int64_t i = task * kChunk; i < std::min(count, (task + 1) * kChunk); ++i) {
      const double g = gate[i], s = sig[i], d = dy[i];
      dgate[i] = static_cast<float>(dgate[i] + d * up[i] * s * (1 + g * (1 - s)));
      dup[i] = static_cast<float>(dup[i] + d * g * s);
    }
  });
}

void cross_entropy(const float* logits, const int32_t* targets, const uint8_t* mask, double* row_loss, float* dlogits, double scale, int64_t n, int64_t v, int threads) {
  parallel_tasks(row_tasks(n), threads, [&](int64_t task) {
    for (int64_t i = task * kRowsPerTask; i < std::min(n, (task + 1) * kRowsPerTask); ++i) {
      row_loss[i] = 0;
      if (mask[i] != 1) continue;
      const float* row = logits + i * v;
      const int32_t t = targets[i];
      double max = -INFINITY;
      for (int64_t j = 0; j < v; ++j) max = std::fmax(max, static_cast<double>(row[j]));
      double sum = 0;
      for (int64_t j = 0; j < v; ++j) sum += std::exp(row[j] - max);
      const double log_z = max + std::log(sum);
      row_loss[i] = log_z - row[t];
      if (dlogits != nullptr) {
        float* d = dlogits + i * v;
        for (int64_t j = 0; j < v; ++j) d[j] = static_cast<float>(d[j] + std::exp(row[j] - log_z) * scale);
        d[t] = static_cast<float>(d[t] - scale);
      }
    }
  });
}

}  // namespace evotrain
