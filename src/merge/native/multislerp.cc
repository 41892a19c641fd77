#include <algorithm>
#include <vector>

#include "kernels.h"
#include "numeric.h"

namespace evomerge {
namespace {

// The normalised mean m and the weighted tangent sum τ of elements [j, j + n), as mergekit's
// torch code rounds them: every elementwise operation to R, sums over models in f32.
template <class R>
struct MultislerpBlock {
  std::vector<float> b, u, mean, tau;
  explicit MultislerpBlock(size_t m) : b(kBlock), u(m * kBlock), mean(kBlock), tau(kBlock) {}

  // u_i and mean = R(Σ_f32 R(u_i·w_i)), before the division by the mean norm.
  void load_mean(const MultislerpParams& p, int64_t j, int64_t n) {
    const size_t m = p.inputs.size();
    if (p.base.data) load_block(p.base.data, p.base.dtype, j, n, b.data(), R::kCode);
    std::fill(mean.begin(), mean.begin() + n, 0.0f);
    for (size_t i = 0; i < m; ++i) {
      float* ui = u.data() + i * kBlock;
      load_block(p.inputs[i].data, p.inputs[i].dtype, j, n, ui, R::kCode);
      if (p.base.data) {
        for (int64_t k = 0; k < n; ++k) ui[k] = R::r(ui[k] - b[k]);
      }
      const float dv = p.divisors[i];
      const float w = p.weights[i];
      for (int64_t k = 0; k < n; ++k) {
        ui[k] = R::r(ui[k] / dv);
        mean[k] = mean[k] + R::r(ui[k] * w);
      }
    }
    for (int64_t k = 0; k < n; ++k) mean[k] = R::r(mean[k]);
  }

  // m = R(mean / mean_norm), in place.
  void normalise_mean(const MultislerpParams& p, int64_t n) {
    const float mn = p.mean_norm;
    for (int64_t k = 0; k < n; ++k) mean[k] = R::r(mean[k] / mn);
  }

  void compute(const MultislerpParams& p, int64_t j, int64_t n) {
    const size_t m = p.inputs.size();
    load_mean(p, j, n);
    normalise_mean(p, n);
    for (int64_t k = 0; k < n; ++k) tau[k] = 0.0f;
    for (size_t i = 0; i < m; ++i) {
      const float* ui = u.data() + i * kBlock;
      const float di = p.dots[i];
      const float w = p.weights[i];
      for (int64_t k = 0; k < n; ++k) tau[k] = tau[k] + R::r(R::r(ui[k] - R::r(di * mean[k])) * w);
    }
    for (int64_t k = 0; k < n; ++k) tau[k] = R::r(tau[k]);
  }
};

template <class R>
void moments_impl(MultislerpParams& p) {
  const size_t m = p.inputs.size();
  MultislerpBlock<R> blk(m);
  // Lane sets: [0] Σ mean², then [1 + i] Σ R(u_i·m) when with_dots.
  std::vector<double> lanes((1 + m) * 4, 0.0);
  for (int64_t j = p.start; j < p.end; j += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, p.end - j);
    blk.load_mean(p, j, n);
    add_squares(lanes.data(), blk.mean.data(), j, n);
    if (!p.with_dots) continue;
    blk.normalise_mean(p, n);
    for (size_t i = 0; i < m; ++i) {
      const float* ui = blk.u.data() + i * kBlock;
      double* l = lanes.data() + (1 + i) * 4;
      // (unit_tensors * mean).sum(-1): each product rounds before the sum.
      for (int64_t k = 0; k < n; ++k) l[(j + k) & 3] += static_cast<double>(R::r(ui[k] * blk.mean[k]));
    }
  }
  for (size_t e = 0; e < (p.with_dots ? 1 + m : 1); ++e) {
    p.moments[e] = lane_total(lanes.data() + e * 4);
  }
}

template <class R>
void tangent_impl(MultislerpParams& p) {
  MultislerpBlock<R> blk(p.inputs.size());
  double lanes[4] = {0, 0, 0, 0};
  for (int64_t j = p.start; j < p.end; j += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, p.end - j);
    blk.compute(p, j, n);
    add_squares(lanes, blk.tau.data(), j, n);
  }
  p.tangent_sq = lane_total(lanes);
}

template <class R>
void mix_impl(const MultislerpParams& p) {
  MultislerpBlock<R> blk(p.inputs.size());
  for (int64_t j = p.start; j < p.end; j += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, p.end - j);
    blk.compute(p, j, n);
    float* r = blk.mean.data();
    for (int64_t k = 0; k < n; ++k) {
      r[k] = R::r(R::r(R::r(r[k] * p.cos_t) + R::r(blk.tau[k] * p.sinc_t)) * p.scale);
    }
    if (p.base.data) {
      for (int64_t k = 0; k < n; ++k) r[k] = R::r(r[k] + blk.b[k]);
    }
    store_block(r, n, p.out, p.out_dtype, j);
  }
}

}  // namespace

EVOMERGE_MULTIVERSION void multislerp_moments(MultislerpParams& p) {
  switch (p.compute) {
    case kBF16: moments_impl<RoundBF16>(p); break;
    case kF16: moments_impl<RoundF16>(p); break;
    default: moments_impl<RoundF32>(p); break;
  }
}

EVOMERGE_MULTIVERSION void multislerp_tangent(MultislerpParams& p) {
  switch (p.compute) {
    case kBF16: tangent_impl<RoundBF16>(p); break;
    case kF16: tangent_impl<RoundF16>(p); break;
    default: tangent_impl<RoundF32>(p); break;
  }
}

EVOMERGE_MULTIVERSION void multislerp_mix(const MultislerpParams& p) {
  switch (p.compute) {
    case kBF16: mix_impl<RoundBF16>(p); break;
    case kF16: mix_impl<RoundF16>(p); break;
    default: mix_impl<RoundF32>(p); break;
  }
}

}  // namespace evomerge
