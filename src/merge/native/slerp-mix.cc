#include <algorithm>
#include <vector>

#include "kernels.h"
#include "layout.h"
#include "numeric.h"

namespace evomerge {
namespace {

template <class R, class O>
void slerp_mix_impl(const SlerpMixParams& p) {
  std::vector<float> a(kBlock), c(kBlock), b(kBlock);
  for_each_run(p.len, p.inner, p.start, p.end, [&](int64_t j0, int64_t j1, int64_t vec0, int64_t step) {
    for (int64_t j = j0; j < j1; j += kBlock) {
      const int64_t n = std::min<int64_t>(kBlock, j1 - j);
      const int64_t v = vec0 + step * (j - j0);
      load_block(p.v0.data, p.v0.dtype, j, n, a.data(), R::kCode);
      load_block(p.v1.data, p.v1.dtype, j, n, c.data(), R::kCode);
      if (p.base.data) {
        load_block(p.base.data, p.base.dtype, j, n, b.data(), R::kCode);
        for (int64_t k = 0; k < n; ++k) {
          a[k] = R::r(a[k] - b[k]);
          c[k] = R::r(c[k] - b[k]);
        }
      }
      for (int64_t k = 0; k < n; ++k) {
        const int64_t e = v + step * k;
        float r = O::r(O::r(p.c0[e] * a[k]) + O::r(p.c1[e] * c[k]));
        const float d = p.div[e];
        if (d != 1.0f) r = O::r(r / d);
        a[k] = R::r(r);
      }
      if (p.base.data) {
        for (int64_t k = 0; k < n; ++k) a[k] = R::r(b[k] + a[k]);
      }
      store_block(a.data(), n, p.out, p.out_dtype, j);
    }
  });
}

template <class R>
void slerp_mix_op(const SlerpMixParams& p) {
  switch (p.op) {
    case kBF16: slerp_mix_impl<R, RoundBF16>(p); break;
    case kF16: slerp_mix_impl<R, RoundF16>(p); break;
    default: slerp_mix_impl<R, RoundF32>(p); break;
  }
}

}  // namespace

EVOMERGE_MULTIVERSION void slerp_mix(const SlerpMixParams& p) {
  switch (p.compute) {
    case kBF16: slerp_mix_op<RoundBF16>(p); break;
    case kF16: slerp_mix_op<RoundF16>(p); break;
    default: slerp_mix_op<RoundF32>(p); break;
  }
}

}  // namespace evomerge
