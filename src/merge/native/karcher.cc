#include <algorithm>
#include <vector>

#include "kernels.h"
#include "numeric.h"

namespace evomerge {
namespace {

// ū of elements [j, j + n): u, or R(u / u_div).
template <class R>
inline void load_u(const KarcherParams& p, int64_t j, int64_t n, float* dst) {
  const float d = p.u_div;
  if (d == 1.0f) {
    std::copy(p.u + j, p.u + j + n, dst);
  } else {
    for (int64_t k = 0; k < n; ++k) dst[k] = R::r(p.u[j + k] / d);
  }
}

template <class R>
void tangent_impl(KarcherParams& p) {
  std::vector<float> ub(kBlock), x(kBlock), t(kBlock);
  double lanes[4] = {0, 0, 0, 0};
  for (int64_t j = 0; j < p.count; j += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, p.count - j);
    load_u<R>(p, j, n, ub.data());
    std::fill(t.begin(), t.begin() + n, 0.0f);
    for (size_t i = 0; i < p.inputs.size(); ++i) {
      load_block(p.inputs[i].data, p.inputs[i].dtype, j, n, x.data(), R::kCode);
      const float nrm = p.norms[i];
      const float c = p.coefs[i];
      const float d = p.dots[i];
      // torch's T += c·(unit − dot·u) rounds each step, the in-place sum included.
      for (int64_t k = 0; k < n; ++k) {
        const float unit = R::r(x[k] / nrm);
        t[k] = R::r(t[k] + R::r(c * R::r(unit - R::r(d * ub[k]))));
      }
    }
    std::copy(t.begin(), t.begin() + n, p.t + j);
    add_squares(lanes, t.data(), j, n);
  }
  p.t_sq = lane_total(lanes);
}

template <class R>
void step_impl(const KarcherParams& p) {
  std::vector<float> ub(kBlock);
  for (int64_t j = 0; j < p.count; j += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, p.count - j);
    load_u<R>(p, j, n, ub.data());
    if (p.t) {
      for (int64_t k = 0; k < n; ++k) {
        p.u[j + k] = R::r(R::r(p.cos_n * ub[k]) + R::r(p.sin_n * R::r(p.t[j + k] / p.norm_t)));
      }
    } else {
      for (int64_t k = 0; k < n; ++k) p.u[j + k] = R::r(p.cos_n * ub[k]);
    }
  }
}

template <class R>
void dots_impl(const KarcherParams& p) {
  const size_t m = p.inputs.size();
  std::vector<float> ub(kBlock), x(kBlock);
  std::vector<double> lanes(m * 4, 0.0);
  for (int64_t j = 0; j < p.count; j += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, p.count - j);
    load_u<R>(p, j, n, ub.data());
    for (size_t i = 0; i < m; ++i) {
      load_block(p.inputs[i].data, p.inputs[i].dtype, j, n, x.data(), R::kCode);
      const float nrm = p.norms[i];
      double* l = lanes.data() + i * 4;
      // torch.dot(u, unit_i) of the rounded vectors: the products are exact, the sum is wide.
      for (int64_t k = 0; k < n; ++k) {
        l[(j + k) & 3] += static_cast<double>(ub[k]) * static_cast<double>(R::r(x[k] / nrm));
      }
    }
  }
  for (size_t i = 0; i < m; ++i) {
    const double* l = lanes.data() + i * 4;
    p.dots_out[i] = lane_total(l);
  }
}

}  // namespace

EVOMERGE_MULTIVERSION void karcher_dots(const KarcherParams& p) {
  switch (p.compute) {
    case kBF16: dots_impl<RoundBF16>(p); break;
    case kF16: dots_impl<RoundF16>(p); break;
    default: dots_impl<RoundF32>(p); break;
  }
}

EVOMERGE_MULTIVERSION void karcher_tangent(KarcherParams& p) {
  switch (p.compute) {
    case kBF16: tangent_impl<RoundBF16>(p); break;
    case kF16: tangent_impl<RoundF16>(p); break;
    default: tangent_impl<RoundF32>(p); break;
  }
}

EVOMERGE_MULTIVERSION void karcher_step(const KarcherParams& p) {
  switch (p.compute) {
    case kBF16: step_impl<RoundBF16>(p); break;
    case kF16: step_impl<RoundF16>(p); break;
    default: step_impl<RoundF32>(p); break;
  }
}

}  // namespace evomerge
