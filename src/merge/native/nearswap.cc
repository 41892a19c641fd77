#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "numeric.h"

namespace evomerge {
namespace {

template <class R>
void nearswap_impl(const NearswapParams& p) {
  std::vector<float> a(kBlock), b(kBlock), w(kBlock);
  const float lo = 1e-6f;
  const float floor = R::r(lo);
  const float t = p.t;
  for (int64_t j = p.start; j < p.end; j += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, p.end - j);
    load_block(p.a.data, p.a.dtype, j, n, a.data(), R::kCode);
    load_block(p.b.data, p.b.dtype, j, n, b.data(), R::kCode);
    float* __restrict wv = w.data();
    const float* __restrict av = a.data();
    const float* __restrict bv = b.data();
    // One simple loop per step, selects instead of branches, so that each vectorises.
    for (int64_t k = 0; k < n; ++k) {
      const float d = std::fabs(R::r(av[k] - bv[k]));
      // clamp(min=1e-6) keeps a NaN: the comparison is false for it.
      wv[k] = d < lo ? floor : d;
    }
    for (int64_t k = 0; k < n; ++k) wv[k] = R::r(R::r(1.0f / wv[k]) * t);
    // clamp(0, 1); NaN stays NaN.
    for (int64_t k = 0; k < n; ++k) wv[k] = wv[k] < 0.0f ? 0.0f : wv[k];
    for (int64_t k = 0; k < n; ++k) wv[k] = wv[k] > 1.0f ? 1.0f : wv[k];
    for (int64_t k = 0; k < n; ++k) wv[k] = R::r(R::r(wv[k] * bv[k]) + R::r(R::r(1.0f - wv[k]) * av[k]));
    store_block(wv, n, p.out, p.out_dtype, j);
  }
}

}  // namespace

EVOMERGE_MULTIVERSION void nearswap_merge(const NearswapParams& p) {
  switch (p.compute) {
    case kBF16: nearswap_impl<RoundBF16>(p); break;
    case kF16: nearswap_impl<RoundF16>(p); break;
    default: nearswap_impl<RoundF32>(p); break;
  }
}

}  // namespace evomerge
